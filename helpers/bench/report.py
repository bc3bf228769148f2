"""From measurements to what a reader sees: ratios, goals (met or not, never asserted), tables, JSON.

The tables are lists of sections ({"title", "columns", "rows", "notes"}) whose cells are
already formatted text, so the CLI prints them and a notebook shows them the same way; the
numbers themselves stay in the JSON's "workloads" part.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .workloads import ratio

#: The chapter's figures for 10,000 product queries, fetchrow on a pool of 6 (seconds).
BOOK = {
    "the book": {"sequential": 21.8, "concurrent": 4.8},
    "a reader": {"sequential": 7.2, "concurrent": 4.2},
}
BOOK_QUERIES = 10_000

GOAL_FETCH_VS_PGBENCH = 0.9
GOAL_COPY_VS_PSQL = 1.3
GOAL_CURSOR_MEMORY = 0.2
#: pgbench (a C client) against the same server at the same client count: at least this many times
#: asyncpg's rate means the server had room to spare, so the Python client is the limit; at most
#: SERVER_BOUND_RATIO means asyncpg reaches what the server gives anyone, so the server is.
CLIENT_BOUND_RATIO = 1.5
SERVER_BOUND_RATIO = 1.15
CLIENT_LIMIT = "the Python client"

SKIPPED = "psycopg not installed: skipped"


def fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:{spec}}{suffix}"


def times(value: float | None) -> str:
    return fmt(value, ".2f", "×")


def pct(value: float | None) -> str:
    return fmt(None if value is None else 100 * value, ".0f", "%")


def _qps(workload: dict[str, Any], method: str, side: str) -> float | None:
    entry = workload["methods"][method]["sides"][side]
    return None if entry is None else entry["qps"]


def rows_label(n: int) -> str:
    return f"{n:,}"


# -- derived figures -----------------------------------------------------------------------------------------------

def book_comparison(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Seconds for 10,000 fetchrow queries on a pool of 6: the book, a reader, and this machine (from its rate)."""
    w1 = results["workloads"]["concurrent_queries"]
    here = {
        "sequential": BOOK_QUERIES / _qps(w1, "fetchrow", "asyncpg_sequential"),  # type: ignore[operator]
        "concurrent": BOOK_QUERIES / _qps(w1, "fetchrow", "asyncpg_pool"),  # type: ignore[operator]
    }
    return {**BOOK, "this machine": here}


def index_effect(results: dict[str, Any]) -> dict[str, Any]:
    """Workload 6 against workload 1, fetch on the pool of 6: who does the work, and who limits."""
    before = results["workloads"]["concurrent_queries"]["methods"]["fetch"]["sides"]
    after = results["workloads"]["index"]["methods"]["fetch"]["sides"]

    def shares(sides: dict[str, Any]) -> dict[str, Any]:
        pool = sides["asyncpg_pool"]
        client, server = pool["client_cpu_ms_per_query"], pool.get("server_cpu_ms_per_query")
        return {
            "asyncpg_pool_qps": pool["qps"],
            "pgbench_pool_qps": sides["pgbench_pool"]["qps"],
            "pgbench_vs_asyncpg_pool": ratio(sides["pgbench_pool"]["qps"], pool["qps"]),
            "client_cpu_ms_per_query": client,
            "server_cpu_ms_per_query": server,
            "server_share_of_cpu": ratio(server, None if server is None else server + client),
            "client_busy": pool["client_busy"],
            "server_busy": pool.get("server_busy"),
            "pgbench_client_cpu_ms_per_query": sides["pgbench_pool"]["client_cpu_ms_per_query"],
        }

    b, a = shares(before), shares(after)
    b["limit"], a["limit"] = _limit(b), _limit(a)
    verdict = (
        f"Without the index the server does {pct(b['server_share_of_cpu'])} of the CPU work per query and pgbench "
        f"runs {times(b['pgbench_vs_asyncpg_pool'])} as many queries as asyncpg: limit: {b['limit']}. "
        f"With the index the server's share falls to {pct(a['server_share_of_cpu'])} "
        f"({fmt(b['server_cpu_ms_per_query'], '.3f')} → {fmt(a['server_cpu_ms_per_query'], '.3f')} ms per query), "
        f"pgbench runs {times(a['pgbench_vs_asyncpg_pool'])} as many queries, and the Python client is busy "
        f"{pct(a['client_busy'])} of the wall time (one thread: 100% is its ceiling; on a shared machine it also "
        f"waits for a core): limit: {a['limit']}."
    )
    return {"without_index": b, "with_index": a, "client_bound": a["limit"] == CLIENT_LIMIT, "verdict": verdict}


