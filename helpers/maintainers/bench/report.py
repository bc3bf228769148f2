"""What a bench run shows, built from its rows: text tables, the goals, and the plots.

Every figure is a median over rounds with its min–max spread (`helpers.lab.summary`); every
ratio is one median over another.  Adding a figure means a workload that records its rows and
a few lines here; nothing else stores or copies a number.  The goals are reported, met or not,
never asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
from matplotlib.figure import Figure

from ... import lab
from ...plotting import plot_comparison
from .queries import METHODS
from .run import Run
from .seeding import PSQL

BY = ["method", "side", "clients"]


@dataclass(frozen=True)
class Target:
    """A goal's threshold: `measured ≥ limit` (at_least) or `measured ≤ limit`."""

    limit: float
    at_least: bool

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.limit:g}"

    def met(self, value: float) -> bool:
        return value == value and (value >= self.limit if self.at_least else value <= self.limit)


GOAL_FETCH_VS_PGBENCH = Target(0.9, at_least=True)
GOAL_COPY_VS_PSQL = Target(1.3, at_least=False)
GOAL_CURSOR_MEMORY = Target(0.2, at_least=False)
GOAL_COSTS = {"fetch": Target(0.95, at_least=True), "fetchrow": Target(0.6, at_least=True)}
GOAL_SPREAD = Target(0.10, at_least=False)  # (max - min) / median of a headline figure
GOAL_SECONDS = {"full": Target(600, at_least=False)}


@dataclass(frozen=True)
class Goal:
    id: str
    goal: str
    target: str
    measured: float
    met: bool
    detail: str


def summary(run: Run, workload: str) -> pd.DataFrame:
    """One workload's throughput: a row per (method, side, clients), in the order measured."""
    return lab.summary(run.rows[run.rows["workload"] == workload], by=BY)


def seeding_summary(run: Run) -> pd.DataFrame:
    """Seconds per load (lower is better), per loader, and each loader's time over psql's."""
    rows = run.rows[run.rows["workload"] == "seeding"]
    grouped = rows.groupby("side", sort=False)["seconds"]
    table = pd.DataFrame({"median": grouped.median(), "min": grouped.min(), "max": grouped.max(),
                          "rows": rows.groupby("side", sort=False)["rows"].first()})
    table["spread"] = (table["max"] - table["min"]) / table["median"]
    table["rows_per_s"] = table["rows"] / table["median"]
    table["vs_psql"] = table["median"] / figure(table, PSQL)
    return table


def memory_summary(run: Run) -> pd.DataFrame:
    """Median extra MiB and seconds per way and row count, with the extra memory's min and max."""
    rows = _memory_rows(run)
    grouped = rows.groupby(["side", "rows"], sort=False)
    return pd.DataFrame({"extra_mib": grouped["extra_mib"].median(), "min_mib": grouped["extra_mib"].min(),
                         "max_mib": grouped["extra_mib"].max(), "seconds": grouped["seconds"].median()})


def _memory_rows(run: Run) -> pd.DataFrame:
    rows = run.rows[run.rows["workload"] == "memory"]
    return rows.astype({"rows": int})


def figure(table: pd.DataFrame, key: Any, column: str = "median") -> float:
    """One figure of a summary table, as a float."""
    return float(cast(Any, table.loc[key, column]))


def _ratio(table: pd.DataFrame, a: tuple[str, str, int], b: tuple[str, str, int]) -> float:
    return figure(table, a) / figure(table, b)


def round_ratios(run: Run, workload: str, a: tuple[str, str, int], b: tuple[str, str, int]) -> pd.Series:
    """Side a's rate over side b's, round by round: within a round the two ran less than a minute
    apart, so a change in the machine's speed between rounds falls on both."""
    rows = run.rows[run.rows["workload"] == workload]
    rates = (rows["queries"] / rows["seconds"]).groupby([rows[c] for c in BY] + [rows["round"]]).first()
    return cast(pd.Series, rates.loc[a] / rates.loc[b])


def _per_round(ratios: pd.Series) -> str:
    return f"per round {ratios.min():.2f}–{ratios.max():.2f}"


