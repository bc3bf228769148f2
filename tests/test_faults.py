"""Crashes, for real: kill -9 of the embedded server after, during and around a template build;
a server stopped under a learner's connection; a disk that fills up.

Each test runs its own socket-only server (a temporary data directory) as the course's
embedded server, so killing it touches nothing else.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from helpers import ServerError, databases, diagnose, notebook_database
from helpers.connection import connected, server_dsn
from helpers.server import SYSTEM_USER, EmbeddedServer
from helpers.target import resolve
from helpers.tracebacks import short_traceback
from tests.conftest import kill_9, value

pytestmark = pytest.mark.slow


@pytest.fixture
def crash_server(scratch_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedServer]:
    """The scratch server as the course's embedded server (COURSE_PGDATA), with a prefix of its own."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COURSE_PGDATA", str(scratch_server.pgdata))
    monkeypatch.setenv("COURSE_DB_PREFIX", "crash")
    scratch_server.start()
    yield scratch_server


async def next_brand_id(notebook: str) -> int:
    async with connected(await notebook_database(notebook)) as conn:
        return await conn.fetchval("INSERT INTO brand (brand_name) VALUES ('new') RETURNING brand_id")


def test_a_template_built_before_a_crash_keeps_its_sequences(crash_server: EmbeddedServer) -> None:
    asyncio.run(databases.ensure_template())
    kill_9(crash_server)
    assert asyncio.run(next_brand_id("after_crash")) == 101  # the server is restarted on first use


def test_an_unprotected_template_drifts_in_a_crash_and_is_healed(crash_server: EmbeddedServer,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The control: built without the exact setval and the CHECKPOINT (as the course did before), the
    crash really moves the sequences 32 ahead; the next clone sees it and rebuilds the template."""

    async def nothing(_: object) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(databases, "_log_sequences_exactly", nothing)
        patch.setattr(databases, "_checkpoint", nothing)
        asyncio.run(databases.ensure_template())
    kill_9(crash_server)
    crash_server.start()
    template = resolve().template()

    async def clone_without_check() -> int:
        async with connected(server_dsn()) as admin:
            await admin.execute(f'CREATE DATABASE crash_probe TEMPLATE "{template}"')
        async with connected(server_dsn("crash_probe")) as conn:
            return await conn.fetchval("SELECT last_value FROM brand_brand_id_seq")

    assert asyncio.run(clone_without_check()) == 132  # what recovery did to it
    capsys.readouterr()
    started = time.perf_counter()
    assert asyncio.run(next_brand_id("healed")) == 101
    healed_in = time.perf_counter() - started
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and "had drifted" in notice[0] and "brand_brand_id_seq at 132" in notice[0], notice
    print(f"\nautomatic rebuild of a drifted template: {healed_in:.1f} s (clone and check included)")


@pytest.mark.parametrize("after", [0.05, 0.3, 0.8])
def test_kill_9_during_a_template_build(crash_server: EmbeddedServer, after: float) -> None:
    """The build fails with one paragraph (never hangs); the next call rebuilds; nothing half-built is left."""

    async def build_and_kill() -> None:
        build = asyncio.create_task(databases.ensure_template())
        await _wait_for_database("crash__eshop__template__build")
        await asyncio.sleep(after)  # in the schema, the COPY or the commit
        await asyncio.to_thread(kill_9, crash_server)
        await build

    with pytest.raises(ServerError, match="was lost while building crash__eshop__template") as info:
        asyncio.run(build_and_kill())
    assert (f"The embedded server in {crash_server.pgdata} is not running now: it ended without a shutdown in "
            "its log, so it was killed or crashed.") in str(info.value)
    assert "What to do: run the cell (or command) again" in str(info.value)
    assert asyncio.run(next_brand_id("after_build_crash")) == 101
    names = asyncio.run(databases.course_databases())
    assert names == ["crash__after_build_crash", "crash__eshop__template"]


def test_a_backend_killed_during_a_build(crash_server: EmbeddedServer) -> None:
    """The OOM killer takes the backend that runs the COPY: the server restarts itself (crash recovery),
    and the message quotes its log instead of guessing."""

    async def build_and_kill_its_backend() -> None:
        build = asyncio.create_task(databases.ensure_template())
        async with connected(server_dsn()) as admin:
            for _ in range(400):
                pid = await admin.fetchval("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY%'",
                                           "crash__eshop__template__build")
                if pid:
                    break
                await asyncio.sleep(0.01)
        assert pid, "the COPY never started"
        os.kill(pid, signal.SIGKILL)
        await build

    with pytest.raises(ServerError, match="was lost while building crash__eshop__template") as info:
        asyncio.run(build_and_kill_its_backend())
    assert "The embedded server crashed and restarted itself (its log: client backend (PID " in str(info.value)
    assert "was terminated by signal 9: Killed)" in str(info.value)
    assert asyncio.run(next_brand_id("after_backend_crash")) == 101


def test_kill_9_during_a_notebook(crash_server: EmbeddedServer) -> None:
    """The lesson's own connection breaks (asyncpg's error); running the setup cell again is all it takes."""

    async def lesson() -> None:
        async with connected(await notebook_database("lesson")) as conn:
            await asyncio.to_thread(kill_9, crash_server)
            await conn.fetchval("SELECT count(*) FROM sku")

    with pytest.raises(Exception) as info:
        asyncio.run(lesson())
    assert not isinstance(info.value, AssertionError)
    assert asyncio.run(next_brand_id("lesson")) == 101


async def _wait_for_database(name: str) -> None:
    for _ in range(200):
        async with connected(server_dsn()) as admin:
            if await admin.fetchval("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name):
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never appeared")


# -- a server stopped or killed mid-notebook: the learner's own connection -----------------------
def hint_for(error: BaseException) -> str:
    lines = short_traceback({}, type(error), error, error.__traceback__)
    assert lines[-1].startswith("\x1b[1mThe course:\x1b[0m "), lines
    return lines[-1]


@pytest.mark.parametrize("how", ["kill -9", "db stop"])
def test_the_learners_broken_connection_gets_the_next_step(crash_server: EmbeddedServer, how: str) -> None:
    """asyncpg's own error stays; the short traceback adds what happened and which cells to rerun."""

    async def lesson() -> list[str]:
        conn = await asyncpg.connect(await notebook_database("broken", seeded=False))
        if how == "kill -9":
            await asyncio.to_thread(kill_9, crash_server)
        else:
            await asyncio.to_thread(crash_server.stop)
        await until_closed(conn)
        hints = []
        for _ in range(2):  # the query that meets the break, then the next one on the closed connection
            with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError,
                                asyncpg.AdminShutdownError, ConnectionError)) as info:
                await conn.fetchval("SELECT 1")
            hints.append(await asyncio.to_thread(hint_for, info.value))
        assert "connection is closed" in str(info.value)
        with pytest.raises(OSError) as info:  # the cell that connects, rerun alone
            await asyncpg.connect(crash_server.dsn())
        hints.append(await asyncio.to_thread(hint_for, info.value))
        return hints

    started = time.monotonic()
    hints = asyncio.run(lesson())
    assert time.monotonic() - started < 20
    state = ("it ended without a shutdown in its log, so it was killed or crashed" if how == "kill -9"
             else "it was stopped (its log records the shutdown)")
    for hint in hints:
        assert f"The embedded server in {crash_server.pgdata} is not running now: {state}" in hint, hint
        assert "What to do: run the notebook's setup cell again" in hint and "then the cell that connects" in hint
    assert hints[0].startswith("\x1b[1mThe course:\x1b[0m This connection to the server is gone: ")
    assert hints[2].startswith("\x1b[1mThe course:\x1b[0m No server is listening at this DSN now. ")
    assert asyncio.run(next_brand_id("broken")) == 101  # which is all it takes


