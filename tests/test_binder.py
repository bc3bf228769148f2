"""Binder: the files repo2docker reads in binder/, and a replay of what it does with them.

No Docker runs here, so the replay does what repo2docker's Python buildpack does, step by
step, as a user who is not root (Binder's jovyan): clone the repository, make a fresh
virtualenv, `pip install -r binder/requirements.txt` in the clone, run `binder/postBuild`,
then, through `binder/start`, strict nbval on two notebooks in the kernel postBuild
registered (nbval picks the kernel each notebook names, as JupyterLab does).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers.admin.links import links
from helpers.maintainers.lock import BINDER_EXTRAS, requirement_closure
from tests import users

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
FLOOR_PYTHON = Path("/usr/bin/python3")  # the distribution's own: what a fresh machine has
REPLAYED = ("notebooks/01_connect.ipynb", "notebooks/05_transactions.ipynb")


def _pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==") for line in lines if "==" in line)


def test_binder_pins_are_the_locks_for_what_the_notebooks_need() -> None:
    binder, locked = _pins(BINDER / "requirements.txt"), _pins(ROOT / "constraints.txt")
    assert {name: locked.get(name) for name in binder} == binder, "binder/requirements.txt differs from constraints.txt"
    assert sorted(binder) == requirement_closure(BINDER_EXTRAS), "run make lock: binder/requirements.txt is stale"
    for tool in ("pytest", "nbval", "ruff", "mypy", "playwright", "uv", "nbgrader", "jupyterhub"):
        assert tool not in binder, f"{tool} is a test, lint or instructor tool: Binder's learners do not need it"
    assert "-e ." in (BINDER / "requirements.txt").read_text().splitlines()


def test_binder_registers_the_kernel_every_notebook_asks_for() -> None:
    registered = re.search(r"ipykernel install .*--name (\S+)", (BINDER / "postBuild").read_text())
    assert registered, "binder/postBuild does not register a kernel"
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == registered.group(1), path.name
    for script in ("postBuild", "start"):
        assert (BINDER / script).stat().st_mode & 0o111, f"binder/{script} must be executable"
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"


@pytest.mark.world
def test_repo2docker_steps_replayed_as_a_user() -> None:
    if not FLOOR_PYTHON.exists():
        pytest.skip(f"{FLOOR_PYTHON} is missing: the replay uses the distribution's own Python")
    user = users.ensure_user("course-binder")
    work = Path(tempfile.mkdtemp(prefix="course-binder-"))  # not under pytest's tmp, which is closed to others
    work.chmod(0o755)
    repo, env = work / "repo", work / "env"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
    users.give(work, user)

    def step(label: str, *argv: str, **extra: str) -> str:
        began = time.perf_counter()
        done = users.as_user(user, argv, cwd=repo, env={"PATH": f"{env}/bin:/usr/bin:/bin", **extra})
        print(f"{label}: {time.perf_counter() - began:.0f} s")
        assert done.returncode == 0, f"{label} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout

    step("virtualenv", str(FLOOR_PYTHON), "-m", "venv", str(env))
    step("pip install -r binder/requirements.txt", f"{env}/bin/pip", "install", "--quiet", "--no-cache-dir",
         "--disable-pip-version-check", "-r", "binder/requirements.txt")
    step("binder/postBuild", "./binder/postBuild")
    # The test harness, not part of Binder's steps: pytest and nbval at the course's pins.
    step("test tools", f"{env}/bin/pip", "install", "--quiet", "--disable-pip-version-check", "-c", "constraints.txt",
         "pytest", "pytest-timeout", "nbval")
    out = step("binder/start, then nbval", "./binder/start", f"{env}/bin/python", "-m", "pytest", "-o", "addopts=",
               "-p", "no:cacheprovider", "--nbval", "--nbval-sanitize-with=tests/nbval_sanitize.cfg",
               "-p", "tests.kernels", *REPLAYED)
    assert re.search(r"\d+ passed", out) and " failed" not in out, out[-3000:]
    step("db stop", f"{env}/bin/python", "-m", "helpers", "db", "stop")
    shutil.rmtree(work, ignore_errors=True)


def test_links_for_a_github_repository_and_any_other_git_host() -> None:
    made = links("https://github.com/acme/asyncpg-course.git", "main", "05_transactions.ipynb",
                 "https://hub.example.edu/")
    assert made.binder == ("https://mybinder.org/v2/gh/acme/asyncpg-course/main"
                           "?urlpath=lab%2Ftree%2Fnotebooks%2F05_transactions.ipynb")
    assert made.badge == f"[![Binder](https://mybinder.org/badge_logo.svg)]({made.binder})"
    assert made.nbgitpuller == ("https://hub.example.edu/hub/user-redirect/git-pull"
                                "?repo=https%3A%2F%2Fgithub.com%2Facme%2Fasyncpg-course.git&branch=main"
                                "&urlpath=lab%2Ftree%2Fasyncpg-course%2Fnotebooks%2F05_transactions.ipynb")
    other = links("https://git.example.edu/teach/course", "spring", "01_connect.ipynb", None)
    assert other.binder.startswith("https://mybinder.org/v2/git/https%3A%2F%2Fgit.example.edu%2Fteach%2Fcourse/spring?")
    assert other.nbgitpuller is None
