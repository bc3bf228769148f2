"""Scaffolding for notebook 10's performance lab (and the maintainers' bench): timed windows in
interleaved rounds, CPU meters, one tidy row per measurement, medians with their spread, and
sentences chosen by a measured ratio.

The asyncpg code being measured lives in the notebook's cells; this module only runs each
side for a window, reads the clocks around it and summarises.  A *side* is a coroutine
function `side(seconds)` that works for about `seconds` and returns how much it did (an
int, or a `Done` when it kept its own clock or spent CPU in processes the meters cannot see).
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from matplotlib.figure import Figure

from . import config
from .dsn import for_child
from .plotting import plot_comparison, plot_sweep
from .server import bin_dir

#: Each side works this long per round: long enough that starting and stopping are a small part.
WINDOW = 2.0
#: Rounds per side: the median and the min–max spread need at least three.
ROUNDS = 3

Side = Callable[[float], Awaitable["int | Done"]]


@dataclass(frozen=True)
class Done:
    """What a side did in its window, when the plain count is not the whole story.

    `seconds`: the side's own clock (pgbench's rate leaves out its connecting); `client_cpu`:
    CPU seconds spent in processes the meters cannot see (a process pool's workers).
    """

    queries: int
    seconds: float | None = None
    client_cpu: float = 0.0


def output_dir(notebook: str = "10_performance_lab") -> Path:
    """A folder this learner may write in (not the course's, which a hub shares read-only)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        folder = base / "asyncpg-course" / config.prefix_and_source()[0] / notebook
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home (some containers): the temporary folder
        folder = Path(tempfile.gettempdir()) / f"asyncpg-course-{os.getuid()}" / notebook
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def program(name: str) -> str:
    """A PostgreSQL client program (pgbench, psql): the embedded package's (the server's version),
    else the one on PATH."""
    bundled = bin_dir() / name
    return str(bundled) if bundled.exists() else (shutil.which(name) or name)


def libpq(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password, and an environment that carries it (PGPASSWORD), for a
    client program: a password in a program's arguments is visible to every user of the machine."""
    url, secret = for_child(dsn)
    return url, {**os.environ, **secret}


def server_cpu_meter(backend_pid: int) -> Callable[[], float] | None:
    """A function that reads the CPU seconds the server's processes have used so far, or None
    when the server does not run on this machine (DATABASE_URL to another host or a container).

    It sums the postmaster, its live children (backends, background workers) and its exited
    children (which the kernel adds to their parent's count when it reaps them), so backends
    that pgbench opens and closes inside a window are counted too.
    """
    if config.database_url() is not None:
        return None
    try:
        postmaster = psutil.Process(backend_pid).parent()
    except psutil.Error:
        return None
    if postmaster is None or postmaster.name() != "postgres":
        return None

    def read() -> float:
        times = postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in postmaster.children():
            try:
                total += _cpu_seconds(child)
            except psutil.Error:  # exited meanwhile: now in children_user/system
                continue
        return total

    return read


def _cpu_seconds(process: psutil.Process) -> float:
    """One process's CPU seconds: Linux's schedstat counts nanoseconds, where psutil's user and
    system times count clock ticks (10 ms), coarse beside a window's share of a backend."""
    try:
        with open(f"/proc/{process.pid}/schedstat", encoding="ascii") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        times = process.cpu_times()
        return float(times.user + times.system)


def _client_cpu() -> float:
    """This process's CPU seconds (all threads) plus its reaped children's (pgbench, psql)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


async def rounds(sides: Mapping[Any, Side], *, workload: str, seconds: float | None = None,
                 count: int | None = None, server_cpu: Callable[[], float] | None = None,
                 clients: int | None = None, key: tuple[str, ...] = ("side",)) -> pd.DataFrame:
    """Run every side for `seconds` (default `WINDOW`), `count` times (default `ROUNDS`), taking
    turns (reversed every other round, so no side always runs first or last); one row per side
    and round.  The defaults are read at the call, so a copy of the notebook may shorten them.

    A side's name fills the row's `side` column; with `key` naming several columns, e.g.
    ("method", "side", "clients"), each name is a tuple that fills them.
    """
    seconds = WINDOW if seconds is None else seconds
    count = ROUNDS if count is None else count
    rows = []
    order = list(sides)
    for number in range(count):
        for name in (order if number % 2 == 0 else order[::-1]):
            server_before = server_cpu() if server_cpu else None
            cpu_before, start = _client_cpu(), time.perf_counter()
            done = await sides[name](seconds)
            wall, cpu = time.perf_counter() - start, _client_cpu() - cpu_before
            server = server_cpu() - server_before if server_cpu and server_before is not None else None
            if not isinstance(done, Done):
                done = Done(int(done))
            labels = dict(zip(key, name if len(key) > 1 else (name,), strict=True))
            row = {"workload": workload, **labels}
            if "clients" not in key:
                row["clients"] = clients
            rows.append({**row, "round": number + 1, "queries": done.queries, "seconds": done.seconds or wall,
                         "client_cpu": cpu + done.client_cpu, "server_cpu": server})
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame, by: str | list[str] = "side") -> pd.DataFrame:
    """Per side: the median rate over rounds with its min and max, the spread (max - min over the
    median), and the median CPU per query of the client and of the server, in milliseconds.
    `by` names the column(s) that tell sides apart, in the order measured."""
    rows = rows.assign(rate=rows["queries"] / rows["seconds"],
                       client_ms=1000 * rows["client_cpu"] / rows["queries"],
                       server_ms=1000 * rows["server_cpu"].astype(float) / rows["queries"],
                       client_busy=rows["client_cpu"] / rows["seconds"])
    grouped = rows.groupby(by, sort=False)
    table = pd.DataFrame({
        "median": grouped["rate"].median(),
        "min": grouped["rate"].min(),
        "max": grouped["rate"].max(),
        "client_ms": grouped["client_ms"].median(),
        "server_ms": grouped["server_ms"].median(),
        "client_busy": grouped["client_busy"].median(),
        "rounds": grouped["rate"].size(),
    })
    table["spread"] = (table["max"] - table["min"]) / table["median"]
    return table


def plot_rates(table: pd.DataFrame, *, title: str, ylabel: str = "queries per second") -> Figure:
    """Bars of the median rates, with error bars from the slowest to the fastest round."""
    return plot_comparison({"": {str(side): rate for side, rate in table["median"].items()}}, title=title, ylabel=ylabel, fmt="{:,.0f}",
                           spread={"": {str(side): (row["min"], row["max"]) for side, row in table.iterrows()}},
                           rotate=True)


def plot_cpu(table: pd.DataFrame, *, title: str) -> Figure:
    """Client and server CPU per query (medians), side by side for every side."""
    groups = {str(side): {"client": row["client_ms"], **({"server": row["server_ms"]} if pd.notna(row["server_ms"]) else {})}
              for side, row in table.iterrows()}
    return plot_comparison(groups, title=title, ylabel="CPU ms per query", fmt="{:.3f}", rotate=True)


def plot_growth(rows: pd.DataFrame, *, x: str, y: str, series: str, title: str, xlabel: str,
                ylabel: str) -> Figure:
    """Medians over rounds as lines on linear axes, with min–max error bars."""
    grouped = rows.groupby([series, x], sort=False)[y]
    medians, lows, highs = grouped.median(), grouped.min(), grouped.max()
    xs = sorted(rows[x].unique())
    lines = {name: [medians[name, v] for v in xs] for name in rows[series].unique()}
    spread = {name: ([lows[name, v] for v in xs], [highs[name, v] for v in xs]) for name in lines}
    return plot_sweep(xs, lines, title=title, xlabel=xlabel, ylabel=ylabel, spread=spread)


def say(ratio: float, threshold: float, at_or_above: str, below: str, *, what: str) -> str:
    """A conclusion chosen by a measured ratio, stating the ratio and the threshold it was held to."""
    verdict = at_or_above if ratio >= threshold else below
    relation = "≥" if ratio >= threshold else "<"
    return f"{what} = {ratio:.2f} ({relation} {threshold:g}): {verdict}"