async def until_closed(conn: asyncpg.Connection) -> None:
    """What happens between two cells: the kernel's loop runs, and asyncpg sees the socket close.

    (Within one cell, a query sent before that can meet asyncpg's InternalClientError instead.)"""
    for _ in range(100):
        if conn.is_closed():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("asyncpg never saw the connection close")


# -- disk full -------------------------------------------------------------------------------------
@contextmanager
def small_disk(size: str) -> Iterator[Path]:
    """A tmpfs of `size` (a real filesystem that fills up); needs root, as CI and `make test` here run."""
    mount = Path(tempfile.mkdtemp(prefix="course-small-disk-"))
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs to fill up (root with CAP_SYS_ADMIN is needed): "
                        f"{result.stderr.strip()}")
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        mount.rmdir()


def test_disk_full_under_the_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole data directory on a disk too small for the template: the WAL cannot be written, the
    server PANICs and restarts itself. That used to read as a crash that "recovers on its own"."""
    with small_disk("55m") as disk:
        server = EmbeddedServer(disk / "pgdata")
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("COURSE_PGDATA", str(server.pgdata))
        monkeypatch.setenv("COURSE_DB_PREFIX", "full")
        server.start()
        try:
            started = time.monotonic()
            with pytest.raises(ServerError) as info:
                asyncio.run(databases.ensure_template())
            assert time.monotonic() - started < 20
        finally:
            if server.running() is not None:
                kill_9(server)  # after a PANIC on a full disk it cannot even shut down
        text = str(info.value)
        print(f"\n{text}")
        assert text.startswith(f"The disk mounted at {disk} is full: the embedded server (data directory "
                               f"{server.pgdata}) could not write {server.pgdata}/pg_wal/"), text
        assert "No space left on device" in text and "while building full__eshop__template" in text
        assert "What to do: free at least 30 MB on that disk (it has " in text and "lost" not in text


def test_disk_full_in_a_tablespace_is_sqlstate_53100(crash_server: EmbeddedServer) -> None:
    """Tables on a small disk (a tablespace; WAL elsewhere): the COPY fails with DiskFullError (53100),
    the half-built copy is dropped at once, and the server goes on working."""
    with small_disk("6m") as disk:
        if os.geteuid() == 0:
            shutil.chown(disk, SYSTEM_USER, SYSTEM_USER)

        async def configure(sql: str) -> None:
            async with connected(server_dsn()) as conn:
                await conn.execute(sql)
                await conn.execute("SELECT pg_reload_conf()")

        asyncio.run(configure(f"CREATE TABLESPACE small LOCATION '{disk}'"))
        asyncio.run(configure("ALTER SYSTEM SET default_tablespace = 'small'"))
        try:
            with pytest.raises(ServerError) as info:
                asyncio.run(databases.ensure_template())
            text = str(info.value)
            print(f"\n{text}")
            assert isinstance(info.value.__context__, asyncpg.DiskFullError)
            assert text.startswith(f"The disk mounted at {disk} is full: the embedded server (data directory "
                                   f"{crash_server.pgdata}) could not write {disk}/PG_"), text
            assert "could not extend file" in text and "The half-built copy has been dropped." in text
            assert asyncio.run(databases.course_databases()) == []
        finally:
            asyncio.run(configure("ALTER SYSTEM RESET default_tablespace"))
            asyncio.run(configure("DROP TABLESPACE small"))
    assert asyncio.run(next_brand_id("after_full")) == 101


def test_the_size_the_disk_full_message_names(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The template's size and its build's WAL, as the message states them, within a third of the real ones
    (on the embedded server, whose figures they are)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)

    async def measure() -> tuple[float, float]:
        async with connected(server_dsn()) as conn:
            before = await conn.fetchval("SELECT pg_current_wal_lsn()")
            template = await databases.ensure_template(force=True)
            wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", before)
            size = await conn.fetchval("SELECT pg_database_size($1)", template)
        return size / 1e6, float(wal) / 1e6

    size, wal = asyncio.run(measure())
    print(f"\ntemplate {size:.1f} MB, its build wrote {wal:.1f} MB of WAL")
    assert abs(size - diagnose.TEMPLATE_MB) < diagnose.TEMPLATE_MB / 3
    assert abs(wal - diagnose.BUILD_WAL_MB) < diagnose.BUILD_WAL_MB / 3


# -- a learner presses Stop ------------------------------------------------------------------------
class Kernel:
    """The course's Jupyter kernel, driven the way JupyterLab drives it (execute, interrupt)."""

    def __init__(self) -> None:
        from tests.kernels import UnixSocketKernelManager

        self.manager = UnixSocketKernelManager(kernel_name="asyncpg-course")
        self.manager.start_kernel()
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def send(self, code: str) -> str:
        return str(self.client.execute(code))

    def outputs(self, msg_id: str, timeout: float = 60) -> tuple[str, dict[str, object] | None]:
        """The cell's printed text and its error (ename, evalue, traceback), once it has finished."""
        text, error = "", None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text += content["text"]
            elif kind == "error":
                error = content
            elif kind == "status" and content["execution_state"] == "idle":
                return text, error
        raise AssertionError(f"the cell did not finish within {timeout} s")

    def run(self, code: str) -> str:
        text, error = self.outputs(self.send(code))
        assert error is None, error
        return text

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def interrupt_when(kernel: Kernel, code: str, ready: Callable[[], bool]) -> dict[str, object]:
    msg_id = kernel.send(code)
    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, "the cell never got going"
        time.sleep(0.1)
    kernel.manager.interrupt_kernel()
    _, error = kernel.outputs(msg_id)
    assert error is not None
    return error


