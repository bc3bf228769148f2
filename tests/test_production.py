"""Notebook 11's promises, tested against the real thing: a real PgBouncer, real cancellations.

- helpers.pgbouncer: a missing binary and a port in use each give one paragraph; the password
  is never on a command line, the files are private, and stop() leaves nothing behind;
- a query cancelled on a pooled connection: the next borrower gets an idle connection (the old
  one, once the server acknowledged the cancel, or a new one), never one in the middle of it;
- the notebook passes twice in a row in one kernel (Run All, then Run All again) while notebook
  04 runs beside it on the same server.
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from pathlib import Path

import asyncpg
import nbformat
import psutil
import pytest

from helpers import pgbouncer, server_dsn
from tests import pgbouncer_cells
from tests.conftest import nbval_in

ROOT = Path(__file__).resolve().parent.parent
needs_pgbouncer = pytest.mark.skipif(pgbouncer.missing_reason() is not None,
                                     reason=pgbouncer.missing_reason() or "")


def test_pgbouncer_cells_skip_with_the_reason_where_it_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """make test never drops them silently: the skip names what is missing and how to install it."""
    class Cell:  # stands in for nbval's IPyNbCell: a notebook cell and add_marker
        def __init__(self, tags: list[str]) -> None:
            self.cell = nbformat.v4.new_code_cell(metadata={"tags": tags})
            self.markers: list[pytest.MarkDecorator] = []

        def add_marker(self, marker: pytest.MarkDecorator) -> None:
            self.markers.append(marker)

    monkeypatch.setattr(pgbouncer_cells, "IPyNbCell", Cell)
    tagged, plain = Cell(["pgbouncer"]), Cell([])
    monkeypatch.setattr(pgbouncer, "binary", lambda: None)
    pgbouncer_cells.pytest_collection_modifyitems([tagged, plain])  # type: ignore[list-item]
    assert plain.markers == []
    [skip] = tagged.markers
    assert skip.name == "skip" and "PgBouncer is not installed" in skip.kwargs["reason"]
    assert "apt-get install pgbouncer" in skip.kwargs["reason"] and "brew install pgbouncer" in skip.kwargs["reason"]


def test_a_missing_pgbouncer_is_one_paragraph_with_the_install_line() -> None:
    with pytest.raises(pgbouncer.PgBouncerError) as raised:
        pgbouncer.PgBouncer(server_dsn(), executable="/nonexistent/pgbouncer").start()
    message = str(raised.value)
    assert "PgBouncer is not installed" in message and "apt-get install pgbouncer" in message
    assert "brew install pgbouncer" in message and "Traceback" not in message


@needs_pgbouncer
def test_a_port_in_use_is_one_paragraph_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # a listener answers a plain port check: only PgBouncer's own log may count
        port = taken.getsockname()[1]
        bouncer = pgbouncer.PgBouncer(server_dsn(), port=port)
        with pytest.raises(pgbouncer.PgBouncerError) as raised:
            bouncer.start()
    message = str(raised.value)
    assert f"did not start on 127.0.0.1:{port}" in message and "Address already in use" in message, message
    assert "another program listens on that port" in message
    assert bouncer.process is None and bouncer.directory is None, "a failed start leaves nothing running"


@needs_pgbouncer
def test_pgbouncer_keeps_its_secrets_off_argv_and_its_files_private() -> None:
    bouncer = pgbouncer.PgBouncer(server_dsn(), tls_host="localhost").start()
    try:
        assert bouncer.process is not None and bouncer.directory is not None and bouncer.tls is not None
        directory = bouncer.directory
        assert stat.S_IMODE(bouncer.tls.key.stat().st_mode) == 0o600 and bouncer.tls.key.parent == directory
        assert not (directory / "ca.key").exists(), "the CA's key is deleted once it has signed"
        command_line = " ".join(psutil.Process(bouncer.process.pid).cmdline())
        assert bouncer.password not in command_line, command_line
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for name in ("pgbouncer.ini", "users.txt"):
            assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
        assert asyncio.run(_fetch_one(bouncer.dsn("postgres"), "SELECT 1")) == 1
        wrong = bouncer.dsn("postgres").replace(bouncer.password, "wrong")
        with pytest.raises(asyncpg.PostgresError, match="authentication failed"):  # 1.18: "SASL authentication failed"
            asyncio.run(_fetch_one(wrong, "SELECT 1"))
    finally:
        bouncer.stop()
    assert not directory.exists(), "stop() removes the config and the auth file"


async def _fetch_one(dsn: str, query: str) -> object:
    conn = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def test_a_cancelled_pooled_query_is_never_handed_to_the_next_borrower() -> None:
    asyncio.run(_cancel_at_many_moments(server_dsn()))


async def _cancel_at_many_moments(dsn: str) -> None:
    observer = await asyncpg.connect(dsn)
    try:
        async with asyncpg.create_pool(dsn, min_size=1, max_size=1) as pool:
            for step in range(12):
                started = asyncio.Event()

                async def slow(started: asyncio.Event = started) -> None:
                    async with pool.acquire() as conn:
                        started.set()
                        await conn.fetchval("SELECT pg_sleep(5)")

                task = asyncio.create_task(slow())
                await started.wait()
                await asyncio.sleep(step * 0.02)  # cancel before, while and after the query reaches the server
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                async with pool.acquire(timeout=10) as conn:
                    state = await observer.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1",
                                                    conn.get_server_pid())
                    assert state == "idle", f"step {step}: the next borrower's connection is {state!r}"
                    assert await conn.fetchval("SELECT $1::int", step) == step
    finally:
        await observer.close()


def _twice(notebook: dict) -> dict:
    """The notebook's cells, then all of them again: Run All twice in one kernel."""
    return {**notebook, "cells": notebook["cells"] + json.loads(json.dumps(notebook["cells"]))}


@pytest.mark.world  # half a minute of three kernels: make test-world, beside the other long replays
@pytest.mark.usefixtures("prefix")  # databases of this test's own, not the session's notebooks'
def test_notebook_11_twice_in_a_row_beside_notebook_04(tmp_path: Path) -> None:
    eleven = json.loads((ROOT / "notebooks" / "11_production.ipynb").read_text())
    (tmp_path / "11_production.ipynb").write_text(json.dumps(_twice(eleven)))
    (tmp_path / "04_connection_pools.ipynb").write_text((ROOT / "notebooks" / "04_connection_pools.ipynb").read_text())
    run = nbval_in(tmp_path, "-q", "-rfs", "-n", "2", "--dist", "loadfile",
                   "11_production.ipynb", "04_connection_pools.ipynb",
                   plugins=("tests.exercise_probes", "tests.pgbouncer_cells"))
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "failed" not in run.stdout, run.stdout[-2000:]
