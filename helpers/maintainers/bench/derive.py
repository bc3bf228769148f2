"""Figures derived from the measurements: the book's comparison, who limits, the index effect, the goals.

Nothing here formats a table (report.py does); the goals are reported, never asserted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .measure import Summary
from .results import LabResults, MethodSides
from .workloads import ratio

#: The chapter's figures for 10,000 product queries, fetchrow on a pool of 6 (seconds).
BOOK = {
    "the book": {"sequential": 21.8, "concurrent": 4.8},
    "a reader": {"sequential": 7.2, "concurrent": 4.2},
}
BOOK_QUERIES = 10_000

#: pgbench (a C client) against the same server at the same client count: at least this many times
#: asyncpg's rate means the server had room to spare, so the Python client is the limit; at most
#: SERVER_BOUND_RATIO means asyncpg reaches what the server gives anyone, so the server is.
CLIENT_BOUND_RATIO = 1.5
SERVER_BOUND_RATIO = 1.15
CLIENT_LIMIT = "the Python client"
SERVER_LIMIT = "the server"
UNCLEAR_LIMIT = "not clear-cut (between the two thresholds)"


@dataclass(frozen=True)
class Target:
    """A goal's threshold: `measured ≥ limit` (at_least) or `measured ≤ limit`."""

    limit: float
    at_least: bool

    @property
    def sign(self) -> str:
        return "≥" if self.at_least else "≤"

    def __str__(self) -> str:
        return f"{self.sign} {self.limit:g}"

    def met(self, value: float | None) -> bool:
        return value is not None and (value >= self.limit if self.at_least else value <= self.limit)


GOAL_FETCH_VS_PGBENCH = Target(0.9, at_least=True)
GOAL_COPY_VS_PSQL = Target(1.3, at_least=False)
GOAL_CURSOR_MEMORY = Target(0.2, at_least=False)
GOAL_COSTS_FETCH = Target(0.95, at_least=True)
GOAL_COSTS_FETCHROW = Target(0.5, at_least=True)
GOAL_SECONDS = {"quick": Target(90, at_least=False), "full": Target(600, at_least=False)}


@dataclass
class Goal:
    id: str
    goal: str
    target: str
    measured: float | None
    met: bool
    detail: str


def goal(id: str, text: str, target: Target, measured: float | None, detail: str) -> Goal:
    """A goal whose text names its threshold: `text` holds "{target}" where it goes."""
    return Goal(id, text.format(target=target), f"{target.sign} {target.limit:.2f}", measured, target.met(measured),
                detail)


def limit(pgbench_vs_client: float | None) -> str:
    """Who limits throughput: if pgbench gets much more from the same server, not the server."""
    if pgbench_vs_client is None:
        return "n/a"
    if pgbench_vs_client >= CLIENT_BOUND_RATIO:
        return CLIENT_LIMIT
    if pgbench_vs_client <= SERVER_BOUND_RATIO:
        return SERVER_LIMIT
    return UNCLEAR_LIMIT


def fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    if value is None or value != value:  # None or NaN
        return "n/a"
    return f"{value:{spec}}{suffix}"


def times(value: float | None) -> str:
    return fmt(value, ".2f", "×")


def pct(value: float | None) -> str:
    return fmt(None if value is None else 100 * value, ".0f", "%")


def book_comparison(results: LabResults) -> dict[str, dict[str, float]]:
    """Seconds for 10,000 fetchrow queries on a pool of 6: the book, a reader, and this machine (from its rate)."""
    w1 = results.workloads.concurrent_queries.methods["fetchrow"]
    here = {"sequential": BOOK_QUERIES / _required(w1.qps("asyncpg_sequential")),
            "concurrent": BOOK_QUERIES / _required(w1.qps("asyncpg_pool"))}
    return {**BOOK, "this machine": here}