def best_step(run: Run, method: str) -> tuple[str, float]:
    """Workload 7's step closest to pgbench, and its median over pgbench's."""
    table = cast(pd.DataFrame, summary(run, "pool costs").loc[method])
    ceiling = figure(table, ("pgbench", pool_size(run)))
    steps = table.drop(index="pgbench", level="side")["median"]
    step = cast(tuple[str, int], steps.idxmax())[0]
    return step, float(steps.max()) / ceiling


def pool_size(run: Run) -> int:
    return int(run.sizes["pool_size"])


def _cursor_memory(run: Run) -> dict[str, tuple[float, str]]:
    memory = memory_summary(run)["extra_mib"]
    largest = max(run.sizes["memory_rows"])
    fetch = memory.loc[("fetch", largest)]
    return {side: (float(memory.loc[(side, largest)] / fetch),
                   f"{memory.loc[(side, largest)]:.1f} MiB vs fetch's {fetch:.1f} MiB at {largest:,} rows")
            for side in memory.index.get_level_values("side").unique() if side != "fetch"}


def goals(run: Run) -> list[Goal]:
    def goal(id: str, text: str, target: Target, measured: float, detail: str) -> Goal:
        return Goal(id, text.format(target=target), str(target), measured, target.met(measured), detail)

    pool = pool_size(run)
    concurrent = summary(run, "concurrent")
    out = []
    for clients in (1, pool):
        a, p = ("fetch", "asyncpg", clients), ("fetch", "pgbench", clients)
        out.append(goal(f"fetch_vs_pgbench_{clients}", f"asyncpg fetch {{target}} × pgbench, {clients} client(s)",
                        GOAL_FETCH_VS_PGBENCH, _ratio(concurrent, a, p),
                        f"{figure(concurrent, a):,.0f} vs {figure(concurrent, p):,.0f} q/s; "
                        f"{_per_round(round_ratios(run, 'concurrent', a, p))}"))
    seed = seeding_summary(run)
    out.append(goal("copy_vs_psql", "copy_records_to_table's time {target} × psql COPY's", GOAL_COPY_VS_PSQL,
                    figure(seed, "copy_records_to_table", "vs_psql"),
                    f"{figure(seed, 'copy_records_to_table'):.3f} s vs {figure(seed, PSQL):.3f} s "
                    f"for {figure(seed, PSQL, 'rows'):,.0f} rows"))
    for side, (value, detail) in _cursor_memory(run).items():
        out.append(goal(f"{side.replace(', prefetch ', '_').replace(',', '')}_memory",
                        f"{side}: extra memory {{target}} × fetch's", GOAL_CURSOR_MEMORY, value, detail))
    for method in METHODS:
        step, value = best_step(run, method)
        ratios = round_ratios(run, "pool costs", (method, step, pool), (method, "pgbench", pool))
        out.append(goal(f"pool_costs_{method}", f"best step of workload 7, {method}: {{target}} × pgbench",
                        GOAL_COSTS[method], value, f"{step}; {_per_round(ratios)}"))
    spreads = headline_spreads(run)
    worst = spreads.idxmax()
    out.append(goal("headline_spread", "largest spread of a headline figure {target}", GOAL_SPREAD,
                    float(spreads.max()), f"{worst}: {spreads.max():.1%}; {_steal(run)}"))
    if run.mode in GOAL_SECONDS:
        out.append(goal(f"{run.mode}_seconds", f"the {run.mode} bench takes {{target}} s", GOAL_SECONDS[run.mode],
                        run.elapsed_seconds, f"{run.elapsed_seconds:.0f} s on {run.environment['cpu_count']} CPUs, "
                                             f"load average {run.environment['load_average'][0]:.1f} as it began"))
    return out


