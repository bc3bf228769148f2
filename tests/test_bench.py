"""`python -m helpers bench --smoke`: it runs every workload, records a full set of rows, and
reports them (tables, goals, plots), live and again from its JSON (`--from`).

Notebook 10 is the learner's lab (under nbval); the full bench is `make bench`.  No speed is
asserted anywhere: the goals are reported (met or not) by the bench itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from matplotlib.image import imread

from helpers import lab
from helpers.connection import admin, connected
from helpers.databases import database_name, drop_database, notebook_database
from helpers.maintainers.bench import report
from helpers.maintainers.bench.pgbench import Pgbench
from helpers.maintainers.bench.queries import METHODS
from helpers.maintainers.bench.record import SCHEMA_VERSION, read_json
from helpers.maintainers.bench.run import COLUMNS
from helpers.maintainers.bench.sizes import SMOKE
from helpers.maintainers.bench.workloads import steps

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def lab_database() -> Iterator[str]:
    """A bench database name of this test's own; it and its seeding twins are dropped afterwards.

    The bench clones the session's template, which conftest verifies at the start and checks is
    unchanged at the end: cloning only reads it.
    """
    name = f"bench_t{os.getpid()}_{os.urandom(2).hex()}"
    yield name
    asyncio.run(_drop(name, *(f"{name}_seed{i}" for i in range(3))))


async def _drop(*names: str) -> None:
    async with admin() as conn:
        for name in names:
            await drop_database(conn, database_name(name))


def expected_sides(environment: dict[str, object]) -> set[tuple[str, str, str, int]]:
    """(workload, method, side, clients) of every throughput measurement the smoke run makes."""
    pool = SMOKE.pool_size
    drivers = ["asyncpg", "pgbench", *(["psycopg"] if environment["psycopg"] else [])]
    concurrent = {(w, m, d, n) for w, ms in (("concurrent", METHODS), ("index", ("fetch",)))
                  for m in ms for d in drivers for n in (1, pool)}
    sweep = {("pool sweep", m, d, n) for m in METHODS for d in ("asyncpg", "pgbench") for n in SMOKE.pool_sizes}
    costs = {("pool costs", m, s, pool) for m in METHODS
             for s in [*steps(pool, uvloop=environment["uvloop"] is not None), "pgbench"]}
    return concurrent | sweep | costs


@pytest.mark.slow
def test_the_smoke_bench_records_every_row_and_reports_them(tmp_path: Path, lab_database: str) -> None:
    out = tmp_path / "bench"
    live = subprocess.run([sys.executable, "-m", "helpers", "bench", "--smoke", "--database", lab_database,
                           "--json", str(out / "bench.json"), "--plots", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert live.returncode == 0, live.stderr[-3000:]
    document = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert document["schema_version"] == SCHEMA_VERSION and document["mode"] == "smoke"
    env = document["environment"]
    for key in ("python", "asyncpg", "postgresql", "pgbench", "cpu_count", "connection"):
        assert env[key], key
    run = read_json(out / "bench.json")
    rows = run.rows
    assert list(rows.columns) == COLUMNS

    throughput = rows[rows["workload"].isin(["concurrent", "index", "pool sweep", "pool costs"])]
    measured = {(r.workload, r.method, r.side, int(r.clients)) for r in throughput.itertuples()}
    assert measured == expected_sides(env)
    assert len(throughput) == len(measured) * SMOKE.rounds
    assert (throughput["queries"] > 0).all() and (throughput["seconds"] > 0).all()
    assert (throughput["client_cpu"] > 0).all()
    # Server CPU is read from the embedded server's processes only: through DATABASE_URL the
    # server may be a container or another machine.  (pgbench's smoke-sized runs may stay below
    # one clock tick of the reaped backends' CPU: test_pgbench_backends_count_as_server_cpu.)
    if os.environ.get("DATABASE_URL"):
        assert throughput["server_cpu"].isna().all()
    else:
        assert (throughput["server_cpu"] >= 0).all()
        assert (throughput.loc[throughput["side"] != "pgbench", "server_cpu"] > 0).all()

    seeding = rows[rows["workload"] == "seeding"]
    loaded = SMOKE.seed_brands + SMOKE.seed_products + SMOKE.seed_skus
    assert len(seeding) == 3 * SMOKE.seed_rounds and (seeding["rows"] == loaded).all()
    memory = rows[rows["workload"] == "memory"]
    assert len(memory) == (1 + len(SMOKE.prefetch)) * len(SMOKE.memory_rows) * SMOKE.memory_rounds
    assert (memory["rows"] == memory["rows"].astype(int)).all() and (memory["extra_mib"] >= 0).all()
    largest = memory[(memory["side"] == "fetch") & (memory["rows"] == max(SMOKE.memory_rows))]
    assert (largest["extra_mib"] > 0).all(), "fetch's extra memory must show: the cursors are compared with it"

    assert "Goals (reported, not asserted)" in live.stdout and "NaN" not in live.stdout
    assert report.render(run) + "\n" == live.stdout, "a recorded run (--from) reports the same tables and goals"

    assert set(document["plots"]) == set(report.PLOTS)
    assert {path.name for path in out.iterdir()} == {*report.PLOTS, "bench.json"}
    for name in report.PLOTS:
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
        pixels = imread(out / name)
        assert pixels.shape[0] >= 200 and pixels.shape[1] >= 400 and pixels.std() > 0, name


def _schedstat(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[0]) / 1e9
    except OSError:
        return None


async def _watch_new_backends(postmaster: psutil.Process, known: set[int], seen: dict[int, float],
                              stop: asyncio.Event) -> None:
    """Until `stop`: every 2 ms, the CPU seconds of each new child of the postmaster, as last read
    before it exited (a lower bound of what it spent)."""
    while not stop.is_set():
        for child in postmaster.children():
            if child.pid not in known and (spent := _schedstat(child.pid)) is not None:
                seen[child.pid] = max(spent, seen.get(child.pid, 0.0))
        await asyncio.sleep(0.002)


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists() or bool(os.environ.get("DATABASE_URL")),
                    reason="needs Linux's schedstat and the embedded server, whose processes are ours to read")
async def test_pgbench_backends_count_as_server_cpu(lab_database: str) -> None:
    """pgbench's backends live only while it runs: the meter must count exited children (the
    postmaster's children_user/system), not only live ones.  The backends' CPU, watched from
    outside while they lived, is the lower bound it must reach."""
    dsn = await notebook_database(lab_database)
    async with connected(dsn) as conn:
        meter = lab.server_cpu_meter(conn.get_server_pid())
        postmaster = psutil.Process(conn.get_server_pid()).parent()
    assert meter is not None and postmaster is not None
    seen: dict[int, float] = {}
    stop = asyncio.Event()
    with Pgbench(dsn, 100) as pgbench:
        before = meter()
        watcher = asyncio.create_task(_watch_new_backends(postmaster, {c.pid for c in postmaster.children()}, seen,
                                                          stop))
        done = await pgbench.run("fetchrow", 2, transactions=2_000)
        used = meter() - before
        stop.set()
        await watcher
    assert done.queries == 4_000 and len(seen) >= 2, seen
    lower_bound = sum(seen.values()) - 0.02  # reaped children are counted in 10 ms clock ticks
    assert used >= lower_bound, f"the meter read {used:.3f} s; pgbench's backends alone spent {lower_bound:.3f} s"
