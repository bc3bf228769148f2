"""Where things are: the repository, the embedded server's data directory, the name prefix.

Everything a learner may want to change is an environment variable, read here and nowhere
else, so the README's table of settings and the code cannot drift apart.  The result is put
together once, as a `helpers.target.Target`; the functions here are what it is made of.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from . import names

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: Point the whole course at another server (docker compose, a class server, a managed one).
DATABASE_URL_VAR = "DATABASE_URL"
#: Where the embedded server keeps its data (default: ``.pgdata/`` in the repository).
PGDATA_VAR = "COURSE_PGDATA"
#: Prefix of every database the course creates (default: the JupyterHub user, else the OS user).
PREFIX_VAR = "COURSE_DB_PREFIX"
#: Set by JupyterHub for each learner's server: in a container every OS user is `jovyan`.
JUPYTERHUB_USER_VAR = "JUPYTERHUB_USER"
#: The password of notebook 01's demo role on a class server, chosen by the instructor
#: (`course class setup`) and handed to every learner's server by the spawner.
DEMO_PASSWORD_VAR = "COURSE_DEMO_PASSWORD"
#: Where a learner's files go (benchmark figures, plots): default build/ in the course folder
#: when this user may write there, else ~/asyncpg-course-work.
WORK_DIR_VAR = "COURSE_WORK_DIR"

#: Every variable the resolved target depends on (getpass reads the last four).
WATCHED_VARS = (DATABASE_URL_VAR, PGDATA_VAR, PREFIX_VAR, JUPYTERHUB_USER_VAR, "LOGNAME", "USER", "LNAME", "USERNAME")


def database_url() -> str | None:
    """The server the learner chose, or None for the embedded default."""
    return os.environ.get(DATABASE_URL_VAR) or None


def pgdata_dir() -> Path:
    """COURSE_PGDATA, a relative one taken from the repository's folder (never the current one).

    Kernels run in notebooks/, the shell anywhere: resolved against the current folder, one
    setting would name a second cluster for each of them.
    """
    path = Path(os.environ.get(PGDATA_VAR) or ".pgdata").expanduser()
    return (REPO_ROOT / path).resolve()  # an absolute path replaces REPO_ROOT


def demo_password() -> str | None:
    """The demo role's password the instructor chose, or None (then the course's public one)."""
    return os.environ.get(DEMO_PASSWORD_VAR) or None


def work_dir(*parts: str) -> Path:
    """A folder this learner may write to, made if missing: `work_dir("bench")`.

    On JupyterHub the course folder is shared and read-only for learners, so its build/ is no
    place for one learner's files; each learner's home is.
    """
    explicit = os.environ.get(WORK_DIR_VAR)
    if explicit:
        base = Path(explicit).expanduser().resolve()
    elif os.access(REPO_ROOT, os.W_OK) and (not (REPO_ROOT / "build").exists() or os.access(REPO_ROOT / "build", os.W_OK)):
        base = REPO_ROOT / "build"
    else:
        base = Path.home() / "asyncpg-course-work"
    folder = base.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prefix_and_source() -> tuple[str, str]:
    """The prefix that keeps one learner's databases apart from another's, and why it is that one.

    An explicit COURSE_DB_PREFIX is taken as written (a bad one is an error: the learner chose
    it); a JupyterHub or OS user name is mapped to a valid prefix, never an error.
    """
    explicit = os.environ.get(PREFIX_VAR) or None  # set but empty counts as unset, as for DATABASE_URL
    if explicit is not None:
        return names.check_prefix(explicit), f"{PREFIX_VAR}"
    hub_user = os.environ.get(JUPYTERHUB_USER_VAR)
    if hub_user:
        return names.prefix_from_user(hub_user), f"{JUPYTERHUB_USER_VAR}={hub_user!r}"
    user = getpass.getuser()
    return names.prefix_from_user(user), f"the OS user {user!r}; {PREFIX_VAR} and {JUPYTERHUB_USER_VAR} are unset"


def watched_environment() -> tuple[str | None, ...]:
    """The values a resolved target was made from: when one changes, resolve again."""
    return tuple(os.environ.get(name) for name in WATCHED_VARS)


def notebook_paths(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course's numbered notebooks (`NN_name.ipynb`), in course order: the one list of them."""
    return sorted(directory.glob("[0-9][0-9]_*.ipynb"))