def headline_spreads(run: Run) -> pd.Series:
    """The spread of every figure a goal is read from, named."""
    pool = pool_size(run)
    spreads = {}
    concurrent = summary(run, "concurrent")["spread"]
    for side in ("asyncpg", "pgbench"):
        for clients in (1, pool):
            spreads[f"concurrent fetch, {side}, {clients}"] = concurrent.loc[("fetch", side, clients)]
    costs = summary(run, "pool costs")["spread"]
    for method in METHODS:
        step, _ = best_step(run, method)
        for side in (step, "pgbench"):
            spreads[f"pool costs {method}, {side}"] = costs.loc[(method, side, pool)]
    seed = seeding_summary(run)["spread"]
    for side in ("copy_records_to_table", PSQL):
        spreads[f"seeding, {side}"] = seed.loc[side]
    return pd.Series(spreads, dtype=float)


# -- text ---------------------------------------------------------------------------------------------------------

def _rates(table: pd.DataFrame) -> pd.DataFrame:
    """A throughput summary laid out for reading: rates with thousands separators, CPU in ms."""
    return pd.DataFrame({
        "median q/s": table["median"].map("{:,.0f}".format),
        "min–max": [f"{lo:,.0f}–{hi:,.0f}" for lo, hi in zip(table["min"], table["max"], strict=True)],
        "spread": table["spread"].map("{:.1%}".format),
        "client CPU ms/q": table["client_ms"].map("{:.4f}".format),
        "server CPU ms/q": table["server_ms"].map(lambda v: "n/a" if pd.isna(v) else f"{v:.4f}"),
        "client busy": table["client_busy"].map("{:.0%}".format),
    }, index=table.index)


Section = tuple[str, pd.DataFrame, list[str]]  # title, table, notes


def _method_note(run: Run) -> str:
    return (f"Each side ran {run.sizes['rounds']} window(s) of {run.sizes['window']:g} s, taking turns with the "
            "others; median over rounds, min–max, spread = (max - min) / median; client busy = client CPU / wall "
            "time (100 % = one core).")


def _concurrent_section(run: Run) -> Section:
    pool, concurrent = pool_size(run), summary(run, "concurrent")
    drivers = concurrent.index.get_level_values("side").unique()
    ratios = [f"{m} {s}: {pool} clients / 1 = {_ratio(concurrent, (m, s, pool), (m, s, 1)):.2f}×"
              for m in METHODS for s in drivers]
    for other, base in (("asyncpg", "pgbench"), ("psycopg", "asyncpg")):
        if other in drivers:
            ratios += [f"{m}, {n} client(s): {other} / {base} = "
                       f"{_ratio(concurrent, (m, other, n), (m, base, n)):.2f}×" for m in METHODS for n in (1, pool)]
    return ("1 and 5. The product query: one worker and six on a pool of six, beside pgbench", _rates(concurrent),
            [_method_note(run), "pgbench's fetchrow script adds LIMIT 1 (asyncpg's fetchrow asks the server for one "
             "row).", *ratios])


def _sweep_section(run: Run) -> Section:
    sweep = summary(run, "pool sweep")
    medians = sweep["median"].unstack("side")
    laid = pd.DataFrame({"asyncpg q/s": medians["asyncpg"].map("{:,.0f}".format),
                         "asyncpg spread": sweep["spread"].unstack("side")["asyncpg"].map("{:.1%}".format),
                         "pgbench q/s": medians["pgbench"].map("{:,.0f}".format),
                         "asyncpg / pgbench": (medians["asyncpg"] / medians["pgbench"]).map("{:.2f}×".format)})
    best = {m: medians["asyncpg"].xs(m).idxmax() for m in METHODS}
    return ("2. Pool sweep: gather (the book's pattern) on pools of growing size, pgbench with as many clients",
            laid, [_method_note(run), *(f"{m}: asyncpg's best pool size here: {n}" for m, n in best.items())])


def _seeding_section(run: Run) -> Section:
    seed = seeding_summary(run)
    return ("3. Seeding: the e-shop loaded into empty tables", pd.DataFrame({
        "median s": seed["median"].map("{:.3f}".format), "spread": seed["spread"].map("{:.1%}".format),
        "rows/s": seed["rows_per_s"].map("{:,.0f}".format), "× psql's time": seed["vs_psql"].map("{:.2f}".format)}),
        [f"{int(seed['rows'].iloc[0]):,} rows per load, {run.sizes['seed_rounds']} round(s); timed from connecting "
         "to disconnecting (psql: process start to exit), one transaction per load."])


