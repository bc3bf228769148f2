"""A class on one server: several learners run notebooks at once against one server reached by URL.

What a class meets in its first hour, on the loopback server with a password (`tcp_server`):
four learners (one prefix, `team_3`, begins with another's, `team`) run notebooks under
strict nbval concurrently, each in a pytest process of its own with its own
COURSE_DB_PREFIX; meanwhile `team` runs `db reset`.  Every learner's notebooks pass, the
reset drops only team's databases, and every template is the same afterwards.  Wall time
and the peak number of connections are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import drop_course_databases, notebook_database, template_fingerprint
from helpers.server import EmbeddedServer
from tests.conftest import query

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LEARNERS = ["team_3", "alice", "bob", "carol"]
RESETTER = "team"  # a prefix of team_3's
NOTEBOOKS = ["notebooks/01_connect.ipynb", "notebooks/05_transactions.ipynb", "notebooks/06_savepoints.ipynb"]


def _as(prefix: str, url: str) -> dict[str, str]:
    return {**os.environ, "COURSE_DB_PREFIX": prefix, "DATABASE_URL": url}


def _in_env(env: dict[str, str], coroutine_factory):  # type: ignore[no-untyped-def]
    """Run a helpers coroutine as the learner `env` describes (the target follows the environment)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return asyncio.run(coroutine_factory())
    finally:
        os.environ.clear()
        os.environ.update(saved)


class PeakConnections(threading.Thread):
    """Polls pg_stat_activity every 0.2 s; `peak` is the most client connections seen at once."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.peak, self.done = dsn, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            n = query(self.dsn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")[0][0]
            self.peak = max(self.peak, n)
            self.done.wait(0.2)


def _databases(dsn: str) -> dict[str, int]:
    return {r["datname"]: r["oid"] for r in query(dsn, "SELECT datname, oid FROM pg_database")}


def test_a_class_on_one_server(tcp_server: EmbeddedServer) -> None:
    url = tcp_server.dsn()
    everyone = [*LEARNERS, RESETTER]
    for prefix in everyone:  # each learner's own sentinel, made before the class starts
        _in_env(_as(prefix, url), lambda: notebook_database("sentinel", seeded=False))
    _in_env(_as(RESETTER, url), lambda: notebook_database("05_transactions"))
    reference = _in_env(_as(RESETTER, url), template_fingerprint)

    monitor = PeakConnections(url)
    monitor.start()
    began = time.perf_counter()
    runs = {prefix: subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NOTEBOOKS],
        cwd=ROOT, env=_as(prefix, url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for prefix in LEARNERS}
    try:
        _wait_until_running(url, "team_3__0")
        before = {name: oid for name, oid in _databases(url).items() if not name.startswith(RESETTER + "__")}
        reset = subprocess.run([sys.executable, "-m", "helpers", "db", "reset"], cwd=ROOT, env=_as(RESETTER, url),
                               capture_output=True, text=True, timeout=300)
        after = _databases(url)
        outputs = {prefix: run.communicate(timeout=600)[0] for prefix, run in runs.items()}
    finally:
        for run in runs.values():
            run.kill()
        monitor.done.set()
    wall = time.perf_counter() - began

    assert reset.returncode == 0, reset.stderr
    dropped = reset.stdout.split("dropped (team's only): ")[1].splitlines()[0].split(", ")
    assert dropped and all(name.startswith("team__") for name in dropped), dropped
    assert "team__sentinel" in dropped and not any(name.startswith("team_3") for name in dropped)
    survivors = {name: oid for name, oid in before.items() if name.endswith("__sentinel") or "template" in name}
    assert {name: after.get(name) for name in survivors} == survivors  # no one else's sentinel or template touched
    for prefix, run in runs.items():
        assert run.returncode == 0, f"{prefix}'s notebooks failed:\n{outputs[prefix][-3000:]}"
    for prefix in everyone:
        assert _in_env(_as(prefix, url), template_fingerprint) == reference, f"{prefix}'s template differs"
    print(f"\nclass on one server: {len(LEARNERS)} learners x {len(NOTEBOOKS)} notebooks under strict nbval, "
          f"plus {RESETTER!r}'s db reset meanwhile: wall {wall:.0f} s, peak {monitor.peak} client connections")
    for prefix in everyone:
        _in_env(_as(prefix, url), drop_course_databases)


def _wait_until_running(url: str, database_prefix: str, timeout: float = 240) -> None:
    """Until one of that learner's notebook databases exists: their notebooks are running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(name.startswith(database_prefix) for name in _databases(url)):
            return
        time.sleep(0.2)
    raise AssertionError(f"no database starting with {database_prefix} appeared within {timeout:.0f} s")
