"""take(), timing and plotting: the small tools the notebooks lean on."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from matplotlib.patches import Rectangle

from helpers import (
    Timings,
    async_timed,
    check,
    elapsed_bar,
    is_stub,
    notebook_database,
    plot_comparison,
    plot_sweep,
    plot_timeline,
    queries_sent,
    take,
)
from helpers.tracebacks import log_exceptions_briefly, short_traceback

pytestmark = pytest.mark.no_server  # no PostgreSQL needed: `make test-unit` runs this module


class CountingSource:
    """An async iterator that counts how many items were pulled and whether it was closed."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0
        self.closed = False

    def __aiter__(self) -> CountingSource:
        return self

    async def __anext__(self) -> int:
        if self.pulled >= self.size:
            raise StopAsyncIteration
        self.pulled += 1
        return self.pulled

    async def aclose(self) -> None:
        self.closed = True


async def _collect(source, n: int) -> list:
    return [item async for item in take(source, n)]


@pytest.mark.parametrize(("size", "n", "expected"), [(10, 3, 3), (10, 10, 10), (2, 5, 2), (10, 0, 0)])
async def test_take_pulls_exactly_what_it_yields(size: int, n: int, expected: int) -> None:
    source = CountingSource(size)
    assert await _collect(source, n) == list(range(1, expected + 1))
    assert source.pulled == expected
    assert source.closed


async def test_take_closes_an_async_generator_early() -> None:
    events: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(100):
                events.append(f"yield {i}")
                yield i
        finally:
            events.append("closed")

    assert await _collect(numbers(), 2) == [0, 1]
    assert events == ["yield 0", "yield 1", "closed"]


@pytest.mark.server
async def test_take_on_a_cursor_inside_a_transaction(prefix: str) -> None:
    conn = await asyncpg.connect(await notebook_database("take"))
    try:
        async with conn.transaction():
            cursor = conn.cursor("SELECT product_id FROM product ORDER BY product_id", prefetch=2)
            products = [row["product_id"] async for row in take(cursor, 5)]
    finally:
        await conn.close()
    assert products == [1, 2, 3, 4, 5]


async def test_async_timed_prints_and_records(capsys: pytest.CaptureFixture[str]) -> None:
    timings = Timings()

    @async_timed("nap", timings=timings)
    async def nap() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert await nap() == "done"
    out = capsys.readouterr().out
    assert out.startswith("nap finished in ") and out.strip().endswith(" s") and "0x" not in out
    frame = timings.to_frame()
    assert list(frame["name"]) == ["nap"] and frame["seconds"][0] >= 0.01


async def test_timings_measure_blocks_with_extra_columns() -> None:
    timings = Timings()

    for size in (1, 2):
        async with timings.measure("pool", size=size):
            await asyncio.sleep(0)
    frame = timings.to_frame()
    assert list(frame.columns) == ["name", "seconds", "size"]
    assert list(frame["size"]) == [1, 2]


def test_plots_have_titles_labels_and_save(tmp_path) -> None:
    bars = plot_comparison({"here": {"sequential": 1.5, "concurrent": 0.5}, "the book": {"sequential": 21.8}},
                           title="10,000 queries")
    ax = bars.axes[0]
    assert ax.get_title() == "10,000 queries" and ax.get_ylabel() == "seconds"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["here", "the book"]
    lines = plot_sweep([1, 2, 4], {"asyncpg": [1, 2, 3]}, ceiling={"pgbench": [2, 3, 4]}, title="sweep",
                       xlabel="pool size", ylabel="queries per second")
    assert [line.get_label() for line in lines.axes[0].get_lines()] == ["asyncpg", "pgbench"]
    for fig, name in ((bars, "bars.png"), (lines, "lines.png")):
        fig.savefig(tmp_path / name)
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_plot_sweep_draws_the_spread_as_error_bars() -> None:
    fig = plot_sweep([1, 2, 4], {"median": [2, 3, 4]}, spread={"median": ([1, 2, 3], [3, 4, 6])}, title="sweep",
                     xlabel="pool size", ylabel="queries per second")
    bars = [segment for collection in fig.axes[0].collections for segment in collection.get_segments()]
    assert sorted((bar[:, 1].min(), bar[:, 1].max()) for bar in bars) == [(1, 3), (2, 4), (3, 6)]


