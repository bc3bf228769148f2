"""Every database name the course makes, and the rules that keep them apart, in one place.

A learner's databases are ``<prefix>__<suffix>``: the prefix, a double underscore, then a
notebook's name (``alice__04_connection_pools``) or one of the course's own suffixes
(``alice__eshop__template``).  A prefix may neither contain ``__`` nor end with ``_``, so the
first ``__`` in a name always ends the prefix: ``team`` owns ``team__04_…`` and never
``team_3__04_…``, whatever the two prefixes are.  Notebook names contain no ``__`` either, so
no notebook can ever name the template or a scratch database.

PostgreSQL cuts identifiers at 63 bytes without an error; the length limits below make sure
it never has to.
"""

from __future__ import annotations

import hashlib
import re

from .errors import ConfigError

SEPARATOR = "__"
MAX_IDENTIFIER = 63  # NAMEDATALEN - 1
MAX_PREFIX = 29
MAX_SUFFIX = MAX_IDENTIFIER - MAX_PREFIX - len(SEPARATOR)  # 32

#: lowercase words joined by single underscores: no "__", no leading or trailing "_".
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_NOTEBOOK_RE = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")

TEMPLATE_SUFFIX = "eshop__template"
BUILD_SUFFIX = "eshop__template__build"
FINGERPRINT_SUFFIX = "check__"  # + a process id: a throw-away clone to read the template through


def check_prefix(prefix: str, *, source: str = "COURSE_DB_PREFIX") -> str:
    """`prefix` unchanged when it can start every database name of one learner; else a ConfigError."""
    if len(prefix) <= MAX_PREFIX and _PREFIX_RE.fullmatch(prefix):
        return prefix
    raise ConfigError(
        f"The database name prefix {prefix!r} (from {source}) cannot be part of a database name: "
        "it must start with a lowercase letter and hold only lowercase letters, digits and single "
        f"underscores between them (at most {MAX_PREFIX} characters).",
        "set COURSE_DB_PREFIX to something like 'alice' or 'team_3'.",
    )


def prefix_from_user(user: str) -> str:
    """A valid prefix for any user name (JupyterHub's, the OS's), never an error.

    Letters are lowered and everything else a plain identifier cannot hold becomes one `_`.
    When that changed more than the case, a short hash of the original name is appended, so
    `Alice.Smith` and `alice_smith` (two JupyterHub users) still get two different prefixes.
    """
    mapped = re.sub(r"[^a-z0-9]+", "_", user.lower()).strip("_")
    if not mapped or not mapped[0].isalpha():
        mapped = f"u_{mapped}".rstrip("_")
    if mapped == user.lower() and len(mapped) <= MAX_PREFIX:
        return mapped
    digest = hashlib.sha256(user.encode()).hexdigest()[:6]
    return f"{mapped[:MAX_PREFIX - 7].rstrip('_')}_{digest}"


def sub_prefix(prefix: str, tag: str) -> str:
    """A prefix of its own for a tool run by `prefix`'s owner (e.g. the browser test): `alice_browser`."""
    return check_prefix(f"{prefix[:MAX_PREFIX - len(tag) - 1].rstrip('_')}_{tag}", source="a derived prefix")


def database_name(prefix: str, notebook: str) -> str:
    """`04_connection_pools` → `<prefix>__04_connection_pools`; checked, since identifiers cannot be $-parameters."""
    if len(notebook) > MAX_SUFFIX or not _NOTEBOOK_RE.fullmatch(notebook):
        raise ConfigError(
            f"{notebook!r} cannot name a course database.",
            f"use lowercase letters and digits joined by single underscores (at most {MAX_SUFFIX}), "
            "e.g. '04_connection_pools'.",
        )
    return _join(prefix, notebook)


def template_name(prefix: str) -> str:
    return _join(prefix, TEMPLATE_SUFFIX)


def build_name(prefix: str) -> str:
    """Where the template is built before it is swapped in (a failed build leaves the old one alone)."""
    return _join(prefix, BUILD_SUFFIX)


def check_name(prefix: str, pid: int) -> str:
    """A throw-away clone of the template, one per process, to read it through."""
    return _join(prefix, f"{FINGERPRINT_SUFFIX}{pid}")


def owned_pattern(prefix: str) -> str:
    """What every database of `prefix`, and no other prefix's, starts with."""
    return check_prefix(prefix) + SEPARATOR


def owner(database: str) -> str | None:
    """The prefix that owns `database`, or None for a database the course did not make."""
    prefix, separator, _ = database.partition(SEPARATOR)
    if not separator or len(prefix) > MAX_PREFIX or not _PREFIX_RE.fullmatch(prefix):
        return None
    return prefix


def _join(prefix: str, suffix: str) -> str:
    name = f"{check_prefix(prefix)}{SEPARATOR}{suffix}"
    assert len(name.encode()) <= MAX_IDENTIFIER, name
    return name