def _limit(figures: dict[str, Any]) -> str:
    """Who limits throughput at the pool's size: if pgbench gets much more from the same server, not the server."""
    faster = figures["pgbench_vs_asyncpg_pool"]
    if faster >= CLIENT_BOUND_RATIO:
        return CLIENT_LIMIT
    if faster <= SERVER_BOUND_RATIO:
        return "the server"
    return "not clear-cut (between the two thresholds)"


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    w = results["workloads"]
    fetch = w["concurrent_queries"]["methods"]["fetch"]
    pool = w["concurrent_queries"]["pool_size"]
    out = []
    for side, pg, clients in (("asyncpg_sequential", "pgbench_1", 1), ("asyncpg_pool", "pgbench_pool", pool)):
        value = ratio(fetch["sides"][side]["qps"], fetch["sides"][pg]["qps"])
        out.append({
            "id": f"fetch_vs_pgbench_{clients}",
            "goal": f"asyncpg fetch ≥ 0.9 × pgbench, {clients} client{'s' if clients > 1 else ''} (no index)",
            "target": f"≥ {GOAL_FETCH_VS_PGBENCH:.2f}",
            "measured": value,
            "met": value is not None and value >= GOAL_FETCH_VS_PGBENCH,
            "detail": f"{fmt(fetch['sides'][side]['qps'])} vs {fmt(fetch['sides'][pg]['qps'])} q/s",
        })
    seed = w["seeding"]
    value = seed["time_vs_psql"]["copy_records_to_table"]
    out.append({
        "id": "copy_vs_psql",
        "goal": "copy_records_to_table time ≤ 1.3 × psql COPY",
        "target": f"≤ {GOAL_COPY_VS_PSQL:.2f}",
        "measured": value,
        "met": value <= GOAL_COPY_VS_PSQL,
        "detail": (f"{fmt(seed['seconds']['copy_records_to_table'], '.3f')} s vs "
                   f"{fmt(seed['seconds']['psql_copy_csv'], '.3f')} s for {seed['rows']:,} rows"),
    })
    mem = w["streaming_memory"]
    for key, value in mem["cursor_vs_fetch_memory_at_largest"].items():
        prefetch = key.split("_")[1]
        out.append({
            "id": f"cursor_{prefetch}_memory",
            "goal": f"cursor (prefetch {prefetch}) extra memory ≤ 1/5 of fetch's at {rows_label(mem['largest'])} rows",
            "target": f"≤ {GOAL_CURSOR_MEMORY:.2f}",
            "measured": value,
            "met": value is not None and value <= GOAL_CURSOR_MEMORY,
            "detail": f"{fmt(mem['extra_mib'][key][-1], '.1f')} MiB vs {fmt(mem['extra_mib']['fetch'][-1], '.1f')} MiB",
        })
    return out


def psycopg_summary(results: dict[str, Any]) -> dict[str, Any]:
    version = results["environment"]["psycopg"]
    if version is None:
        return {"installed": False, "status": SKIPPED}
    summary: dict[str, Any] = {"installed": True, "status": "measured", "version": version}
    for key in ("concurrent_queries", "index"):
        summary[key] = {}
        for method, data in results["workloads"][key]["methods"].items():
            summary[key][method] = {
                "sequential_qps": data["sides"]["psycopg_sequential"]["qps"],
                "pool_qps": data["sides"]["psycopg_pool"]["qps"],
                "vs_asyncpg_sequential": data["ratios"]["psycopg_vs_asyncpg_sequential"],
                "vs_asyncpg_pool": data["ratios"]["psycopg_vs_asyncpg_pool"],
            }
    return summary


# -- tables --------------------------------------------------------------------------------------------------------

