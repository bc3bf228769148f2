"""The Python clients the bench measures, each as a *side* for `helpers.lab.rounds`.

asyncpg runs in client processes of its own (pool_child.py), started before anything is
timed and kept for the whole workload: `Client(...).side(method)` asks them for one window of
queries.  psycopg 3 runs in this process, on its `AsyncConnectionPool`.  Both open every
connection and prepare the statement first, so no window pays for connecting.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from asyncio.subprocess import PIPE, Process
from collections.abc import Coroutine, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ...errors import CourseError
from ...lab import Done, Side
from .queries import METHODS, asyncpg_sql, psycopg_sql

CHILD = Path(__file__).with_name("pool_child.py")


@dataclass(frozen=True)
class Pattern:
    """How a client runs the product query: `gather` (the book: a coroutine per query, each
    acquiring), `acquire` (`workers` tasks, each acquiring per query) or `held` (`workers` tasks,
    each holding one connection); the pool's reset `default` or `skipped`; the event loop; and how
    many processes share `connections` between them."""

    connections: int
    pattern: str
    workers: int = 0  # 0: one per connection
    reset: str = "default"
    loop: str = "asyncio"
    processes: int = 1


class _Process:
    """One pool_child.py process."""

    def __init__(self, process: Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, spec: dict[str, Any], loop: str) -> _Process:
        child = cls(await asyncio.create_subprocess_exec(sys.executable, str(CHILD), loop,
                                                         stdin=PIPE, stdout=PIPE, stderr=PIPE))
        ready = await child.ask(spec)
        if ready["loop"] != loop:
            await child.close()
            raise CourseError(f"A bench client ran on {ready['loop']} instead of {loop}.",
                              "check the installed uvloop (`pip show uvloop`).")
        return child

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            text = (await self.process.stderr.read()).decode(errors="replace").strip()
            await self.close()
            raise CourseError(f"A bench client process failed: {(text.splitlines() or ['(no output)'])[-1]}",
                              "check that the server is up (`python -m helpers db status`) and try again.")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        await self.process.wait()


class Closable(Protocol):
    async def close(self) -> None: ...


Opened = TypeVar("Opened", bound=Closable)


async def together(starts: Sequence[Coroutine[Any, Any, Opened]]) -> list[Opened]:
    """Start clients at once, not one Python start-up after another; if one fails, close the
    others and raise its error."""
    results = await asyncio.gather(*starts, return_exceptions=True)
    opened = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        for item in opened:
            await item.close()
        raise failed[0]
    return opened


async def opened(stack: AsyncExitStack, starts: Sequence[Coroutine[Any, Any, Opened]]) -> list[Opened]:
    """`together`, with each client's close on `stack`: whatever opens after them and fails, they close."""
    clients = await together(starts)
    for client in clients:
        stack.push_async_callback(client.close)
    return clients


class Client:
    """asyncpg in `pattern.processes` processes sharing `pattern.connections` connections."""

    def __init__(self, pattern: Pattern, processes: list[_Process]) -> None:
        self.pattern, self.processes = pattern, processes

    @classmethod
    async def open(cls, dsn: str, pattern: Pattern, product_id: int) -> Client:
        spec = {"dsn": dsn, "sql": asyncpg_sql(), "product_id": product_id, "methods": list(METHODS),
                "connections": pattern.connections // pattern.processes,
                "workers": (pattern.workers or pattern.connections) // pattern.processes,
                "pattern": pattern.pattern, "reset": pattern.reset}
        return cls(pattern, await together([_Process.start(spec, pattern.loop) for _ in range(pattern.processes)]))

    def side(self, method: str) -> Side:
        async def run(seconds: float) -> Done:
            answers = await asyncio.gather(*(p.ask({"method": method, "seconds": seconds}) for p in self.processes))
            return Done(sum(a["queries"] for a in answers),
                        seconds=max(a["end"] for a in answers) - min(a["start"] for a in answers),
                        client_cpu=sum(a["cpu"] for a in answers))
        return run

    async def close(self) -> None:
        for process in self.processes:
            await process.close()


def psycopg_version() -> str | None:
    if importlib.util.find_spec("psycopg") is None or importlib.util.find_spec("psycopg_pool") is None:
        return None
    import psycopg

    return f"{psycopg.__version__} ({psycopg.pq.__impl__})"


class Psycopg:
    """psycopg 3's AsyncConnectionPool in this process, in autocommit (no COMMIT round trip per
    query) and preparing from the first execution (prepare_threshold=0), like asyncpg and
    pgbench -M prepared."""

    def __init__(self, pool: Any, product_id: int) -> None:
        self.pool, self.product_id = pool, product_id

    @classmethod
    async def open(cls, dsn: str, connections: int, product_id: int) -> Psycopg:
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(dsn, min_size=connections, max_size=connections, open=False, timeout=600,
                                   kwargs={"autocommit": True, "prepare_threshold": 0})
        await pool.open(wait=True, timeout=30)
        opened = cls(pool, product_id)
        held = [await pool.getconn() for _ in range(connections)]
        for conn in held:  # prepare the statement on every connection
            for method in METHODS:
                await opened._query(conn, method)
        for conn in held:
            await pool.putconn(conn)
        return opened

    async def _query(self, conn: Any, method: str) -> None:
        cursor = await conn.execute(psycopg_sql(method), (self.product_id,))
        await (cursor.fetchone() if method == "fetchrow" else cursor.fetchall())

    def side(self, method: str, workers: int) -> Side:
        """`workers` tasks, each taking a connection from the pool for every query (the book's
        pattern without a task per query); one worker is one query at a time."""
        async def worker(deadline: float) -> int:
            done = 0
            while time.monotonic() < deadline:
                async with self.pool.connection() as conn:
                    await self._query(conn, method)
                done += 1
            return done

        async def run(seconds: float) -> int:
            deadline = time.monotonic() + seconds
            return sum(await asyncio.gather(*(worker(deadline) for _ in range(workers))))
        return run

    async def close(self) -> None:
        await self.pool.close()
