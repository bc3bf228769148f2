"""The lab's charts as PNG files, drawn with the course's plot_comparison and plot_sweep."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ...plotting import plot_comparison, plot_sweep
from .queries import METHODS
from .report import Derived, memory_name
from .results import LabResults, MethodSides

#: File name → what it shows (the notebook lists them in this order).
PLOTS = {
    "book.png": "10,000 fetchrow queries: the book, a reader, this machine",
    "concurrent_fetchrow.png": "workload 1, fetchrow: drivers beside pgbench",
    "concurrent_fetch.png": "workload 1, fetch: drivers beside pgbench",
    "pool_sweep_fetchrow.png": "workload 2, fetchrow: throughput by pool size, pgbench as the ceiling",
    "pool_sweep_fetch.png": "workload 2, fetch: throughput by pool size, pgbench as the ceiling",
    "seeding.png": "workload 3: three ways to load the dataset",
    "memory.png": "workload 4: extra memory, fetch vs cursors",
    "memory_time.png": "workload 4: time, fetch vs cursors",
    "index.png": "workload 6: throughput without and with the index",
    "index_cpu.png": "workload 6: CPU per query, server and client",
    "pool_costs_fetchrow.png": "workload 7, fetchrow: one cost removed per step, pgbench as the ceiling",
    "pool_costs_fetch.png": "workload 7, fetch: one cost removed per step, pgbench as the ceiling",
    "pool_costs_cpu_fetchrow.png": "workload 7, fetchrow: CPU per query per step, client and server",
    "pool_costs_cpu_fetch.png": "workload 7, fetch: CPU per query per step, client and server",
}


def _ceiling(method: str) -> str:
    return "pgbench" + (" (LIMIT 1)" if method == "fetchrow" else "")


def _driver_bars(sides: MethodSides, method: str, pool: int) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = {}
    for label, suffix, pgbench in (("one at a time / 1 client", "sequential", "pgbench_1"),
                                   (f"pool of {pool} / {pool} clients", "pool", "pgbench_pool")):
        group = {driver: qps for driver in ("asyncpg", "psycopg")
                 if (qps := sides.qps(f"{driver}_{suffix}")) is not None}
        group[_ceiling(method)] = sides.qps(pgbench) or 0.0
        groups[label] = group
    return groups


def _index_bars(sides: MethodSides, pool: int) -> dict[str, float]:
    return {"asyncpg, 1 at a time": sides.qps("asyncpg_sequential") or 0.0,
            f"asyncpg, pool of {pool}": sides.qps("asyncpg_pool") or 0.0,
            "pgbench, 1 client": sides.qps("pgbench_1") or 0.0,
            f"pgbench, {pool} clients": sides.qps("pgbench_pool") or 0.0}


def _costs(results: LabResults, method: str) -> tuple[Figure, Figure]:
    """Workload 7: a bar per step with pgbench as a dashed line; then CPU per query per step and side."""
    costs = results.workloads.pool_costs
    data = costs.methods[method]
    measured = [r for r in data.steps if r.summary is not None]
    rates = plot_comparison({r.step.short: {"queries per second": r.summary.qps} for r in measured if r.summary},
                            title=f"{method} on {costs.connections} connections: one cost removed per step",
                            ylabel="queries per second", fmt="{:,.0f}")
    rates.axes[0].axhline(data.pgbench.qps, linestyle="--", color="black",
                          label=f"{_ceiling(method)}, {costs.connections} clients: {data.pgbench.qps:,.0f}")
    rates.axes[0].set_ylim(top=max(data.pgbench.qps, *(r.summary.qps for r in measured if r.summary)) * 1.15)
    rates.axes[0].legend(loc="upper left")
    cpu = plot_comparison({r.step.short: {"Python client": r.summary.client_cpu_ms_per_query or 0.0,
                                          "server (backends)": r.summary.server_cpu_ms_per_query or 0.0}
                           for r in measured if r.summary},
                          title=f"CPU time per query ({method}): who does the work at each step",
                          ylabel="milliseconds", fmt="{:.3f}")
    if data.pgbench.client_cpu_ms_per_query is not None:
        cpu.axes[0].axhline(data.pgbench.client_cpu_ms_per_query, linestyle=":", color="black",
                            label="pgbench client")
        cpu.axes[0].legend()
    return rates, cpu


def figures(results: LabResults, derived: Derived) -> dict[str, Figure]:
    w = results.workloads
    pool = w.concurrent_queries.pool_size
    figs = {"book.png": plot_comparison(derived.book, title="10,000 product queries (fetchrow, pool of 6)",
                                        ylabel="seconds", fmt="{:.1f}")}
    for method in METHODS:
        figs[f"concurrent_{method}.png"] = plot_comparison(
            _driver_bars(w.concurrent_queries.methods[method], method, pool),
            title=f"The product query with {method}: queries per second", ylabel="queries per second",
            fmt="{:,.0f}")
        sweep = w.pool_sweep.methods[method]
        figs[f"pool_sweep_{method}.png"] = plot_sweep(
            w.pool_sweep.pool_sizes, {f"asyncpg, gather ({method})": sweep.asyncpg_qps},
            ceiling={_ceiling(method): sweep.pgbench_qps},
            title=f"Pool sweep, {method}: {sweep.queries_per_size:,} concurrent queries per pool size",
            xlabel="pool size (pgbench: clients)", ylabel="queries per second")
        figs[f"pool_costs_{method}.png"], figs[f"pool_costs_cpu_{method}.png"] = _costs(results, method)
    seed = w.seeding
    labels = {"executemany": "executemany", "copy_records_to_table": "copy_records_to_table",
              "psql_copy_csv": "psql COPY (CSV)"}
    figs["seeding.png"] = plot_comparison(
        {label: {"seconds": seed.seconds[key]} for key, label in labels.items()},
        title=f"Seeding {seed.rows:,} rows: seconds (lower is better)", ylabel="seconds", fmt="{:.2f}")
    mem = w.streaming_memory
    names = {k: memory_name(k).replace("cursor ", "cursor, prefetch ") for k in mem.extra_mib}
    figs["memory.png"] = plot_sweep(mem.rows, {names[k]: v for k, v in mem.extra_mib.items()},
                                    title="Extra memory of the Python process while reading the rows",
                                    xlabel="rows", ylabel="MiB (peak RSS growth)", logx=True)
    figs["memory_time.png"] = plot_sweep(mem.rows, {names[k]: v for k, v in mem.seconds.items()},
                                         title="Time to read the rows", xlabel="rows", ylabel="seconds (log scale)",
                                         logx=True)
    figs["memory_time.png"].axes[0].set_yscale("log")
    figs["index.png"] = plot_comparison(
        {"no index": _index_bars(w.concurrent_queries.methods["fetch"], pool),
         "index on sku(product_id)": _index_bars(w.index.methods["fetch"], pool)},
        title="The product query with fetch: queries per second", ylabel="queries per second", fmt="{:,.0f}")
    effect = derived.index
    figs["index_cpu.png"] = plot_comparison(
        {label: {"server (backends)": figures.server_cpu_ms_per_query or 0.0,
                 "Python client": figures.client_cpu_ms_per_query or 0.0,
                 "pgbench client": figures.pgbench_client_cpu_ms_per_query or 0.0}
         for label, figures in (("no index", effect.without_index), ("index", effect.with_index))},
        title=f"CPU time per query (fetch, pool of {pool})", ylabel="milliseconds", fmt="{:.3f}")
    assert set(figs) == set(PLOTS)
    return figs


def save(results: LabResults, derived: Derived, directory: Path) -> dict[str, str]:
    """Write every chart as a PNG into `directory`; return {file name: what it shows}."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, fig in figures(results, derived).items():
        fig.savefig(directory / name, dpi=100)
    return dict(PLOTS)