def tables(results: dict[str, Any], derived: dict[str, Any]) -> list[dict[str, Any]]:
    w = results["workloads"]
    w1 = w["concurrent_queries"]
    pool = w1["pool_size"]
    methods = ("fetchrow", "fetch")
    psycopg = results["environment"]["psycopg"] is not None

    def side_row(label: str, workload: dict[str, Any], side: str) -> list[str]:
        return [label, *(fmt(_qps(workload, m, side)) for m in methods)]

    def ratio_row(label: str, workload: dict[str, Any], key: str) -> list[str]:
        return [label, *(times(workload["methods"][m]["ratios"][key]) for m in methods)]

    book = derived["book"]["this machine"]
    sections = [{
        "title": "1. Concurrent queries vs the ceiling (the product query, product 100)",
        "columns": ["side", "fetchrow q/s", "fetch q/s"],
        "rows": [
            side_row("asyncpg, sequential", w1, "asyncpg_sequential"),
            side_row(f"asyncpg, gather on a pool of {pool}", w1, "asyncpg_pool"),
            side_row("pgbench, 1 client", w1, "pgbench_1"),
            side_row(f"pgbench, {pool} clients", w1, "pgbench_pool"),
            ratio_row("asyncpg concurrent / sequential", w1, "asyncpg_concurrent_vs_sequential"),
            ratio_row(f"pgbench {pool} clients / 1 client", w1, "pgbench_concurrent_vs_sequential"),
            ratio_row("asyncpg / pgbench, 1 client", w1, "asyncpg_vs_pgbench_1"),
            ratio_row(f"asyncpg / pgbench, {pool} clients", w1, "asyncpg_vs_pgbench_pool"),
            ["rows per query", *(str(w1["rows_per_query"]["asyncpg"][m]) for m in methods)],
        ],
        "notes": [
            f"{w1['queries_per_side']['fetchrow']:,} fetchrow and {w1['queries_per_side']['fetch']:,} fetch queries "
            "per side, in "
            f"{w1['rounds']} interleaved rounds; q/s = all queries / all seconds.",
            "pgbench -M prepared -n -f script, -T = the asyncpg side's round time in whole seconds (at least 1).",
            "fetchrow asks the server for one row; pgbench (and psycopg) read every row, so their fetchrow "
            "column runs the query with LIMIT 1: the same work.",
            f"10,000 fetchrow queries here (from the rates above): {book['sequential']:.1f} s sequential, {book['concurrent']:.1f} s "
            "concurrent (the book: 21.8 s and 4.8 s; a reader: 7.2 s and 4.2 s).",
        ],
    }]
    sweep = w["pool_sweep"]
    fr, fe = sweep["methods"]["fetchrow"], sweep["methods"]["fetch"]
    sections.append({
        "title": "2. Pool sweep (concurrent queries on a pool of each size, beside pgbench with as many clients)",
        "columns": ["pool size", "asyncpg fetchrow q/s", "pgbench LIMIT 1 q/s", "asyncpg / pgbench",
                    "asyncpg fetch q/s", "pgbench q/s", "asyncpg / pgbench"],
        "rows": [[str(size), fmt(fr["asyncpg_qps"][i]), fmt(fr["pgbench_qps"][i]), times(fr["asyncpg_vs_pgbench"][i]),
                  fmt(fe["asyncpg_qps"][i]), fmt(fe["pgbench_qps"][i]), times(fe["asyncpg_vs_pgbench"][i])]
                 for i, size in enumerate(sweep["pool_sizes"])],
        "notes": [f"{fr['queries_per_size']:,} fetchrow and {fe['queries_per_size']:,} fetch queries per pool size."],
    })
    seed = w["seeding"]
    labels = {"executemany": "executemany", "copy_records_to_table": "copy_records_to_table",
              "psql_copy_csv": "psql COPY … FROM STDIN (CSV)"}
    sections.append({
        "title": f"3. Seeding ({seed['rows']:,} rows into empty tables)",
        "columns": ["loader", "seconds", "rows/s", "time / psql's"],
        "rows": [[labels[k], fmt(seed["seconds"][k], ".3f"), fmt(seed["rows_per_second"][k]),
                  times(seed["time_vs_psql"][k])] for k in labels],
        "notes": [f"Fastest of {seed['rounds']} rounds; timed: {seed['timed']}. Same data in all three: "
                  f"{seed['same_data']}."],
    })
    mem = w["streaming_memory"]
    keys = list(mem["extra_mib"])
    names = {k: ("fetch" if k == "fetch" else f"cursor {k.split('_')[1]}") for k in keys}
    sections.append({
        "title": "4. Streaming memory (fetch vs a cursor, generated rows)",
        "columns": ["rows", *(f"{names[k]} MiB" for k in keys), *(f"{names[k]} s" for k in keys)],
        "rows": [[rows_label(n), *(fmt(mem["extra_mib"][k][i], ".1f") for k in keys),
                  *(fmt(mem["seconds"][k][i], ".3f") for k in keys)] for i, n in enumerate(mem["rows"])],
        "notes": [f"Memory: {mem['measure']}; {mem['process']}; median of {mem['rounds']} round(s)."],
    })
    if psycopg:
        sections.append({
            "title": "5. psycopg 3 (AsyncConnectionPool) on workload 1",
            "columns": ["side", "fetchrow q/s", "fetch q/s"],
            "rows": [
                side_row("psycopg, sequential", w1, "psycopg_sequential"),
                side_row(f"psycopg, gather on a pool of {pool}", w1, "psycopg_pool"),
                ratio_row("psycopg / asyncpg, sequential", w1, "psycopg_vs_asyncpg_sequential"),
                ratio_row(f"psycopg / asyncpg, pool of {pool}", w1, "psycopg_vs_asyncpg_pool"),
            ],
            "notes": [f"psycopg {results['environment']['psycopg']}, autocommit, prepare_threshold=0; interleaved "
                      "with workload 1's rounds. Its fetchrow column runs the query with LIMIT 1 and fetchone()."],
        })
    else:
        sections.append({
            "title": "5. psycopg 3 (AsyncConnectionPool) on workload 1",
            "columns": ["side", "fetchrow q/s", "fetch q/s"],
            "rows": [["psycopg, sequential", "skipped", "skipped"], [f"psycopg, gather on a pool of {pool}", "skipped",
                                                                      "skipped"],
                     ["psycopg / asyncpg, sequential", "skipped", "skipped"],
                     [f"psycopg / asyncpg, pool of {pool}", "skipped", "skipped"]],
            "notes": [SKIPPED],
        })
    idx = derived["index"]
    b, a = idx["without_index"], idx["with_index"]
    w6 = w["index"]
    sections.append({
        "title": "6. The index effect (fetch, workload 1 again after CREATE INDEX ON sku (product_id))",
        "columns": ["measurement", "no index", "index"],
        "rows": [
            ["asyncpg, sequential q/s", fmt(_qps(w1, "fetch", "asyncpg_sequential")),
             fmt(_qps(w6, "fetch", "asyncpg_sequential"))],
            [f"asyncpg, pool of {pool} q/s", fmt(b["asyncpg_pool_qps"]), fmt(a["asyncpg_pool_qps"])],
            ["pgbench, 1 client q/s", fmt(_qps(w1, "fetch", "pgbench_1")), fmt(_qps(w6, "fetch", "pgbench_1"))],
            [f"pgbench, {pool} clients q/s", fmt(b["pgbench_pool_qps"]), fmt(a["pgbench_pool_qps"])],
            [f"pgbench / asyncpg, {pool} clients", times(b["pgbench_vs_asyncpg_pool"]),
             times(a["pgbench_vs_asyncpg_pool"])],
            [f"server CPU ms per query (pool of {pool})", fmt(b["server_cpu_ms_per_query"], ".3f"),
             fmt(a["server_cpu_ms_per_query"], ".3f")],
            [f"Python client CPU ms per query (pool of {pool})", fmt(b["client_cpu_ms_per_query"], ".3f"),
             fmt(a["client_cpu_ms_per_query"], ".3f")],
            ["pgbench client CPU ms per query", fmt(b["pgbench_client_cpu_ms_per_query"], ".3f"),
             fmt(a["pgbench_client_cpu_ms_per_query"], ".3f")],
            ["server's share of the CPU", pct(b["server_share_of_cpu"]), pct(a["server_share_of_cpu"])],
            ["Python client busy (CPU / wall)", pct(b["client_busy"]), pct(a["client_busy"])],
        ],
        "notes": [f"With the index: {w6['queries_per_side']['fetch']:,} fetch queries per side in {w6['rounds']} "
                  "interleaved round(s); CPU: this process's CPU time, and the CPU time of the backends serving the "
                  "pool (psutil), over the side's wall time.",
                  "asyncpg's pool also sends a reset query (RESET ALL and friends) when a connection is released.",
                  idx["verdict"]],
    })
    sections.append({
        "title": "Goals (reported, not asserted)",
        "columns": ["goal", "target", "measured", "met"],
        "rows": [[g["goal"], g["target"], fmt(g["measured"], ".3f"), "met" if g["met"] else "NOT met"]
                 for g in derived["goals"]],
        "notes": [f"{g['id']}: {g['detail']}" for g in derived["goals"]],
    })
    return sections


