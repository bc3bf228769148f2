"""Crashes, for real: kill -9 of the embedded server after, during and around a template build.

Each test runs its own socket-only server (a temporary data directory) as the course's
embedded server, so killing it touches nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from helpers import ServerError, databases, notebook_database
from helpers.connection import connected, server_dsn
from helpers.server import EmbeddedServer
from helpers.target import resolve
from tests.conftest import kill_9

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
    assert "What to do: run the cell (or command) again" in str(info.value)
    assert asyncio.run(next_brand_id("after_build_crash")) == 101
    names = asyncio.run(databases.course_databases())
    assert names == ["crash__after_build_crash", "crash__eshop__template"]


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