def _memory_section(run: Run) -> Section:
    memory = memory_summary(run)
    return ("4. Streaming memory: fetch against cursors, a fresh process per measurement", pd.DataFrame({
        "extra MiB (median)": memory["extra_mib"].map("{:.1f}".format),
        "min–max": [f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(memory["min_mib"], memory["max_mib"], strict=True)],
        "seconds": memory["seconds"].map("{:.3f}".format)}),
        ["extra MiB: how far the process's peak resident set rose above its size just before the query.",
         *(f"{side}: {detail}" for side, (_, detail) in _cursor_memory(run).items())])


def _index_section(run: Run) -> Section:
    after = cast(pd.DataFrame, summary(run, "index").loc["fetch"])
    before = cast(pd.DataFrame, summary(run, "concurrent").loc["fetch"]).reindex(after.index)

    def change(column: str) -> list[str]:
        return [f"{b:.4f} → {a:.4f}" for b, a in zip(before[column], after[column], strict=True)]

    return ("6. The index effect: fetch, as in workload 1, after CREATE INDEX ON sku (product_id)", pd.DataFrame({
        "no index q/s": before["median"].map("{:,.0f}".format), "index q/s": after["median"].map("{:,.0f}".format),
        "index spread": after["spread"].map("{:.1%}".format), "server CPU ms/q": change("server_ms"),
        "client CPU ms/q": change("client_ms")}), [_method_note(run)])


def _costs_section(run: Run, method: str) -> Section:
    pool = pool_size(run)
    table = cast(pd.DataFrame, summary(run, "pool costs").loc[method])
    laid = _rates(table)
    laid.insert(3, "× pgbench", (table["median"] / figure(table, ("pgbench", pool))).map("{:.2f}".format))
    laid.insert(4, "× previous", (table["median"] / table["median"].shift()).map(
        lambda v: "" if pd.isna(v) else f"{v:.2f}"))
    laid.loc[("pgbench", pool), "× previous"] = ""
    step, value = best_step(run, method)
    return (f"7. The pool's costs, one removed at a time ({method}, {pool} connections, no index)", laid,
            [_method_note(run), "Each step runs in client processes of its own, started before the rounds.",
             f"best step: {step}, {value:.2f}× pgbench"])


def _goals_section(run: Run) -> Section:
    reported = goals(run)
    return ("Goals (reported, not asserted)", pd.DataFrame(
        [{"goal": g.goal, "measured": f"{g.measured:.3f}", "met": "met" if g.met else "NOT met"} for g in reported]
    ).set_index("goal"), [f"{g.id}: {g.detail}" for g in reported])


def sections(run: Run) -> list[Section]:
    """Every workload's table with its notes, then the goals."""
    return [_concurrent_section(run), _sweep_section(run), _seeding_section(run), _memory_section(run),
            _index_section(run), *(_costs_section(run, m) for m in METHODS), _goals_section(run)]


def _steal(run: Run) -> str:
    steal = run.environment.get("cpu_steal")
    return "CPU steal not known" if steal is None else f"{steal:.1%} of the CPU time taken by the hypervisor for other guests"


def render(run: Run) -> str:
    env = run.environment
    lines = [f"asyncpg bench ({run.mode}): Python {env['python']}, asyncpg {env['asyncpg']}, PostgreSQL "
             f"{env['postgresql']} over a {env['connection']}, psycopg {env['psycopg'] or 'not installed'}, uvloop "
             f"{env['uvloop'] or 'not installed'}, {env['cpu_count']} CPUs (load average {env['load_average'][0]:.1f} "
             f"at the start), {run.elapsed_seconds:.0f} s, {_steal(run)}"]
    for title, table, notes in sections(run):
        lines += ["", title, table.to_string(), *(f"  · {note}" for note in notes)]
    return "\n".join(lines)


# -- plots --------------------------------------------------------------------------------------------------------

def _rates_by(table: pd.DataFrame, label: Callable[[Any], str]) -> pd.DataFrame:
    return table.set_axis([label(key) for key in table.index])