def render(sections: list[dict[str, Any]], header: str) -> str:
    """Plain-text tables: first column left-aligned, the others right-aligned."""
    lines = [header]
    for section in sections:
        cells = [section["columns"], *section["rows"]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(section["columns"]))]

        def line(row: list[str]) -> str:
            return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)).rstrip()

        lines += ["", section["title"], line(section["columns"]), "  ".join("-" * w for w in widths)]
        lines += [line(row) for row in section["rows"]]
        lines += [f"  · {note}" for note in section["notes"]]
    return "\n".join(lines)


def header(results: dict[str, Any]) -> str:
    env = results["environment"]
    return (f"asyncpg performance lab ({results['mode']}): Python {env['python']}, asyncpg {env['asyncpg']}, "
            f"PostgreSQL {env['postgresql']}, psycopg {env['psycopg'] or 'not installed'}, {env['cpu_count']} CPUs, "
            f"{results['elapsed_seconds']:.0f} s")


def build(results: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: environment, sizes, every measurement, derived figures, goals and the tables."""
    derived = {"book": book_comparison(results), "index": index_effect(results)}
    derived["goals"] = goals(results)
    document = {
        "schema_version": 1,
        **results,
        "book": derived["book"],
        "psycopg": psycopg_summary(results),
        "index_effect": derived["index"],
        "goals": derived["goals"],
    }
    document["tables"] = tables(results, derived)
    return document


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
