"""`python -m helpers bench --smoke`: it runs, fills every figure of its JSON and writes its plots.

The quick lab itself runs in notebook 10 (under nbval and in JupyterLab); this smallest size
proves the same code paths in seconds.

No speed is asserted anywhere: the goals are reported (met or not) by the benchmark itself.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread

from helpers.connection import admin
from helpers.databases import database_name, drop_database
from helpers.maintainers.bench.plots import PLOTS
from helpers.maintainers.bench.workloads import split

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WORKLOADS = {"concurrent_queries", "pool_sweep", "seeding", "streaming_memory", "index", "pool_costs"}
#: Figures that are None (or empty) by design: pgbench's backends are not ours to measure, a step that
#: ran has no skip reason, workload 1 (before the index) has no index statement, and at the smoke size
#: pgbench runs as many queries as the side beside it (-t), so there are no -T seconds to record.
NOT_MEASURED = re.compile(r"pgbench\w*\.server_(cpu_ms_per_query|busy)$|\.skipped$"
                          r"|concurrent_queries\.(index_sql|create_index_seconds)$|\.pgbench_seconds(\.\w+)?$")
SERVER_SIDE = re.compile(r"server_(cpu|busy|share)|limit")


def empty_figures(value: Any, path: str = "") -> Iterator[str]:
    """The path of every None, NaN or empty list in a JSON document."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == []:
        yield path or "<root>"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from empty_figures(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from empty_figures(item, f"{path}[{index}]")


@pytest.fixture
def lab_database() -> Iterator[str]:
    """A lab database name of this test's own; the lab and its `_seed` twin are dropped afterwards.

    The lab clones the session's template, which conftest verifies at the start and checks is
    unchanged at the end: cloning only reads it.  (A throw-away COURSE_DB_PREFIX would cost a
    template build of its own, a third of this test's time.)
    """
    name = f"bench_t{os.getpid()}_{os.urandom(2).hex()}"
    yield name
    asyncio.run(_drop(database_name(name), database_name(f"{name}_seed")))


async def _drop(*names: str) -> None:
    async with admin() as conn:
        for name in names:
            await drop_database(conn, name)


@pytest.mark.slow
def test_bench_fills_every_figure_and_writes_the_plots(tmp_path: Path, lab_database: str) -> None:
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "bench", "--smoke", "--database", lab_database,
         "--json", str(out / "bench.json"), "--plots", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads((out / "bench.json").read_text(encoding="utf-8"))

    env = document["environment"]
    for key in ("python", "asyncpg", "postgresql", "pgbench", "cpu_count"):
        assert env[key], key
    assert document["mode"] == "smoke"
    assert set(document["workloads"]) == WORKLOADS

    psycopg_installed = env["psycopg"] is not None
    uvloop_installed = env["uvloop"] is not None
    # Server CPU is read from the embedded server's backends only: through DATABASE_URL the server
    # may be a container or another machine, whose pids mean nothing here (measure.server_is_local).
    embedded = not os.environ.get("DATABASE_URL")
    missing = [path for path in empty_figures(document) if not NOT_MEASURED.search(path)
               and (embedded or not SERVER_SIDE.search(path))
               and (psycopg_installed or "psycopg" not in path) and (uvloop_installed or "uvloop" not in path)]
    assert missing == []
    if not psycopg_installed:
        assert document["psycopg"]["status"] == "psycopg not installed: skipped"

    # workload 7: every step measured (uvloop's only where it is installed), beside pgbench, with both CPUs
    for method, data in document["workloads"]["pool_costs"]["methods"].items():
        for step in data["steps"]:
            if step["skipped"]:
                assert step["step"]["loop"] == "uvloop" and not uvloop_installed, step
                continue
            summary = step["summary"]
            assert summary["queries"] == document["sizes"][f"costs_{method}_queries"], step["step"]["key"]
            assert summary["client_cpu_ms_per_query"] > 0, step
            assert summary["server_cpu_ms_per_query"] > 0 if embedded else summary["server_cpu_ms_per_query"] is None
            assert step["vs_pgbench"] == summary["qps"] / data["pgbench"]["qps"]

    # every goal is reported with its figure, met or not
    assert [g["id"] for g in document["goals"]] == [
        "fetch_vs_pgbench_1", "fetch_vs_pgbench_6", "copy_vs_psql", "cursor_50_memory", "cursor_1000_memory",
        "pool_costs_fetch", "pool_costs_fetchrow"]  # a smoke run has no duration goal
    for goal in document["goals"]:
        assert isinstance(goal["measured"], float) and isinstance(goal["met"], bool), goal

    # every section of the table has as many cells per row as columns, and is printed
    for section in document["tables"]:
        assert section["title"] in result.stdout
        assert all(len(row) == len(section["columns"]) for row in section["rows"]), section["title"]

    # pgbench ran beside every side (at the smoke size: as many queries, shared among its clients, per round)
    sizes = document["sizes"]
    assert sizes["pgbench_same_queries"] is True

    def pgbench_queries(queries: int, rounds: int, clients: int) -> int:
        return sum(clients * math.ceil(n / clients) for n in split(queries, rounds))

    for workload in ("concurrent_queries", "index"):
        data = document["workloads"][workload]
        for method, sides in data["methods"].items():
            queries, rounds = data["queries_per_side"][method], data["rounds"]
            assert sides["sides"]["pgbench_1"]["queries"] == queries, (workload, method)
            assert sides["sides"]["pgbench_pool"]["queries"] == pgbench_queries(queries, rounds, sizes["pool_size"])
            assert sides["pgbench_seconds"] == {"pgbench_1": [], "pgbench_pool": []}, "no -T at the smoke size"
    for method, data in document["workloads"]["pool_costs"]["methods"].items():
        expected = pgbench_queries(sizes[f"costs_{method}_queries"], sizes["costs_rounds"], sizes["pool_size"])
        assert data["pgbench"]["queries"] == expected and data["pgbench_seconds"] == [], method

    # every plot is written, and is a PNG image with something drawn on it
    assert set(document["plots"]) == set(PLOTS)
    assert {path.name for path in out.iterdir()} == {*PLOTS, "bench.json"}
    for name in PLOTS:
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
        pixels = imread(out / name)
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 400 and pixels.std() > 0, name
