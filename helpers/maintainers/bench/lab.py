"""The whole performance lab, in order: each workload on its own fresh database, then the index.

Order matters: the pool sweep and the pool costs (workload 7) run before the index is created
(the chapter's state has no index on sku.product_id), and workload 6 is workload 1 again once
it exists.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ... import config
from ...connection import connect
from ...databases import notebook_database
from . import pgbench
from .clients import psycopg_available, psycopg_version
from .memory import streaming_memory
from .pool_costs import pool_costs, uvloop_version
from .results import Environment, LabResults, Workloads
from .seeding import seeding
from .sizes import Sizes
from .workloads import pool_sweep, product_queries

T = TypeVar("T")

INDEX_SQL = "CREATE INDEX sku_product_id_idx ON sku (product_id)"


async def environment(dsn: str) -> Environment:
    conn = await connect(dsn)
    try:
        server_version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return Environment(
        python=platform.python_version(),
        asyncpg=asyncpg.__version__,
        postgresql=server_version,
        psycopg=psycopg_version(),
        pgbench=pgbench.version(),
        cpu_count=os.cpu_count(),
        platform=platform.platform(terse=True),
        server="embedded" if config.database_url() is None else "DATABASE_URL",
        uvloop=uvloop_version(),
        load_average=[round(x, 2) for x in os.getloadavg()],  # how busy the machine was as the run began
    )


async def create_index(dsn: str) -> float:
    conn = await connect(dsn)
    try:
        start = time.perf_counter()
        await conn.execute(INDEX_SQL)
        await conn.execute("ANALYZE sku")
        return time.perf_counter() - start
    finally:
        await conn.close()


async def run_lab(sizes: Sizes, name: str, progress: Callable[[str], None]) -> LabResults:
    """Run the seven workloads; return every measurement (report.py turns them into tables and goals)."""
    began = time.perf_counter()
    dsn = await notebook_database(name)
    env = await environment(dsn)
    psycopg = psycopg_available()
    if not psycopg:
        progress("psycopg not installed: skipped")
    if env.uvloop is None:
        progress("uvloop not installed: its step of workload 7 is skipped")
    timings: dict[str, float] = {}

    async def step(key: str, title: str, work: Awaitable[T]) -> T:
        progress(f"{title} …")
        start = time.perf_counter()
        result = await work
        timings[key] = time.perf_counter() - start
        progress(f"{title}: {timings[key]:.1f} s")
        return result

    concurrent = await step(
        "concurrent_queries", "1. concurrent queries vs pgbench (and 5. psycopg)",
        product_queries(dsn, sizes, rounds=sizes.rounds, psycopg=psycopg, progress=progress,
                        queries={"fetchrow": sizes.fetchrow_queries, "fetch": sizes.fetch_queries}))
    sweep = await step("pool_sweep", "2. pool sweep", pool_sweep(dsn, sizes, progress=progress))
    costs = await step("pool_costs", "7. the pool's costs, one removed at a time",
                       pool_costs(dsn, sizes, progress=progress))
    seeded = await step("seeding", "3. seeding", seeding(f"{name}_seed", sizes, progress=progress))
    memory = await step("streaming_memory", "4. streaming memory", streaming_memory(dsn, sizes, progress=progress))
    index_seconds = await create_index(dsn)
    indexed = await step(
        "index", "6. workload 1 with an index on sku(product_id)",
        product_queries(dsn, sizes, rounds=sizes.index_rounds, psycopg=psycopg, progress=progress,
                        queries={"fetchrow": sizes.fetchrow_queries, "fetch": sizes.index_fetch_queries}))
    indexed.index_sql = INDEX_SQL
    indexed.create_index_seconds = index_seconds
    return LabResults(
        mode=sizes.mode,
        environment=env,
        sizes=sizes,
        workloads=Workloads(concurrent_queries=concurrent, pool_sweep=sweep, seeding=seeded, streaming_memory=memory,
                            index=indexed, pool_costs=costs),
        workload_seconds=timings,
        elapsed_seconds=time.perf_counter() - began,
    )
