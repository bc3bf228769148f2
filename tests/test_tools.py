"""take(), timing and plotting: the small tools the notebooks lean on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from helpers import Timings, async_timed, notebook_database, plot_comparison, plot_sweep, take


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
def test_take_pulls_exactly_what_it_yields(size: int, n: int, expected: int) -> None:
    source = CountingSource(size)
    assert asyncio.run(_collect(source, n)) == list(range(1, expected + 1))
    assert source.pulled == expected
    assert source.closed


def test_take_closes_an_async_generator_early() -> None:
    events: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(100):
                events.append(f"yield {i}")
                yield i
        finally:
            events.append("closed")

    assert asyncio.run(_collect(numbers(), 2)) == [0, 1]
    assert events == ["yield 0", "yield 1", "closed"]


def test_take_on_a_cursor_inside_a_transaction(prefix: str) -> None:
    async def scenario() -> list[int]:
        conn = await asyncpg.connect(await notebook_database("take"))
        try:
            async with conn.transaction():
                cursor = conn.cursor("SELECT product_id FROM product ORDER BY product_id", prefetch=2)
                return [row["product_id"] async for row in take(cursor, 5)]
        finally:
            await conn.close()

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5]


def test_async_timed_prints_and_records(capsys: pytest.CaptureFixture[str]) -> None:
    timings = Timings()

    @async_timed("nap", timings=timings)
    async def nap() -> str:
        await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(nap()) == "done"
    out = capsys.readouterr().out
    assert out.startswith("nap finished in ") and out.strip().endswith(" s") and "0x" not in out
    frame = timings.to_frame()
    assert list(frame["name"]) == ["nap"] and frame["seconds"][0] >= 0.01


def test_timings_measure_blocks_with_extra_columns() -> None:
    timings = Timings()

    async def scenario() -> None:
        for size in (1, 2):
            async with timings.measure("pool", size=size):
                await asyncio.sleep(0)

    asyncio.run(scenario())
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