@dataclass
class IndexFigures:
    """Workload 1 or 6, fetch on the pool: rates, CPU per query on each side, and who limits."""

    asyncpg_pool_qps: float
    pgbench_pool_qps: float
    pgbench_vs_asyncpg_pool: float | None
    client_cpu_ms_per_query: float | None
    server_cpu_ms_per_query: float | None
    server_share_of_cpu: float | None
    client_busy: float | None
    server_busy: float | None
    pgbench_client_cpu_ms_per_query: float | None
    limit: str

    @classmethod
    def of(cls, sides: MethodSides) -> IndexFigures:
        pool, pgbench = _present(sides.sides["asyncpg_pool"]), _present(sides.sides["pgbench_pool"])
        client, server = pool.client_cpu_ms_per_query, pool.server_cpu_ms_per_query
        faster = ratio(pgbench.qps, pool.qps)
        return cls(asyncpg_pool_qps=pool.qps, pgbench_pool_qps=pgbench.qps, pgbench_vs_asyncpg_pool=faster,
                   client_cpu_ms_per_query=client, server_cpu_ms_per_query=server,
                   server_share_of_cpu=None if server is None or client is None else ratio(server, server + client),
                   client_busy=pool.client_busy, server_busy=pool.server_busy,
                   pgbench_client_cpu_ms_per_query=pgbench.client_cpu_ms_per_query, limit=limit(faster))


@dataclass
class IndexEffect:
    without_index: IndexFigures
    with_index: IndexFigures
    client_bound: bool
    verdict: str


def index_effect(results: LabResults) -> IndexEffect:
    """Workload 6 against workload 1, fetch on the pool of 6: who does the work, and who limits."""
    b = IndexFigures.of(results.workloads.concurrent_queries.methods["fetch"])
    a = IndexFigures.of(results.workloads.index.methods["fetch"])
    verdict = (
        f"Without the index the server does {pct(b.server_share_of_cpu)} of the CPU work per query and pgbench "
        f"runs {times(b.pgbench_vs_asyncpg_pool)} as many queries as asyncpg: limit: {b.limit}. "
        f"With the index the server's share falls to {pct(a.server_share_of_cpu)} "
        f"({fmt(b.server_cpu_ms_per_query, '.3f')} → {fmt(a.server_cpu_ms_per_query, '.3f')} ms per query), "
        f"pgbench runs {times(a.pgbench_vs_asyncpg_pool)} as many queries, and the Python client is busy "
        f"{pct(a.client_busy)} of the wall time (one thread: 100% is its ceiling; on a shared machine it also "
        f"waits for a core): limit: {a.limit}."
    )
    return IndexEffect(b, a, a.limit == CLIENT_LIMIT, verdict)


def costs_verdict(results: LabResults) -> str:
    """One sentence per method: where workload 7 started, where it ended, and what limited the best step."""
    costs = results.workloads.pool_costs
    parts = []
    for method, data in costs.methods.items():
        first, best = data.steps[0], data.best()
        best_summary = _present(best.summary)
        parts.append(
            f"{method}: from {times(first.vs_pgbench)} of pgbench ({first.step.label}) to {times(best.vs_pgbench)} "
            f"({best.step.label}); client CPU per query {fmt(_cpu(first.summary), '.3f')} → "
            f"{fmt(best_summary.client_cpu_ms_per_query, '.3f')} ms, server "
            f"{fmt(_cpu(first.summary, 'server'), '.3f')} → {fmt(best_summary.server_cpu_ms_per_query, '.3f')} ms; "
            f"limit of the best step: {limit(ratio(data.pgbench.qps, best_summary.qps))}.")
    return " ".join(parts)


