"""From measurements to what a reader sees: table sections, plain text and the JSON document.

The figures come from derive.py; here they are only laid out.  Each section is a `Section`
(title, columns, rows of formatted text, notes), built from row specifications rather than
written out cell by cell, so the CLI prints them and a notebook shows them the same way; the
numbers themselves stay in the JSON's "workloads" part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import derive
from .derive import Goal, IndexEffect, fmt, pct, times
from .queries import METHODS
from .results import LabResults, MethodSides, ProductQueries, load, to_dict
from .workloads import ratio

SCHEMA_VERSION = 2


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Derived:
    book: dict[str, dict[str, float]]
    index: IndexEffect
    goals: list[Goal]
    psycopg: dict[str, Any]
    costs_verdict: str


def derived(results: LabResults) -> Derived:
    return Derived(book=derive.book_comparison(results), index=derive.index_effect(results),
                   goals=derive.goals(results), psycopg=derive.psycopg_summary(results),
                   costs_verdict=derive.costs_verdict(results))


# -- row specifications: a label and how to get each method's cell ------------------------------------------------

Cell = Callable[[MethodSides], str]


def side(key: str) -> Cell:
    return lambda m: fmt(m.qps(key))


def ratio_of(key: str) -> Cell:
    return lambda m: times(m.ratios[key])


def per_method(label: str, workload: ProductQueries, cell: Cell, skipped: bool = False) -> list[str]:
    return [label, *("skipped" if skipped else cell(workload.methods[m]) for m in METHODS)]


def method_columns(first: str) -> list[str]:
    return [first, *(f"{m} q/s" for m in METHODS)]


# -- sections ----------------------------------------------------------------------------------------------------

def concurrent_section(results: LabResults, book: dict[str, dict[str, float]]) -> Section:
    w1 = results.workloads.concurrent_queries
    pool = w1.pool_size
    specs = [
        ("asyncpg, sequential", side("asyncpg_sequential")),
        (f"asyncpg, gather on a pool of {pool}", side("asyncpg_pool")),
        ("pgbench, 1 client", side("pgbench_1")),
        (f"pgbench, {pool} clients", side("pgbench_pool")),
        ("asyncpg concurrent / sequential", ratio_of("asyncpg_concurrent_vs_sequential")),
        (f"pgbench {pool} clients / 1 client", ratio_of("pgbench_concurrent_vs_sequential")),
        ("asyncpg / pgbench, 1 client", ratio_of("asyncpg_vs_pgbench_1")),
        (f"asyncpg / pgbench, {pool} clients", ratio_of("asyncpg_vs_pgbench_pool")),
    ]
    rows = [per_method(label, w1, cell) for label, cell in specs]
    asyncpg_rows = w1.rows_per_query["asyncpg"] or {}
    rows.append(["rows per query", *(str(asyncpg_rows.get(m, "n/a")) for m in METHODS)])
    here = book["this machine"]
    return Section(
        "1. Concurrent queries vs the ceiling (the product query, product 100)", method_columns("side"), rows, [
            f"{w1.queries_per_side['fetchrow']:,} fetchrow and {w1.queries_per_side['fetch']:,} fetch queries per "
            f"side, in {w1.rounds} interleaved rounds; q/s = all queries / all seconds.",
            "pgbench -M prepared -n -f script, " + (
                "-t = the asyncpg side's queries in the round, shared among its clients."
                if results.sizes.pgbench_same_queries else
                "-T = the asyncpg side's round time in whole seconds (at least 1)."),
            "fetchrow asks the server for one row; pgbench (and psycopg) read every row, so their fetchrow "
            "column runs the query with LIMIT 1: the same work.",
            f"10,000 fetchrow queries here (from the rates above): {here['sequential']:.1f} s sequential, "
            f"{here['concurrent']:.1f} s concurrent (the book: {derive.BOOK['the book']['sequential']} s and "
            f"{derive.BOOK['the book']['concurrent']} s; a reader: {derive.BOOK['a reader']['sequential']} s and "
            f"{derive.BOOK['a reader']['concurrent']} s).",
        ])


def sweep_section(results: LabResults) -> Section:
    sweep = results.workloads.pool_sweep
    columns = ["pool size"]
    for method in METHODS:
        ceiling = "pgbench LIMIT 1" if method == "fetchrow" else "pgbench"
        columns += [f"asyncpg {method} q/s", f"{ceiling} q/s", "asyncpg / pgbench"]
    rows = [[str(size), *(cell for m in METHODS for cell in (
        fmt(sweep.methods[m].asyncpg_qps[i]), fmt(sweep.methods[m].pgbench_qps[i]),
        times(sweep.methods[m].asyncpg_vs_pgbench[i])))] for i, size in enumerate(sweep.pool_sizes)]
    counts = " and ".join(f"{sweep.methods[m].queries_per_size:,} {m}" for m in METHODS)
    return Section("2. Pool sweep (concurrent queries on a pool of each size, beside pgbench with as many clients)",
                   columns, rows, [f"{counts} queries per pool size."])


SEED_LABELS = {"executemany": "executemany", "copy_records_to_table": "copy_records_to_table",
               "psql_copy_csv": "psql COPY … FROM STDIN (CSV)"}


def seeding_section(results: LabResults) -> Section:
    seed = results.workloads.seeding
    rows = [[label, fmt(seed.seconds[k], ".3f"), fmt(seed.rows_per_second[k]), times(seed.time_vs_psql[k])]
            for k, label in SEED_LABELS.items()]
    return Section(f"3. Seeding ({seed.rows:,} rows into empty tables)",
                   ["loader", "seconds", "rows/s", "time / psql's"], rows,
                   [f"Fastest of {seed.rounds} rounds; timed: {seed.timed}. Same data in all three: {seed.same_data}."])


def memory_name(key: str) -> str:
    return "fetch" if key == "fetch" else f"cursor {key.split('_')[1]}"


def memory_section(results: LabResults) -> Section:
    mem = results.workloads.streaming_memory
    keys = list(mem.extra_mib)
    rows = [[f"{n:,}", *(fmt(mem.extra_mib[k][i], ".1f") for k in keys), *(fmt(mem.seconds[k][i], ".3f") for k in keys)]
            for i, n in enumerate(mem.rows)]
    return Section("4. Streaming memory (fetch vs a cursor, generated rows)",
                   ["rows", *(f"{memory_name(k)} MiB" for k in keys), *(f"{memory_name(k)} s" for k in keys)], rows,
                   [f"Memory: {mem.measure}; {mem.process}; median of {mem.rounds} round(s)."])


def psycopg_section(results: LabResults) -> Section:
    w1 = results.workloads.concurrent_queries
    pool = w1.pool_size
    version = results.environment.psycopg
    specs = [
        ("psycopg, sequential", side("psycopg_sequential")),
        (f"psycopg, gather on a pool of {pool}", side("psycopg_pool")),
        ("psycopg / asyncpg, sequential", ratio_of("psycopg_vs_asyncpg_sequential")),
        (f"psycopg / asyncpg, pool of {pool}", ratio_of("psycopg_vs_asyncpg_pool")),
    ]
    note = (derive.SKIPPED_PSYCOPG if version is None else
            f"psycopg {version}, autocommit, prepare_threshold=0; interleaved with workload 1's rounds. "
            "Its fetchrow column runs the query with LIMIT 1 and fetchone().")
    return Section("5. psycopg 3 (AsyncConnectionPool) on workload 1", method_columns("side"),
                   [per_method(label, w1, cell, skipped=version is None) for label, cell in specs], [note])


def index_section(results: LabResults, effect: IndexEffect) -> Section:
    w1, w6 = results.workloads.concurrent_queries, results.workloads.index
    pool = w1.pool_size
    b, a = effect.without_index, effect.with_index
    by_workload: list[tuple[str, Callable[[ProductQueries], str]]] = [
        ("asyncpg, sequential q/s", lambda w: fmt(w.methods["fetch"].qps("asyncpg_sequential"))),
        (f"asyncpg, pool of {pool} q/s", lambda w: fmt(w.methods["fetch"].qps("asyncpg_pool"))),
        ("pgbench, 1 client q/s", lambda w: fmt(w.methods["fetch"].qps("pgbench_1"))),
        (f"pgbench, {pool} clients q/s", lambda w: fmt(w.methods["fetch"].qps("pgbench_pool"))),
    ]
    by_figures: list[tuple[str, Callable[[derive.IndexFigures], str]]] = [
        (f"pgbench / asyncpg, {pool} clients", lambda f: times(f.pgbench_vs_asyncpg_pool)),
        (f"server CPU ms per query (pool of {pool})", lambda f: fmt(f.server_cpu_ms_per_query, ".3f")),
        (f"Python client CPU ms per query (pool of {pool})", lambda f: fmt(f.client_cpu_ms_per_query, ".3f")),
        ("pgbench client CPU ms per query", lambda f: fmt(f.pgbench_client_cpu_ms_per_query, ".3f")),
        ("server's share of the CPU", lambda f: pct(f.server_share_of_cpu)),
        ("Python client busy (CPU / wall)", lambda f: pct(f.client_busy)),
    ]
    rows = [[label, cell(w1), cell(w6)] for label, cell in by_workload]
    rows += [[label, cell(b), cell(a)] for label, cell in by_figures]
    return Section("6. The index effect (fetch, workload 1 again after CREATE INDEX ON sku (product_id))",
                   ["measurement", "no index", "index"], rows, [
                       f"With the index: {w6.queries_per_side['fetch']:,} fetch queries per side in {w6.rounds} "
                       "interleaved round(s); CPU: this process's CPU time, and the CPU time of the backends serving "
                       "the pool (from the operating system), over the side's wall time.",
                       "asyncpg's pool also sends a reset query (RESET ALL and friends) when a connection is released.",
                       effect.verdict])


COSTS_COLUMNS = ["step", "q/s", "× pgbench", "client CPU ms/query", "server CPU ms/query", "client busy", "limit"]
SHORT_LIMITS = {derive.CLIENT_LIMIT: "client", derive.SERVER_LIMIT: "server", derive.UNCLEAR_LIMIT: "between"}


def costs_sections(results: LabResults, verdict: str) -> list[Section]:
    """Workload 7, one section per method: a row per step, then pgbench, the ceiling."""
    costs = results.workloads.pool_costs
    sections = []
    for method in METHODS:
        data = costs.methods[method]
        rows = []
        for r in data.steps:
            s = r.summary
            if s is None:
                rows.append([r.step.label, "skipped", "", "", "", "", r.skipped or ""])
                continue
            rows.append([r.step.label, fmt(s.qps), times(r.vs_pgbench), fmt(s.client_cpu_ms_per_query, ".3f"),
                         fmt(s.server_cpu_ms_per_query, ".3f"), pct(s.client_busy),
                         SHORT_LIMITS.get(derive.limit(ratio(1.0, r.vs_pgbench)), "n/a")])
        p = data.pgbench
        rows.append([f"pgbench, {costs.connections} clients (the ceiling)", fmt(p.qps), times(1.0),
                     fmt(p.client_cpu_ms_per_query, ".3f"), "n/a", pct(p.client_busy), ""])
        length = ("-t: as many queries as a step" if results.sizes.pgbench_same_queries
                  else f"-T {', '.join(map(str, data.pgbench_seconds))} s")
        notes = [f"{costs.queries_per_step[method]:,} {method} queries per step in {costs.rounds} rounds, interleaved "
                 f"with pgbench ({costs.connections} clients, {length}); "
                 "each step in client processes of its own (pool_child.py), started before the rounds.",
                 "client CPU: the client processes' CPU time; server CPU: their backends'; client busy: "
                 "client CPU / wall time (100% = one core; step 5 has two processes, so up to 200%).",
                 f"limit: pgbench ≥ {derive.CLIENT_BOUND_RATIO}× the step's rate → client (the Python client); "
                 f"≤ {derive.SERVER_BOUND_RATIO}× → server; between the two → between."]
        if method == METHODS[-1]:
            notes.append(verdict)
        sections.append(Section(f"7. The pool's costs, one removed at a time ({method}, no index)", COSTS_COLUMNS,
                                rows, notes))
    return sections


def goals_section(goals: Sequence[Goal]) -> Section:
    return Section("Goals (reported, not asserted)", ["goal", "target", "measured", "met"],
                   [[g.goal, g.target, fmt(g.measured, ".3f"), "met" if g.met else "NOT met"] for g in goals],
                   [f"{g.id}: {g.detail}" for g in goals])


def tables(results: LabResults, figures: Derived) -> list[Section]:
    return [concurrent_section(results, figures.book), sweep_section(results), seeding_section(results),
            memory_section(results), psycopg_section(results), index_section(results, figures.index),
            *costs_sections(results, figures.costs_verdict), goals_section(figures.goals)]


# -- rendering ---------------------------------------------------------------------------------------------------

def render(sections: Sequence[Section], header: str) -> str:
    """Plain-text tables: first column left-aligned, the others right-aligned."""
    lines = [header]
    for section in sections:
        cells = [section.columns, *section.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(section.columns))]

        def line(row: list[str], widths: list[int] = widths) -> str:
            return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)).rstrip()

        lines += ["", section.title, line(section.columns), "  ".join("-" * w for w in widths)]
        lines += [line(row) for row in section.rows]
        lines += [f"  · {note}" for note in section.notes]
    return "\n".join(lines)


def header(results: LabResults) -> str:
    env = results.environment
    load = "n/a" if not env.load_average else f"{env.load_average[0]:.1f}"
    return (f"asyncpg performance lab ({results.mode}): Python {env.python}, asyncpg {env.asyncpg}, "
            f"PostgreSQL {env.postgresql}, psycopg {env.psycopg or 'not installed'}, "
            f"uvloop {env.uvloop or 'not installed'}, {env.cpu_count} CPUs (load average {load} at the start), "
            f"{results.elapsed_seconds:.0f} s")


def document(results: LabResults, figures: Derived, plots: dict[str, str]) -> dict[str, Any]:
    """The JSON document: every measurement (as recorded), derived figures, goals, tables and plots."""
    return {
        "schema_version": SCHEMA_VERSION,
        **to_dict(results),
        "book": figures.book,
        "psycopg": figures.psycopg,
        "index_effect": to_dict(figures.index),
        "pool_costs_verdict": figures.costs_verdict,
        "goals": [to_dict(g) for g in figures.goals],
        "tables": [to_dict(s) for s in tables(results, figures)],
        "plots": plots,
    }


def results_of(doc: dict[str, Any]) -> LabResults:
    """The measurements of a recorded JSON document, as the lab returned them."""
    return load(LabResults, doc)


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
