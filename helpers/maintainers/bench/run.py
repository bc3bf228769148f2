"""The whole bench, in order, as one table of tidy rows.

Order matters: the sweep and the pool's costs run before the index is created (the chapter's
state has no index on sku.product_id), workload 6 is workload 1 again once it exists, and the
loads (3) and the memory measurements (4) come last.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from typing import Any

import asyncpg
import pandas as pd

from ... import config, lab
from ...connection import connected
from ...databases import notebook_database
from . import pgbench
from .clients import psycopg_version
from .memory import streaming_memory
from .seeding import seeding
from .sizes import Sizes
from .workloads import concurrent, pool_costs, pool_sweep

INDEX_SQL = "CREATE INDEX sku_product_id_idx ON sku (product_id)"

#: The columns of every row, in this order; a workload leaves the ones it does not measure empty.
COLUMNS = ["workload", "method", "side", "clients", "round", "queries", "seconds", "client_cpu", "server_cpu",
           "rows", "extra_mib"]


@dataclass
class Run:
    """A bench run: where it ran, how big it was, and its rows (one per measurement)."""

    mode: str
    environment: dict[str, Any]
    sizes: dict[str, Any]
    rows: pd.DataFrame
    elapsed_seconds: float = 0.0
    plots: dict[str, str] = field(default_factory=dict)


def uvloop_version() -> str | None:
    return version("uvloop") if importlib.util.find_spec("uvloop") is not None else None


async def environment(dsn: str) -> dict[str, Any]:
    async with connected(dsn) as conn:
        server_version = await conn.fetchval("SHOW server_version")
        socket = await conn.fetchval("SELECT inet_server_addr()") is None
    return {
        "python": platform.python_version(), "asyncpg": asyncpg.__version__, "postgresql": server_version,
        "psycopg": psycopg_version(), "uvloop": uvloop_version(), "pgbench": await pgbench.version(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
        "server": "embedded" if config.database_url() is None else "DATABASE_URL",
        "connection": "Unix socket" if socket else "TCP",
        "load_average": [round(x, 2) for x in os.getloadavg()],  # how busy the machine was as the run began
    }


async def run_bench(sizes: Sizes, name: str, progress: Callable[[str], None]) -> Run:
    began, steal = time.perf_counter(), Steal()
    dsn = await notebook_database(name)
    env = await environment(dsn)
    async with connected(dsn) as conn:
        server_cpu = lab.server_cpu_meter(conn.get_server_pid())
    for missing in ("psycopg", "uvloop"):
        if env[missing] is None:
            progress(f"{missing} not installed: its sides are left out")
    frames = []

    async def step(title: str, work: Awaitable[pd.DataFrame]) -> None:
        progress(f"{title} …")
        start = time.perf_counter()
        frames.append(await work)
        progress(f"{title}: {time.perf_counter() - start:.0f} s")

    await step("1 and 5. concurrent queries beside pgbench", concurrent(dsn, sizes, server_cpu))
    await step("2. pool sweep", pool_sweep(dsn, sizes, server_cpu))
    await step("7. the pool's costs, one removed at a time",
               pool_costs(dsn, sizes, server_cpu, uvloop=env["uvloop"] is not None))
    async with connected(dsn) as conn:
        await conn.execute(INDEX_SQL)
        await conn.execute("ANALYZE sku")
    await step("6. concurrent fetch with an index on sku(product_id)",
               concurrent(dsn, sizes, server_cpu, workload="index", methods=("fetch",)))
    # Last, so that the writes of loading (WAL, checkpoints, autovacuum) fall on no throughput window.
    await step("3. seeding", seeding(name, sizes, server_cpu))
    await step("4. streaming memory", streaming_memory(dsn, sizes))
    rows = pd.concat(frames, ignore_index=True).reindex(columns=COLUMNS)
    env["cpu_steal"] = steal.share()
    return Run(mode=sizes.mode, environment=env, sizes=_plain(sizes), rows=rows,
               elapsed_seconds=time.perf_counter() - began)


class Steal:
    """The share of this machine's CPU time its hypervisor gave to other guests (Linux's "steal"
    in /proc/stat) since this object was made: on a virtual machine, the noise no rounds remove."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                return [int(v) for v in stat.readline().split()[1:9]]  # user … steal, in clock ticks
        except (OSError, ValueError):
            return None

    def share(self) -> float | None:
        end = self._read()
        if self.start is None or end is None or len(end) < 8:
            return None
        spent = [b - a for a, b in zip(self.start, end, strict=True)]
        return round(spent[7] / sum(spent), 4) if sum(spent) else None


def _plain(sizes: Sizes) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(sizes).items()}