def _grouped(table: pd.DataFrame, group: Callable[[Any], str], bar: Callable[[Any], str], *, title: str) -> Figure:
    values: dict[str, dict[str, float]] = {}
    spread: dict[str, dict[str, tuple[float, float]]] = {}
    for key, row in table.iterrows():
        values.setdefault(group(key), {})[bar(key)] = row["median"]
        spread.setdefault(group(key), {})[bar(key)] = (row["min"], row["max"])
    return plot_comparison(values, title=title, ylabel="queries per second", fmt="{:,.0f}", spread=spread)


def _with_rate(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(rate=rows["queries"] / rows["seconds"])


PLOTS: dict[str, str] = {
    "concurrent_fetchrow.png": "workload 1, fetchrow: asyncpg, psycopg and pgbench, 1 and 6 clients",
    "concurrent_fetch.png": "workload 1, fetch: asyncpg, psycopg and pgbench, 1 and 6 clients",
    "pool_sweep_fetchrow.png": "workload 2, fetchrow: throughput by pool size beside pgbench",
    "pool_sweep_fetch.png": "workload 2, fetch: throughput by pool size beside pgbench",
    "seeding.png": "workload 3: seconds per load, three ways",
    "memory.png": "workload 4: extra memory by rows read, fetch and cursors (linear axes)",
    "index.png": "workload 6: fetch without and with the index",
    "pool_costs_fetchrow.png": "workload 7, fetchrow: one cost removed per step, pgbench beside",
    "pool_costs_fetch.png": "workload 7, fetch: one cost removed per step, pgbench beside",
    "pool_costs_cpu_fetchrow.png": "workload 7, fetchrow: CPU per query, client and server",
    "pool_costs_cpu_fetch.png": "workload 7, fetch: CPU per query, client and server",
}


def figures(run: Run) -> dict[str, Figure]:
    note = "median, min–max bars"
    concurrent, costs, rows = summary(run, "concurrent"), summary(run, "pool costs"), run.rows
    figs = {}
    for method in METHODS:
        figs[f"concurrent_{method}.png"] = _grouped(
            concurrent.loc[[method]], lambda k: f"{k[2]} client(s)", lambda k: str(k[1]),
            title=f"The product query with {method}: {note}")
        sweep = _with_rate(rows[(rows["workload"] == "pool sweep") & (rows["method"] == method)])
        figs[f"pool_sweep_{method}.png"] = lab.plot_growth(
            sweep, x="clients", y="rate", series="side", title=f"Pool sweep, {method}: {note}",
            xlabel="pool size (pgbench: clients)", ylabel="queries per second")
        table = _rates_by(costs.loc[[method]], lambda k: str(k[1]))
        figs[f"pool_costs_{method}.png"] = lab.plot_rates(table, title=f"The pool's costs, {method}: {note}")
        figs[f"pool_costs_cpu_{method}.png"] = lab.plot_cpu(table, title=f"CPU per query, {method} (medians)")
    seed = seeding_summary(run)
    figs["seeding.png"] = plot_comparison(
        {"": dict(seed["median"])}, title=f"Seeding: seconds per load ({note}; lower is better)", ylabel="seconds",
        fmt="{:.2f}", spread={"": {str(side): (r["min"], r["max"]) for side, r in seed.iterrows()}}, rotate=True)
    figs["memory.png"] = lab.plot_growth(_memory_rows(run), x="rows", y="extra_mib", series="side",
                                         title=f"Extra memory while reading ({note})", xlabel="rows read",
                                         ylabel="MiB above the size before the query")
    both = pd.concat({"no index": concurrent.loc[["fetch"]], "index": summary(run, "index")})
    figs["index.png"] = _grouped(both, lambda k: f"{k[2]}, {k[3]} client(s)", lambda k: str(k[0]),
                                 title=f"fetch without and with the index: {note}")
    assert set(figs) == set(PLOTS)
    return figs


def save_plots(run: Run, directory: Path) -> dict[str, str]:
    """Write every chart as a PNG into `directory`; return {file name: what it shows}."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, fig in figures(run).items():
        fig.savefig(directory / name, dpi=100)
    return dict(PLOTS)
