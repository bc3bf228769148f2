"""helpers.lab, notebook 10's scaffolding: rounds, rows, summaries, verdicts, plots (no server needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

from helpers import lab

pytestmark = pytest.mark.no_server  # no PostgreSQL needed: `make test-unit` runs this module


async def test_rounds_take_turns_and_reverse_every_other_round() -> None:
    calls: list[str] = []

    def side(name: str, per_second: int) -> lab.Side:
        async def run(seconds: float) -> int:
            calls.append(name)
            await asyncio.sleep(seconds)
            return int(per_second * seconds)
        return run

    async def own_clock(seconds: float) -> lab.Done:
        calls.append("c")
        return lab.Done(10, seconds=2.0, client_cpu=0.5)

    rows = await lab.rounds({"a": side("a", 100), "b": side("b", 300), "c": own_clock},
                            workload="w", seconds=0.02, count=3, clients=6)
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert list(rows.columns) == ["workload", "side", "clients", "round", "queries", "seconds", "client_cpu",
                                  "server_cpu"]
    assert len(rows) == 9 and set(rows["round"]) == {1, 2, 3} and set(rows["clients"]) == {6}
    own = rows[rows["side"] == "c"]
    assert list(own["seconds"]) == [2.0] * 3 and (own["client_cpu"] >= 0.5).all()  # its clock and CPU kept
    timed = rows[rows["side"] == "a"]
    assert (timed["seconds"] >= 0.02).all() and rows["server_cpu"].isna().all()


async def test_rounds_with_a_key_fill_one_column_per_part_of_a_name() -> None:
    """The bench names its sides (method, side, clients): each part is a column of its own."""
    async def run(seconds: float) -> int:
        return 5

    rows = await lab.rounds({("fetch", "asyncpg", 1): run, ("fetch", "pgbench", 6): run}, workload="w",
                            seconds=0.0, count=2, key=("method", "side", "clients"))
    assert list(rows.columns[:5]) == ["workload", "method", "side", "clients", "round"]
    assert rows[["side", "clients"]].values.tolist() == [["asyncpg", 1], ["pgbench", 6], ["pgbench", 6],
                                                         ["asyncpg", 1]]
    table = lab.summary(rows.assign(seconds=1.0), by=["method", "side", "clients"])
    assert table.loc[("fetch", "pgbench", 6), "median"] == 5.0


async def test_rounds_read_the_window_at_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The browser test's copy of notebook 10 shortens lab.WINDOW and lab.ROUNDS after import."""
    monkeypatch.setattr(lab, "WINDOW", 0.01)
    monkeypatch.setattr(lab, "ROUNDS", 2)
    seen: list[float] = []

    async def run(seconds: float) -> int:
        seen.append(seconds)
        return 1

    await lab.rounds({"a": run}, workload="w")
    assert seen == [0.01, 0.01]


def test_summary_is_the_median_with_its_spread_and_cpu_per_query() -> None:
    rows = pd.DataFrame({"side": ["a"] * 3 + ["b"] * 3, "queries": [100, 200, 300, 50, 50, 50],
                         "seconds": [1.0] * 6, "client_cpu": [0.1, 0.2, 0.3, 0.5, 0.5, 0.5],
                         "server_cpu": [None] * 6})
    table = lab.summary(rows)
    assert list(table.index) == ["a", "b"]  # in the order measured
    assert table.loc["a", ["median", "min", "max"]].tolist() == [200.0, 100.0, 300.0]
    assert table.loc["a", "spread"] == pytest.approx(1.0) and table.loc["b", "spread"] == 0
    assert table.loc["a", "client_ms"] == pytest.approx(1.0) and table.loc["b", "client_ms"] == pytest.approx(10.0)
    assert table["server_ms"].isna().all() and table.loc["a", "client_busy"] == pytest.approx(0.2)


def test_say_chooses_the_sentence_by_the_threshold_and_states_both() -> None:
    assert lab.say(1.25, 1.1, "gain", "no gain", what="b / a") == "b / a = 1.25 (≥ 1.1): gain"
    assert lab.say(1.05, 1.1, "gain", "no gain", what="b / a") == "b / a = 1.05 (< 1.1): no gain"


def test_plots_draw_error_bars_from_min_to_max() -> None:
    table = pd.DataFrame({"median": [10.0, 20.0], "min": [8.0, 15.0], "max": [11.0, 30.0],
                          "client_ms": [1.0, 0.5], "server_ms": [0.2, float("nan")]}, index=["a", "b"])
    ax = lab.plot_rates(table, title="rates").axes[0]
    caps = sorted(round(y, 1) for line in ax.lines for y in line.get_ydata())  # the error bars' caps
    assert caps == [8.0, 11.0, 15.0, 30.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    cpu = lab.plot_cpu(table, title="cpu").axes[0]
    assert [t.get_text() for t in cpu.get_legend().get_texts()] == ["client", "server"]
    rows = pd.DataFrame({"way": ["x"] * 4, "rows": [1, 1, 2, 2], "peak": [1.0, 3.0, 2.0, 4.0]})
    growth = lab.plot_growth(rows, x="rows", y="peak", series="way", title="t", xlabel="rows", ylabel="MiB")
    assert growth.axes[0].get_xscale() == "linear" and growth.axes[0].get_yscale() == "linear"


def test_libpq_moves_the_password_out_of_the_arguments() -> None:
    dsn, env = lab.libpq("postgresql://alice:s%40cret@127.0.0.1:5433/db?sslmode=disable")
    assert dsn == "postgresql://alice@127.0.0.1:5433/db?sslmode=disable" and env["PGPASSWORD"] == "s@cret"
    unchanged, _ = lab.libpq("postgresql://postgres@/db?host=%2Ftmp")
    assert unchanged == "postgresql://postgres@/db?host=%2Ftmp"


def test_output_dir_is_the_learners_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("COURSE_DB_PREFIX", "alice")
    folder = lab.output_dir()
    assert folder == tmp_path / "asyncpg-course" / "alice" / "10_performance_lab" and folder.is_dir()
