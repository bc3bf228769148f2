"""Where things are: the repository, the embedded server's data directory, the name prefix.

Everything a learner may want to change is an environment variable, read here and nowhere
else, so the README's table of settings and the code cannot drift apart.
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Point the whole course at another server (docker compose, a class server, a managed one).
DATABASE_URL_VAR = "DATABASE_URL"
#: Where the embedded server keeps its data (default: ``.pgdata/`` in the repository).
PGDATA_VAR = "COURSE_PGDATA"
#: Prefix of every database the course creates (default: the OS user name).
PREFIX_VAR = "COURSE_DB_PREFIX"

_PREFIX_RE = re.compile(r"[a-z_][a-z0-9_]{0,29}")


def database_url() -> str | None:
    """The server the learner chose, or None for the embedded default."""
    return os.environ.get(DATABASE_URL_VAR) or None


def pgdata_dir() -> Path:
    return Path(os.environ.get(PGDATA_VAR) or REPO_ROOT / ".pgdata").expanduser().resolve()


def db_prefix() -> str:
    """The prefix that keeps one learner's databases apart from another's on a shared server."""
    explicit = os.environ.get(PREFIX_VAR)
    prefix = explicit if explicit is not None else _default_prefix()
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError(
            f"The database name prefix {prefix!r} cannot be part of a database name: "
            "it must start with a lowercase letter or underscore and hold only lowercase "
            "letters, digits and underscores (at most 30).",
            f"set {PREFIX_VAR} to something like 'alice' or 'team_3'.",
        )
    return prefix


def _default_prefix() -> str:
    """The OS user name, lowered and with anything a plain identifier cannot hold replaced."""
    name = re.sub(r"[^a-z0-9_]", "_", getpass.getuser().lower())
    return name if re.match(r"[a-z_]", name) else f"u_{name}"