def goals(results: LabResults) -> list[Goal]:
    w = results.workloads
    fetch = w.concurrent_queries.methods["fetch"]
    pool = w.concurrent_queries.pool_size
    out = []
    for side, pg, clients in (("asyncpg_sequential", "pgbench_1", 1), ("asyncpg_pool", "pgbench_pool", pool)):
        out.append(goal(f"fetch_vs_pgbench_{clients}",
                        f"asyncpg fetch {{target}} × pgbench, {clients} client{'s' if clients > 1 else ''} (no index)",
                        GOAL_FETCH_VS_PGBENCH, ratio(fetch.qps(side), fetch.qps(pg)),
                        f"{fmt(fetch.qps(side))} vs {fmt(fetch.qps(pg))} q/s"))
    seed = w.seeding
    out.append(goal("copy_vs_psql", "copy_records_to_table time {target} × psql COPY", GOAL_COPY_VS_PSQL,
                    seed.time_vs_psql["copy_records_to_table"],
                    f"{fmt(seed.seconds['copy_records_to_table'], '.3f')} s vs "
                    f"{fmt(seed.seconds['psql_copy_csv'], '.3f')} s for {seed.rows:,} rows"))
    mem = w.streaming_memory
    for key, value in mem.cursor_vs_fetch_memory_at_largest.items():
        prefetch = key.split("_")[1]
        out.append(goal(f"cursor_{prefetch}_memory",
                        f"cursor (prefetch {prefetch}) extra memory {{target}} × fetch's at {mem.largest:,} rows",
                        GOAL_CURSOR_MEMORY, value,
                        f"{fmt(mem.extra_mib[key][-1], '.1f')} MiB vs {fmt(mem.extra_mib['fetch'][-1], '.1f')} MiB"))
    costs = w.pool_costs
    for method, target in (("fetch", GOAL_COSTS_FETCH), ("fetchrow", GOAL_COSTS_FETCHROW)):
        data = costs.methods[method]
        best = data.best()
        out.append(goal(f"pool_costs_{method}",
                        f"best step of workload 7, {method}: {{target}} × pgbench, {costs.connections} clients",
                        target, best.vs_pgbench,
                        f"{best.step.label}: {fmt(_present(best.summary).qps)} vs {fmt(data.pgbench.qps)} q/s"))
    seconds = GOAL_SECONDS.get(results.mode)
    if seconds is not None:
        out.append(goal(f"{results.mode}_seconds", f"the {results.mode} lab's workloads take {{target}} s",
                        seconds, results.elapsed_seconds,
                        f"{results.elapsed_seconds:.0f} s on {results.environment.cpu_count} CPUs, load average "
                        f"{_load(results)} as it began"))
    return out


def psycopg_summary(results: LabResults) -> dict[str, Any]:
    version = results.environment.psycopg
    if version is None:
        return {"installed": False, "status": SKIPPED_PSYCOPG}
    summary: dict[str, Any] = {"installed": True, "status": "measured", "version": version}
    for key, workload in (("concurrent_queries", results.workloads.concurrent_queries),
                          ("index", results.workloads.index)):
        summary[key] = {method: {"sequential_qps": data.qps("psycopg_sequential"),
                                 "pool_qps": data.qps("psycopg_pool"),
                                 "vs_asyncpg_sequential": data.ratios["psycopg_vs_asyncpg_sequential"],
                                 "vs_asyncpg_pool": data.ratios["psycopg_vs_asyncpg_pool"]}
                        for method, data in workload.methods.items()}
    return summary


SKIPPED_PSYCOPG = "psycopg not installed: skipped"


def _load(results: LabResults) -> str:
    load = results.environment.load_average
    return "n/a" if not load else " / ".join(f"{x:.1f}" for x in load)


def _cpu(summary: Summary | None, who: str = "client") -> float | None:
    if summary is None:
        return None
    value: float | None = getattr(summary, f"{who}_cpu_ms_per_query")
    return value


def _present(summary: Summary | None) -> Summary:
    if summary is None:
        raise ValueError("a side that every run measures is missing")
    return summary


def _required(value: float | None) -> float:
    if value is None:
        raise ValueError("a figure that every run measures is missing")
    return value
