"""Workloads 1, 2, 5 and 6: the product query through asyncpg, psycopg and pgbench.

Every comparison interleaves its sides: the queries of a side are split into rounds, and the
sides take turns round by round (in reverse order every other round), so a burst of load from
elsewhere on the machine falls on all of them.  pgbench runs as long as the asyncpg side at
the same client count took in its latest round (in whole seconds, at least one); at the smoke
size, as many queries as that side ran (`Sizes.pgbench_same_queries`).
"""

from __future__ import annotations

from collections.abc import Callable

from .clients import AsyncpgSide, PsycopgSide
from .measure import Measurement, summarize
from .pgbench import Pgbench
from .queries import METHODS
from .results import MethodSides, PoolSweep, ProductQueries, SweepMethod
from .sizes import Sizes

Progress = Callable[[str], None]

#: The sides of workload 1, in the order of a forward round: (key, driver, concurrent).
SIDES = [
    ("asyncpg_sequential", "asyncpg", False),
    ("pgbench_1", "pgbench", False),
    ("psycopg_sequential", "psycopg", False),
    ("asyncpg_pool", "asyncpg", True),
    ("pgbench_pool", "pgbench", True),
    ("psycopg_pool", "psycopg", True),
]


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def split(total: int, parts: int) -> list[int]:
    """`total` queries in `parts` rounds whose sizes differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def product_queries(dsn: str, sizes: Sizes, *, rounds: int, queries: dict[str, int], psycopg: bool,
                          progress: Progress) -> ProductQueries:
    """Workload 1 (and 5 with psycopg; 6 when run again after the index): `queries` per side, per method."""
    size = sizes.pool_size
    asyncpg_side = await AsyncpgSide.open(dsn, size, sizes.product_id)
    psycopg_side = await PsycopgSide.open(dsn, size, sizes.product_id) if psycopg else None
    try:
        with Pgbench(dsn, sizes.product_id, same_queries=sizes.pgbench_same_queries) as pgbench:
            per_method = {}
            for method in METHODS:
                per_method[method] = await _interleaved(method, split(queries[method], rounds), asyncpg_side,
                                                        psycopg_side, pgbench, size, progress)
    finally:
        await asyncpg_side.close()
        if psycopg_side is not None:
            await psycopg_side.close()
    return ProductQueries(
        pool_size=size, product_id=sizes.product_id, rounds=rounds, queries_per_side=dict(queries),
        rows_per_query={"asyncpg": asyncpg_side.rows_per_query,
                        "psycopg": None if psycopg_side is None else psycopg_side.rows_per_query},
        methods=per_method,
    )


async def _interleaved(method: str, rounds: list[int], asyncpg_side: AsyncpgSide, psycopg_side: PsycopgSide | None,
                       pgbench: Pgbench, size: int, progress: Progress) -> MethodSides:
    measured: dict[str, list[Measurement]] = {key: [] for key, _, _ in SIDES}
    pgbench_seconds: dict[str, list[int]] = {"pgbench_1": [], "pgbench_pool": []}
    latest: dict[bool, float] = {}  # concurrent? -> the asyncpg side's latest duration
    for index, queries in enumerate(rounds):
        # A reverse round starts with pgbench, which then runs as long as the previous round's asyncpg side.
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for key, driver, concurrent in order:
            if driver == "asyncpg":
                m = await asyncpg_side.run(method, queries, concurrent=concurrent)
                latest[concurrent] = m.seconds
            elif driver == "psycopg":
                if psycopg_side is None:
                    continue
                m = await psycopg_side.run(method, queries, concurrent=concurrent)
            else:
                m = pgbench.beside(method, size if concurrent else 1, queries=queries, seconds=latest[concurrent],
                                   spans=pgbench_seconds[key])
            measured[key].append(m)
        progress(f"{method} round {index + 1}/{len(rounds)} done")
    sides = {key: (summarize(ms) if ms else None) for key, ms in measured.items()}
    qps = {key: (side.qps if side else None) for key, side in sides.items()}
    return MethodSides(
        sides=sides,
        pgbench_seconds=pgbench_seconds,
        ratios={
            "asyncpg_concurrent_vs_sequential": ratio(qps["asyncpg_pool"], qps["asyncpg_sequential"]),
            "asyncpg_vs_pgbench_1": ratio(qps["asyncpg_sequential"], qps["pgbench_1"]),
            "asyncpg_vs_pgbench_pool": ratio(qps["asyncpg_pool"], qps["pgbench_pool"]),
            "pgbench_concurrent_vs_sequential": ratio(qps["pgbench_pool"], qps["pgbench_1"]),
            "psycopg_vs_asyncpg_sequential": ratio(qps["psycopg_sequential"], qps["asyncpg_sequential"]),
            "psycopg_vs_asyncpg_pool": ratio(qps["psycopg_pool"], qps["asyncpg_pool"]),
        },
    )


async def pool_sweep(dsn: str, sizes: Sizes, *, progress: Progress) -> PoolSweep:
    """Workload 2: the same concurrent queries on pools of growing size, each beside pgbench with as many clients."""
    result = PoolSweep(pool_sizes=list(sizes.pool_sizes), methods={})
    with Pgbench(dsn, sizes.product_id, same_queries=sizes.pgbench_same_queries) as pgbench:
        for method in METHODS:
            queries = sizes.sweep_fetchrow_queries if method == "fetchrow" else sizes.sweep_fetch_queries
            asyncpg_qps: list[float] = []
            pgbench_qps: list[float] = []
            client_busy: list[float | None] = []
            for size in sizes.pool_sizes:
                side = await AsyncpgSide.open(dsn, size, sizes.product_id)
                try:
                    m = await side.run(method, queries, concurrent=True)
                finally:
                    await side.close()
                ceiling = pgbench.beside(method, size, queries=queries, seconds=m.seconds)
                asyncpg_qps.append(m.qps)
                pgbench_qps.append(ceiling.qps)
                client_busy.append(m.client_cpu / m.seconds if m.client_cpu is not None else None)
                progress(f"{method} pool of {size}: asyncpg {m.qps:,.0f} q/s, pgbench {ceiling.qps:,.0f} q/s")
            result.methods[method] = SweepMethod(
                queries_per_size=queries,
                asyncpg_qps=asyncpg_qps,
                pgbench_qps=pgbench_qps,
                asyncpg_vs_pgbench=[ratio(a, b) for a, b in zip(asyncpg_qps, pgbench_qps, strict=True)],
                asyncpg_client_busy=client_busy,
                best_pool_size=sizes.pool_sizes[max(range(len(asyncpg_qps)), key=asyncpg_qps.__getitem__)],
            )
    return result
