"""The lab's charts as PNG files, drawn with the course's plot_comparison and plot_sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..plotting import plot_comparison, plot_sweep

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
}


def figures(document: dict[str, Any]) -> dict[str, Figure]:
    w = document["workloads"]
    pool = w["concurrent_queries"]["pool_size"]
    figs = {"book.png": plot_comparison(document["book"], title="10,000 product queries (fetchrow, pool of 6)",
                                        ylabel="seconds", fmt="{:.1f}")}
    for method in ("fetchrow", "fetch"):
        sides = w["concurrent_queries"]["methods"][method]["sides"]
        groups: dict[str, dict[str, float]] = {}
        for label, suffix in (("one at a time / 1 client", "sequential"), (f"pool of {pool} / {pool} clients", "pool")):
            group = {"asyncpg": sides[f"asyncpg_{suffix}"]["qps"]}
            if sides[f"psycopg_{suffix}"] is not None:
                group["psycopg"] = sides[f"psycopg_{suffix}"]["qps"]
            group["pgbench" + (" (LIMIT 1)" if method == "fetchrow" else "")] = sides[
                "pgbench_1" if suffix == "sequential" else "pgbench_pool"]["qps"]
            groups[label] = group
        figs[f"concurrent_{method}.png"] = plot_comparison(
            groups, title=f"The product query with {method}: queries per second", ylabel="queries per second",
            fmt="{:,.0f}")
        sweep = w["pool_sweep"]["methods"][method]
        figs[f"pool_sweep_{method}.png"] = plot_sweep(
            w["pool_sweep"]["pool_sizes"], {f"asyncpg, gather ({method})": sweep["asyncpg_qps"]},
            ceiling={"pgbench" + (" (LIMIT 1)" if method == "fetchrow" else ""): sweep["pgbench_qps"]},
            title=f"Pool sweep, {method}: {sweep['queries_per_size']:,} concurrent queries per pool size",
            xlabel="pool size (pgbench: clients)", ylabel="queries per second")
        figs[f"pool_sweep_{method}.png"].axes[0].set_ylim(bottom=0)
    seed = w["seeding"]
    labels = {"executemany": "executemany", "copy_records_to_table": "copy_records_to_table",
              "psql_copy_csv": "psql COPY (CSV)"}
    figs["seeding.png"] = plot_comparison(
        {label: {"seconds": seed["seconds"][key]} for key, label in labels.items()},
        title=f"Seeding {seed['rows']:,} rows: seconds (lower is better)", ylabel="seconds", fmt="{:.2f}")
    mem = w["streaming_memory"]
    names = {k: ("fetch" if k == "fetch" else f"cursor, prefetch {k.split('_')[1]}") for k in mem["extra_mib"]}
    figs["memory.png"] = plot_sweep(mem["rows"], {names[k]: v for k, v in mem["extra_mib"].items()},
                                    title="Extra memory of the Python process while reading the rows",
                                    xlabel="rows", ylabel="MiB (peak RSS growth)", logx=True)
    figs["memory_time.png"] = plot_sweep(mem["rows"], {names[k]: v for k, v in mem["seconds"].items()},
                                         title="Time to read the rows", xlabel="rows", ylabel="seconds (log scale)",
                                         logx=True)
    figs["memory_time.png"].axes[0].set_yscale("log")
    before = w["concurrent_queries"]["methods"]["fetch"]["sides"]
    after = w["index"]["methods"]["fetch"]["sides"]

    def bars(sides: dict[str, Any]) -> dict[str, float]:
        return {"asyncpg, 1 at a time": sides["asyncpg_sequential"]["qps"],
                f"asyncpg, pool of {pool}": sides["asyncpg_pool"]["qps"],
                "pgbench, 1 client": sides["pgbench_1"]["qps"],
                f"pgbench, {pool} clients": sides["pgbench_pool"]["qps"]}

    figs["index.png"] = plot_comparison({"no index": bars(before), "index on sku(product_id)": bars(after)},
                                        title="The product query with fetch: queries per second",
                                        ylabel="queries per second", fmt="{:,.0f}")
    effect = document["index_effect"]
    figs["index_cpu.png"] = plot_comparison(
        {label: {"server (backends)": effect[key]["server_cpu_ms_per_query"] or 0.0,
                 "Python client": effect[key]["client_cpu_ms_per_query"],
                 "pgbench client": effect[key]["pgbench_client_cpu_ms_per_query"]}
         for label, key in (("no index", "without_index"), ("index", "with_index"))},
        title=f"CPU time per query (fetch, pool of {pool})", ylabel="milliseconds", fmt="{:.3f}")
    assert set(figs) == set(PLOTS)
    return figs


def save(document: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write every chart as a PNG into `directory`; return {file name: what it shows}."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, fig in figures(document).items():
        fig.savefig(directory / name, dpi=100)
    return dict(PLOTS)