def test_an_interrupted_cell_says_what_state_the_connection_is_in(prefix: str) -> None:
    dsn = asyncio.run(notebook_database("interrupt", seeded=False))
    kernel = Kernel()
    try:
        kernel.run(f"import asyncpg, helpers\nconn = await asyncpg.connect({dsn!r})\n"
                   "await conn.execute('CREATE TABLE t (x int)')")

        def sleeping() -> bool:
            return bool(value(dsn, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"))

        error = interrupt_when(kernel, "async with conn.transaction():\n"
                                       "    await conn.execute('INSERT INTO t VALUES (1)')\n"
                                       "    await conn.fetchval('SELECT pg_sleep(60)')", sleeping)
        assert error["ename"] == "CancelledError"
        hint = str(error["traceback"][-1])  # type: ignore[index]
        print(f"\n{hint}")
        assert hint.startswith("\x1b[1mThe course:\x1b[0m The cell was interrupted while asyncpg waited for the server")
        # what the line promises: cancelled on the server, rolled back, the connection usable again
        assert kernel.run("print(conn.is_closed(), conn.is_in_transaction(), await conn.fetchval("
                          "'SELECT count(*) FROM t'))").split() == ["False", "False", "0"]
        assert not sleeping()

        error = interrupt_when(kernel, "import time\nwhile True:\n    time.sleep(0.05)", lambda: time.sleep(1) is None)
        assert error["ename"] == "KeyboardInterrupt"
        assert str(error["traceback"][-1]).endswith("The cell was interrupted. Run it again to redo its work.")  # type: ignore[index]
    finally:
        kernel.close()
