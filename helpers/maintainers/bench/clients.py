"""The product query N times through a driver's pool: one after another, or all at once with gather.

The sequential side is the chapter's `query_products_synchronously` (acquire, query, release,
N times); the concurrent side is its `query_product_concurrently` (N coroutines gathered on
the pool).  Both run on the same pool, whose connections are opened, and whose statement is
prepared, before anything is timed.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from .measure import Measurement, measured
from .queries import METHODS, asyncpg_sql, psycopg_sql


class AsyncpgSide:
    name = "asyncpg"

    def __init__(self, pool: asyncpg.Pool, pids: list[int], product_id: int, rows: dict[str, int]) -> None:
        self.pool, self.pids, self.product_id, self.rows_per_query = pool, pids, product_id, rows

    @classmethod
    async def open(cls, dsn: str, size: int, product_id: int) -> AsyncpgSide:
        # max_inactive_connection_lifetime=0: idle connections stay open, so the backends we
        # measure are the ones that serve the queries for the whole run.
        pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size, max_inactive_connection_lifetime=0)
        try:
            held = [await pool.acquire() for _ in range(size)]
            try:
                pids = [conn.get_server_pid() for conn in held]
                rows = await _warm(held, lambda conn, method: getattr(conn, method)(asyncpg_sql(), product_id))
            finally:
                for conn in held:
                    await pool.release(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, pids, product_id, rows)

    async def one(self, method: str) -> Any:
        async with self.pool.acquire() as conn:
            return await getattr(conn, method)(asyncpg_sql(), self.product_id)

    async def run(self, method: str, queries: int, *, concurrent: bool) -> Measurement:
        return await _run(self.one, method, queries, concurrent, self.pids)

    async def close(self) -> None:
        await self.pool.close()


def psycopg_available() -> bool:
    return importlib.util.find_spec("psycopg") is not None and importlib.util.find_spec("psycopg_pool") is not None


def psycopg_version() -> str | None:
    if not psycopg_available():
        return None
    import psycopg

    return f"{psycopg.__version__} ({psycopg.pq.__impl__})"


class PsycopgSide:
    """psycopg 3's AsyncConnectionPool, in autocommit (no COMMIT round trip per query) and
    preparing from the first execution (prepare_threshold=0), like asyncpg and pgbench -M prepared."""

    name = "psycopg"

    def __init__(self, pool: Any, pids: list[int], product_id: int, rows: dict[str, int]) -> None:
        self.pool, self.pids, self.product_id, self.rows_per_query = pool, pids, product_id, rows

    @classmethod
    async def open(cls, dsn: str, size: int, product_id: int) -> PsycopgSide:
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(dsn, min_size=size, max_size=size, open=False, timeout=600,
                                   kwargs={"autocommit": True, "prepare_threshold": 0})
        await pool.open(wait=True, timeout=30)
        try:
            held = [await pool.getconn() for _ in range(size)]
            try:
                pids = [conn.info.backend_pid for conn in held]
                rows = await _warm(held, lambda conn, method: _psycopg_query(conn, method, product_id))
            finally:
                for conn in held:
                    await pool.putconn(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, pids, product_id, rows)

    async def one(self, method: str) -> Any:
        async with self.pool.connection() as conn:
            return await _psycopg_query(conn, method, self.product_id)

    async def run(self, method: str, queries: int, *, concurrent: bool) -> Measurement:
        return await _run(self.one, method, queries, concurrent, self.pids)

    async def close(self) -> None:
        await self.pool.close()


async def _psycopg_query(conn: Any, method: str, product_id: int) -> Any:
    cursor = await conn.execute(psycopg_sql(method), (product_id,))
    return await (cursor.fetchone() if method == "fetchrow" else cursor.fetchall())


async def _run(one: Any, method: str, queries: int, concurrent: bool, pids: list[int]) -> Measurement:
    with measured(pids) as meter:
        if concurrent:
            await asyncio.gather(*(one(method) for _ in range(queries)))
        else:
            for _ in range(queries):
                await one(method)
    return Measurement(queries, meter.seconds, meter.client_cpu, meter.server_cpu)


async def _warm(held: list[Any], query: Callable[[Any, str], Awaitable[Any]]) -> dict[str, int]:
    """Run each method once on every held connection, so each has its statement prepared and
    cached before anything is timed; returns the rows one query gives, per method."""
    rows = {}
    for conn in held:
        for method in METHODS:
            rows[method] = _count(await query(conn, method))
    return rows


def _count(result: Any) -> int:
    """Rows in a result: a list of rows, or one row (or None) from fetchrow/fetchone."""
    if isinstance(result, list):
        return len(result)
    return 0 if result is None else 1
