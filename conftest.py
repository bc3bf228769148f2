"""Session-wide guard: no test and no notebook may change the seeded template.

Runs around the whole pytest session (unit tests and nbval alike, which per-test fixtures
cannot reach): the template is verified row by row first (a template that drifted, e.g.
after a crash, is rebuilt with a one-line notice), and its fingerprint, sequences included,
must be the same at the end.
"""

from __future__ import annotations

import asyncio

import pytest

from helpers import template_fingerprint
from helpers.databases import ensure_template
from tests.scheduling import pytest_collection_modifyitems  # noqa: F401  (a hook: `make test` groups by notebook)

pytest_plugins = [
    "tests.exercise_probes",  # each exercise tried wrong and right in its notebook's nbval kernel
    "tests.kernels",  # nbval's kernels on Unix sockets: no TCP port races when many start at once
    "tests.pgbouncer_cells",  # notebook 11's PgBouncer cells skip, with the reason, where it is missing
]

_BEFORE: dict[str, tuple[int, str]] = {}


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")  # xdist workers skip: the controller checks


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_controller(session.config):
        asyncio.run(ensure_template(verify=True))
        _BEFORE.update(asyncio.run(template_fingerprint()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _BEFORE or not _is_controller(session.config):
        return
    after = asyncio.run(template_fingerprint())
    if after != _BEFORE:
        changed = sorted(t for t in after if after[t] != _BEFORE.get(t))
        print(f"\nFAILED: the seeded template changed during the session (tables: {', '.join(changed)})")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