async def test_queries_sent_records_what_a_transaction_block_sends(prefix: str) -> None:
    conn = await asyncpg.connect(await notebook_database("queries_sent"))
    try:
        outer = conn.transaction(isolation="repeatable_read", readonly=True)
        async with queries_sent(conn) as sent, outer, conn.transaction():  # the second one: a savepoint
            await conn.fetchval("SELECT 1")
        await conn.fetchval("SELECT 2")  # after the block: not recorded
    finally:
        await conn.close()
    assert [re.sub(r"__asyncpg_savepoint_\w+__", "sp", query) for query in sent] == [
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;", "SAVEPOINT sp;", "SELECT 1", "RELEASE SAVEPOINT sp;",
        "COMMIT;"]


def test_log_exceptions_briefly_logs_the_exception_without_frames() -> None:
    log_exceptions_briefly()
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        raise ValueError("changed my mind")
    except ValueError:
        logging.exception("it failed")
    finally:
        logging.basicConfig(force=True)
    assert stream.getvalue() == "ERROR:root: it failed\nValueError: changed my mind\n"


def test_plot_timeline_draws_one_bar_per_coroutine_per_panel(tmp_path) -> None:
    fig = plot_timeline({"sequential": {"a": (0.0, 0.3), "b": (0.3, 0.6)},
                         "concurrent": {"a": (0.0, 0.3), "b": (0.0, 0.31)}}, title="timeline")
    top, bottom = fig.axes
    assert [t.get_text() for t in top.get_yticklabels()] == ["a", "b"]
    bars = [patch for patch in bottom.patches if isinstance(patch, Rectangle)]
    assert [(bar.get_x(), round(bar.get_width(), 2)) for bar in bars] == [(0.0, 0.3), (0.0, 0.31)]
    assert top.get_title(loc="left") == "sequential" and bottom.get_xlabel() == "seconds since the start"
    fig.savefig(tmp_path / "timeline.png")


async def test_elapsed_bar_ticks_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    async with elapsed_bar("waiting", every=0.05):
        await asyncio.sleep(0.2)
    err = capsys.readouterr().err
    assert err.count("waiting: 00:00 elapsed") >= 3, err


def test_is_stub_knows_the_learner_has_not_answered() -> None:
    def empty(x): ...

    async def empty_async(x, y=1):
        """Still to do."""

    async def answered(x):
        return x

    assert all(is_stub(stub) for stub in (..., empty, empty_async))
    answers: tuple[object, ...] = (answered, None, 0, [], "...")
    assert not any(is_stub(answer) for answer in answers)


def test_check_says_not_answered_passed_or_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"answer": ...}

    def run() -> tuple[str, str]:
        test = eval("lambda: None if answer == 42 else (_ for _ in ()).throw(AssertionError(f'42, not {answer}'))",
                    namespace)
        asyncio.run(check(7, test, "answer"))
        captured = capsys.readouterr()
        return captured.out, captured.err

    assert "Exercise 7: not answered yet" in run()[0]
    namespace["answer"] = 41
    assert run()[1] == "Exercise 7 is not right yet: 42, not 41\n"
    namespace["answer"] = 42
    assert run()[0] == "Exercise 7 passed\n"


def test_short_traceback_keeps_the_learners_lines_only() -> None:
    try:
        json.loads("{")  # fails inside the json package: library frames
    except ValueError as error:
        lines = short_traceback({__file__: "Cell In[3]"}, type(error), error, error.__traceback__)
    assert re.fullmatch(r"Traceback \(your code; \d+ frame\(s\) of library code hidden, %tb shows all\):", lines[0])
    assert lines[1].startswith("  Cell In[3], line ") and lines[2] == '    json.loads("{")  # fails inside the json package: library frames'
    assert lines[3].startswith("\x1b[31m\x1b[1mJSONDecodeError\x1b[0m: Expecting property name") and len(lines) == 4
