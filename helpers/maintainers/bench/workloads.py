"""Workloads 1, 2, 5, 6 and 7: the product query through asyncpg, psycopg and pgbench.

Every workload is one call of `helpers.lab.rounds`: all its sides take turns in windows of the
same length, round after round (reversed every other round), so a burst of load from
elsewhere on the machine falls on all of them.  Each returns one row per side and round,
keyed by method, side and clients.

1 and 5. `concurrent`: one worker (one query at a time) and six workers on a pool of six, for
   asyncpg and psycopg, beside pgbench with one and six clients; each worker takes a
   connection from the pool for every query.  6 is the same after the index exists (fetch).
2. `pool_sweep`: the book's pattern (`gather` of a coroutine per query) on pools of growing
   size, beside pgbench with as many clients.
7. `pool_costs`: the pool's costs removed one at a time, on six connections (see `STEPS`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

import pandas as pd

from ... import lab
from .clients import Client, Pattern, Psycopg, opened, psycopg_version
from .pgbench import Pgbench
from .queries import METHODS
from .sizes import Sizes

KEY = ("method", "side", "clients")
ServerCpu = Callable[[], float] | None


def steps(connections: int, uvloop: bool) -> dict[str, Pattern]:
    """Workload 7's steps, each removing one cost from the one before (notebook 10 times steps 1–5)."""
    fast = "uvloop" if uvloop else "asyncio"
    held = Pattern(connections, "held", workers=connections, reset="skipped")
    plan = {
        "0. gather (the book)": Pattern(connections, "gather"),
        "1. acquire per query": Pattern(connections, "acquire", workers=connections),
        "2. reset skipped": Pattern(connections, "acquire", workers=connections, reset="skipped"),
        "3. held per worker": held,
        "4. uvloop": Pattern(connections, "held", workers=connections, reset="skipped", loop="uvloop"),
        f"5. two processes ({fast})": Pattern(connections, "held", workers=connections, reset="skipped", loop=fast,
                                              processes=2),
    }
    if not uvloop:
        del plan["4. uvloop"]
    return plan


async def _measure(sides: dict[tuple[str, str, int], lab.Side], workload: str, sizes: Sizes,
                   server_cpu: ServerCpu) -> pd.DataFrame:
    for side in sides.values():  # a short warm-up, not recorded
        await side(min(0.1, sizes.window / 5))
    return await lab.rounds(sides, workload=workload, key=KEY, seconds=sizes.window, count=sizes.rounds,
                            server_cpu=server_cpu)


async def concurrent(dsn: str, sizes: Sizes, server_cpu: ServerCpu, *, workload: str = "concurrent",
                     methods: tuple[str, ...] = METHODS) -> pd.DataFrame:
    """Workloads 1 and 5 (and 6, run again once the index exists)."""
    pool, product = sizes.pool_size, sizes.product_id
    workers = (1, pool)
    async with AsyncExitStack() as stack:
        clients = await opened(stack, [Client.open(dsn, Pattern(pool, "acquire", workers=n), product)
                                       for n in workers])
        psycopg = (await opened(stack, [Psycopg.open(dsn, pool, product)]))[0] if psycopg_version() else None
        pgbench = stack.enter_context(Pgbench(dsn, product))
        sides: dict[tuple[str, str, int], lab.Side] = {}
        for method in methods:
            for n, client in zip(workers, clients, strict=True):
                sides[method, "asyncpg", n] = client.side(method)
                sides[method, "pgbench", n] = pgbench.side(method, n)
                if psycopg is not None:
                    sides[method, "psycopg", n] = psycopg.side(method, n)
        return await _measure(sides, workload, sizes, server_cpu)


async def pool_sweep(dsn: str, sizes: Sizes, server_cpu: ServerCpu) -> pd.DataFrame:
    """Workload 2: one client per pool size, all open at once."""
    async with AsyncExitStack() as stack:
        clients = await opened(stack, [Client.open(dsn, Pattern(n, "gather"), sizes.product_id)
                                       for n in sizes.pool_sizes])
        pgbench = stack.enter_context(Pgbench(dsn, sizes.product_id))
        sides: dict[tuple[str, str, int], lab.Side] = {}
        for method in METHODS:
            for n, client in zip(sizes.pool_sizes, clients, strict=True):
                sides[method, "asyncpg", n] = client.side(method)
                sides[method, "pgbench", n] = pgbench.side(method, n)
        return await _measure(sides, "pool sweep", sizes, server_cpu)


async def pool_costs(dsn: str, sizes: Sizes, server_cpu: ServerCpu, *, uvloop: bool) -> pd.DataFrame:
    """Workload 7: every step's client open at once, beside pgbench with as many clients."""
    plan = steps(sizes.pool_size, uvloop)
    async with AsyncExitStack() as stack:
        clients = await opened(stack, [Client.open(dsn, pattern, sizes.product_id) for pattern in plan.values()])
        pgbench = stack.enter_context(Pgbench(dsn, sizes.product_id))
        sides: dict[tuple[str, str, int], lab.Side] = {}
        for method in METHODS:
            for step, client in zip(plan, clients, strict=True):
                sides[method, step, sizes.pool_size] = client.side(method)
            sides[method, "pgbench", sizes.pool_size] = pgbench.side(method, sizes.pool_size)
        return await _measure(sides, "pool costs", sizes, server_cpu)
