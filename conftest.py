"""Session-wide guard: no test and no notebook may change the seeded template.

Runs around the whole pytest session (unit tests and nbval alike, which per-test fixtures
cannot reach): the template is verified row by row first (a template that drifted, e.g.
after a crash, is rebuilt with a one-line notice), and its fingerprint, sequences included,
must be the same at the end.

Only when the session needs the server: a session whose tests are all marked `no_server`
(`make test-unit`) neither starts PostgreSQL nor checks the template.  Under xdist the
controller collects nothing, so it checks whenever it runs (`make test` runs everything).
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
    "tests.async_tests",  # `async def test_…` runs in asyncio.run
    "tests.pgbouncer_cells",  # notebook 11's PgBouncer cells skip, with the reason, where it is missing
]

_BEFORE: dict[str, tuple[int, str]] = {}


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")  # xdist workers skip: the controller checks


def _guard_template() -> None:
    asyncio.run(ensure_template(verify=True))
    _BEFORE.update(asyncio.run(template_fingerprint()))


def _is_xdist_controller(config: pytest.Config) -> bool:
    return _is_controller(config) and getattr(config.option, "numprocesses", None) not in (None, 0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_server: the test needs no PostgreSQL (make test-unit runs these)")
    config.addinivalue_line("markers", "server: this test needs PostgreSQL although its module is marked no_server")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_xdist_controller(session.config):
        _guard_template()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Without xdist: start the server and check the template only if a test will need them."""
    if _is_controller(session.config) and not _is_xdist_controller(session.config) and any(
            needs_server(item) for item in session.items):
        _guard_template()


def needs_server(item: pytest.Item) -> bool:
    return item.get_closest_marker("server") is not None or item.get_closest_marker("no_server") is None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _BEFORE or not _is_controller(session.config):
        return
    after = asyncio.run(template_fingerprint())
    if after != _BEFORE:
        changed = sorted(t for t in after if after[t] != _BEFORE.get(t))
        print(f"\nFAILED: the seeded template changed during the session (tables: {', '.join(changed)})")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
