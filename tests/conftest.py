"""Fixtures: real PostgreSQL servers only.

- the course's embedded server (the one `make test` started), used through a throw-away
  name prefix so tests never touch a learner's databases;
- a second embedded server on a loopback TCP port with password authentication, reached
  the way a class server is: through DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import psutil
import pytest

from helpers import drop_course_databases
from helpers.server import EmbeddedServer
from tests.ports import free_port

TCP_PASSWORD = "course-test"
ROOT = Path(__file__).resolve().parent.parent


def nbval_in(folder: Path, *args: str, plugins: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """pytest with strict nbval on notebooks written to `folder`, outside the repository: the
    course's sanitize rules, nbval's kernels on Unix sockets (tests.kernels) and `plugins`."""
    enabled = " ".join(f"-p {plugin}" for plugin in ("tests.kernels", *plugins))
    (folder / "pytest.ini").write_text(f"[pytest]\naddopts = --nbval --nbval-current-env {enabled}\n")
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           f"--nbval-sanitize-with={ROOT / 'tests' / 'nbval_sanitize.cfg'}", *args],
                          cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)},  # tests.* importable there
                          capture_output=True, text=True, timeout=1800)


def query(dsn: str, sql: str, *args: object) -> list:
    """Run one statement on a fresh connection (plain asyncpg) and return its rows."""
    return asyncio.run(_query(dsn, sql, *args))


def value(dsn: str, sql: str, *args: object) -> object:
    """The first column of the first row of `sql`."""
    return query(dsn, sql, *args)[0][0]


async def _query(dsn: str, sql: str, *args: object) -> list:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A prefix of this test's own, so its databases and template are its own; dropped afterwards."""
    name = f"t{os.getpid()}_{os.urandom(3).hex()}"
    monkeypatch.setenv("COURSE_DB_PREFIX", name)
    yield name
    asyncio.run(drop_course_databases())


@contextmanager
def server_directory(name: str) -> Iterator[Path]:
    """A directory for a test server's data, outside pytest's tmp_path.

    As root the server runs as another user, who must traverse the parents; pytest takes the
    group and other bits off /tmp/pytest-of-<user> whenever any pytest session starts (a child
    pytest, or another session on a shared machine), which would lock a running server out.
    """
    directory = Path(tempfile.mkdtemp(prefix=f"course-{name}-"))
    directory.chmod(0o755)
    try:
        yield directory / "pgdata"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def password_server(name: str, password: str) -> Iterator[EmbeddedServer]:
    """A throw-away embedded server on a loopback port with password authentication, started."""
    with server_directory(name) as pgdata:
        server = EmbeddedServer(pgdata, port=free_port(), password=password)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def tcp_server() -> Iterator[EmbeddedServer]:
    with password_server("tcp", TCP_PASSWORD) as server:
        yield server


@pytest.fixture
def via_url(tcp_server: EmbeddedServer, prefix: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """DATABASE_URL pointing at the TCP server; returns the URL."""
    url = tcp_server.dsn()
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def kill_9(server: EmbeddedServer) -> None:
    """SIGKILL the postmaster, as the OOM killer or a dying laptop would, and wait until its backends are gone.

    The backends notice the postmaster's death on their own, but not at once: a query that reaches
    an idle backend before it has noticed still runs and answers. Waiting for them makes "the
    connection is broken now" true, which is what a learner sees after a real crash.
    """
    running = server.running()
    assert running is not None
    postmaster = psutil.Process(running.pid)
    processes = [postmaster, *postmaster.children()]
    os.kill(running.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(process) for process in processes):
        if time.monotonic() > deadline:
            raise AssertionError(f"still alive 10 s after SIGKILL of the postmaster: {processes}")
        time.sleep(0.02)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def scratch_server() -> Iterator[EmbeddedServer]:
    """A private socket-only server in a temporary directory, for tests that crash or lock it."""
    with server_directory("scratch") as pgdata:
        server = EmbeddedServer(pgdata)
        yield server
        server.stop()
