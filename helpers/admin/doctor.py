"""`python -m helpers doctor`: what a learner runs when something is off.

Each check prints one line, OK or FAIL, and a FAIL says what to do.  It changes nothing
(it does not start the server or build the template), so it is safe to run at any time.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from .. import config
from ..errors import CourseError
from .pins import normalise, read_pins

MIN_SERVER_MAJOR = 13
DISTRIBUTION = "asyncpg-course-helpers"

Check = Callable[[], tuple[bool, str]]


def run() -> int:
    """Every check in turn; exit status 1 when any failed."""
    failed = 0
    for name, check in CHECKS:
        try:
            ok, words = check()
        except CourseError as error:
            ok, words = False, str(error).replace("\n", " ")
        print(f"{'OK  ' if ok else 'FAIL'} {name:<9} {words}")
        failed += not ok
    print("all good" if not failed else f"{failed} check(s) failed: see the FAIL lines above")
    return 1 if failed else 0


def check_python() -> tuple[bool, str]:
    """The Python that pyproject.toml's requires-python asks for."""
    version = ".".join(map(str, sys.version_info[:3]))
    wanted = re.search(r">=\s*(\d+)\.(\d+)", metadata.metadata(DISTRIBUTION)["Requires-Python"] or "")
    minimum = (int(wanted.group(1)), int(wanted.group(2))) if wanted else (3, 10)
    if sys.version_info[:2] >= minimum:
        return True, f"Python {version} ({sys.executable})"
    return False, (f"Python {version} is too old: the course needs {minimum[0]}.{minimum[1]} or newer. "
                   "Run `make setup PYTHON=python3.12` (or another newer python).")


def check_packages() -> tuple[bool, str]:
    """Each direct dependency installed, at the version constraints.txt pins."""
    pins = read_pins(config.REPO_ROOT / "constraints.txt")
    wrong = []
    for name in _direct_dependencies():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name} missing")
            continue
        pinned = pins.get(normalise(name))
        if pinned is not None and installed != pinned:
            wrong.append(f"{name} {installed} (pinned {pinned})")
    if wrong:
        return False, f"{', '.join(wrong)}. Run `make setup` (it reinstalls from constraints.txt)."
    return True, f"{len(_direct_dependencies())} packages at their pinned versions"


def check_kernel() -> tuple[bool, str]:
    """A Jupyter kernel that runs this very Python, so the notebooks see these packages."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return False, "Jupyter is not installed in this Python. Run `make setup`."
    specs = KernelSpecManager().get_all_specs()
    ours = [name for name, spec in specs.items() if _runs_this_python(spec["spec"]["argv"][0])]
    if ours:
        return True, f"kernel {', '.join(sorted(ours))} runs {sys.executable}"
    return False, (f"no Jupyter kernel runs {sys.executable}. Run `make setup`, then pick the course's "
                   "kernel in JupyterLab (Kernel → Change Kernel).")


def check_server() -> tuple[bool, str]:
    from ..target import resolve

    target = resolve()
    if target.embedded and target.server().running() is None:
        return False, f"{target.label()} is not running. Run `python -m helpers db start` (or `make lab`)."
    version = asyncio.run(_server_version())
    major = int(re.match(r"\d+", version).group(0))  # type: ignore[union-attr]
    if major < MIN_SERVER_MAJOR:
        return False, f"{target.label()} runs PostgreSQL {version}; the course needs {MIN_SERVER_MAJOR} or newer."
    return True, f"{target.label()}: PostgreSQL {version}, prefix {target.prefix} (from {target.prefix_source})"


def check_template() -> tuple[bool, str]:
    from ..databases import template_status

    state, words = asyncio.run(template_status())
    if state == "ok":
        return True, words
    return False, f"{words}. Run `python -m helpers db template`."


async def _server_version() -> str:
    from ..connection import admin

    async with admin() as conn:
        return str(await conn.fetchval("SHOW server_version"))


def _runs_this_python(executable: str) -> bool:
    if executable in ("python", "python3"):  # the kernel Jupyter ships: whichever python runs Jupyter
        return Path(sys.executable).parent.joinpath("jupyter").exists()
    try:
        return Path(executable).resolve() == Path(sys.executable).resolve()
    except OSError:
        return False


def _direct_dependencies() -> list[str]:
    requirements = metadata.requires(DISTRIBUTION) or []
    names = {re.match(r"[A-Za-z0-9_.\-]+", spec).group(0) for spec in requirements  # type: ignore[union-attr]
             if "extra ==" not in spec or any(f'extra == "{extra}"' in spec for extra in ("lab", "test"))}
    return sorted(names)


CHECKS: list[tuple[str, Check]] = [
    ("python", check_python),
    ("packages", check_packages),
    ("kernel", check_kernel),
    ("server", check_server),
    ("template", check_template),
]
