"""Every exercise, tried wrong and right, in the same kernel as the notebook's nbval run.

A pytest plugin (registered in the root conftest.py): after nbval has run an exercise's check
cell (its stored output, "Exercise N: not answered yet", compared as usual), the items added
here run in that same kernel, as a learner would:

1. a plausible wrong answer (written here), then the check again, which must say
   "Exercise N is not right yet: <the specific reason>";
2. a cleanup of what the wrong answer changed, where it changed anything;
3. the reference solution, taken from the notebook's folded `<details>` block, then the check
   again, which must end with "Exercise N passed".

The next exercise's cells then see the state that solution left, as they would for a learner
who solved the exercises in order.  Sharing nbval's kernel means the notebook (and notebook
10's minute-long live lab) runs once for both checks.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile


@dataclass(frozen=True)
class Wrong:
    """A plausible wrong answer; `expect` is part of the message the check must print."""
    code: str
    expect: str
    cleanup: str = ""  # undoes what the wrong answer changed, so the reference solution starts clean


WRONG: dict[str, dict[int, Wrong]] = {
    "01_connect": {
        1: Wrong("my_connection = await asyncpg.connect(DSN)\nmy_version = my_connection.get_server_version()",
                 "close it in the finally block", "await my_connection.close()"),
        2: Wrong("async def can_log_in(password):\n    return True", "a wrong password ('letmein') should give False"),
    },
    "02_schema": {
        1: Wrong("sku_references = [('product_id', 'product')]", "sku has three foreign keys"),
        2: Wrong('await connection.execute("""CREATE TABLE IF NOT EXISTS product_review (\n'
                 '    review_id SERIAL PRIMARY KEY, product_id INT NOT NULL REFERENCES product (product_id),\n'
                 '    stars INT NOT NULL)""")\nreview_statuses = ["CREATE TABLE", "CREATE TABLE"]',
                 "CHECK", 'await connection.execute("DROP TABLE product_review")'),
        3: Wrong('one_size_statuses = [await connection.execute("INSERT INTO product_size VALUES (6, \'One size\')")]',
                 "expected ['INSERT 0 1', 'INSERT 0 0']",
                 'await connection.execute("DELETE FROM product_size WHERE product_size_id = 6")'),
    },
    "03_seeding_executemany": {
        1: Wrong('large_skus = await connection.fetchval("SELECT count(*) FROM sku WHERE product_id = $1", 1)',
                 "SKUs in size Large, not"),
        2: Wrong('top_brands = pd.DataFrame([dict(r) for r in await connection.fetch(\n'
                 '    "SELECT b.brand_name, count(*) AS products FROM brand b JOIN product p USING (brand_id)"\n'
                 '    " GROUP BY b.brand_id, b.brand_name ORDER BY b.brand_id LIMIT 5")])',
                 "not the five brands with the most products"),
        3: Wrong('new_brands = ["Aurora", "Borealis", "Cascade"]', "should be a list of dicts"),
    },
    "04_connection_pools": {
        1: Wrong("async def sku_counts(pool, product_ids):\n"
                 "    async with pool.acquire() as conn:\n"
                 '        total = await conn.fetchval("SELECT count(*) FROM sku")\n'
                 "    return {product_id: total for product_id in product_ids}", "disagrees with GROUP BY"),
        2: Wrong("async def seq_scanned_tables(conn, query, *args):\n"
                 '    rows = await conn.fetch("EXPLAIN (COSTS OFF) " + query, *args)\n'
                 '    return [row[0].split("Seq Scan on ")[1].split()[0] for row in rows if "Seq Scan on " in row[0]]',
                 "expected {'product'}, got ['product']"),
        3: Wrong("async def count_brands_or_none(pool, timeout):\n"
                 "    async with pool.acquire() as conn:\n"
                 '        return await conn.fetchval("SELECT count(*) FROM brand")', "should give None, not 100"),
    },
    "05_transactions": {
        1: Wrong("async def insert_brands(conn, names):\n"
                 '    return [await conn.fetchval("INSERT INTO brand VALUES (DEFAULT, $1) RETURNING brand_id", name)\n'
                 "            for name in names]", "use one transaction",
                 "await connection.execute(\"DELETE FROM brand WHERE brand_name IN ('alpha', 'beta', 'gamma', 'delta')\")"),
        2: Wrong("async def move_products(conn, from_brand, to_brand, expected):\n"
                 "    async with conn.transaction():\n"
                 '        status = await conn.execute("UPDATE product SET brand_id = $2 WHERE brand_id = $1", from_brand, to_brand)\n'
                 "        if int(status.split()[-1]) != expected:\n"
                 '            raise ValueError("wrong count")\n'
                 "        return status", "should return the number of moved products",
                 'await connection.execute("UPDATE product SET brand_id = 5 WHERE brand_id = 6"\n'
                 '                         " AND product_id NOT IN (SELECT product_id FROM product_before)")'),
        3: Wrong("async def brand_report(conn):\n"
                 "    async with conn.transaction(readonly=True):\n"
                 '        return {"brands": await conn.fetchval("SELECT count(*) FROM brand"),\n'
                 '                "products": await conn.fetchval("SELECT count(*) FROM product"),\n'
                 '                "isolation": await conn.fetchval("SHOW transaction_isolation")}', "'read committed'"),
    },
    "06_savepoints": {
        1: Wrong("async def add_colours(conn, colours):\n"
                 "    inserted = []\n"
                 "    async with conn.transaction():\n"
                 "        for colour_id, name in colours:\n"
                 "            try:\n"
                 '                await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                 "            except asyncpg.UniqueViolationError:\n"
                 "                continue\n"
                 "            inserted.append(colour_id)\n"
                 "    return inserted", "your code raised InFailedSQLTransactionError"),
        2: Wrong("async def insert_brand_pair(conn, first, second):\n"
                 '    await conn.execute("BEGIN")\n'
                 '    await conn.execute("INSERT INTO brand VALUES (DEFAULT, $1)", first)\n'
                 '    await conn.execute("SAVEPOINT second_brand")\n'
                 "    try:\n"
                 '        await conn.execute("INSERT INTO brand VALUES (DEFAULT, $1)", second)\n'
                 "    except asyncpg.PostgresError:\n"
                 '        await conn.execute("ROLLBACK TO SAVEPOINT second_brand")\n'
                 "        kept = False\n"
                 "    else:\n"
                 '        await conn.execute("RELEASE SAVEPOINT second_brand")\n'
                 "        kept = True\n"
                 '    await conn.execute("COMMIT")\n'
                 "    return kept", "a cancelled call must not leave a transaction open",
                 "if connection.is_in_transaction():\n"
                 '    await connection.execute("ROLLBACK")\n'
                 "await connection.execute(\"DELETE FROM brand WHERE brand_name LIKE 'pair%'\")"),
    },
    "07_manual_transactions": {
        1: Wrong("async def rename_brand(connection, brand_id, new_name):\n"
                 "    tr = connection.transaction()\n"
                 "    await tr.start()\n"
                 '    await connection.execute("UPDATE brand SET brand_name = $2 WHERE brand_id = $1", brand_id, new_name)\n'
                 "    await tr.commit()\n"
                 "    return True", "rename_brand should return False",
                 'await connection.execute("UPDATE brand SET brand_name = (SELECT brand_name FROM brand_before"\n'
                 '                         " WHERE brand_id = 1) WHERE brand_id = 1")'),
        2: Wrong("async def run_in_transaction(connection, work):\n"
                 "    tr = connection.transaction()\n"
                 "    await tr.start()\n"
                 "    try:\n"
                 "        result = await work(connection)\n"
                 "    except Exception:\n"
                 "        await tr.rollback()\n"
                 "        raise\n"
                 "    await tr.commit()\n"
                 "    return result", "roll back on BaseException",
                 # asyncpg still counts the wrong answer's transaction as started: a new connection
                 "await connection.close()\n"
                 "connection = await asyncpg.connect(DSN)\n"
                 "await connection.execute(\"DELETE FROM brand WHERE brand_name IN ('quartz', 'onyx', 'opal')\")"),
    },
    "08_async_generators": {
        1: Wrong("async def countdown(start, delay):\n"
                 "    for value in range(start, -1, -1):\n"
                 "        await asyncio.sleep(delay)\n"
                 "        yield value\n\n"
                 "odd = [value async for value in countdown(9, 0.01) if value % 2 == 1]",
                 "should yield 3, 2, 1, not [3, 2, 1, 0]"),
        2: Wrong("async def batched(source, size):\n"
                 "    batch = []\n"
                 "    async for item in source:\n"
                 "        batch.append(item)\n"
                 "        if len(batch) == size:\n"
                 "            yield batch\n"
                 "            batch = []", "not [[1, 2, 3], [4, 5, 6]]"),
        3: Wrong('brand_7_ids = [row["product_id"] async for row in products(connection, page_size=100)]',
                 "brand 7 has"),
    },
    "09_cursors": {
        1: Wrong("async with connection.transaction():\n"
                 "    cursor = await connection.cursor(QUERY)\n"
                 "    await cursor.forward(901)\n"
                 "    slice_rows = await cursor.fetch(10)", "expected products 901 to 910"),
        2: Wrong("async def stream_batches(connection, query, batch_size):\n"
                 "    async with connection.transaction():\n"
                 "        cursor = await connection.cursor(query)\n"
                 "        while True:\n"
                 "            batch = await cursor.fetch(batch_size)\n"
                 "            yield batch\n"
                 "            if not batch:\n"
                 "                return", "not [300, 300, 300, 100, 0]"),
    },
    "10_performance_lab": {
        1: Wrong('fetch_sides = lab["workloads"]["concurrent_queries"]["methods"]["fetch"]["sides"]\n'
                 'speedup = fetch_sides["asyncpg_sequential"]["qps"] / fetch_sides["asyncpg_pool"]["qps"]\n'
                 'share_of_ceiling = fetch_sides["asyncpg_pool"]["qps"] / fetch_sides["pgbench_pool"]["qps"]',
                 "speedup is the pool's q/s divided by the sequential q/s"),
        2: Wrong("async def product_rows(pool, n, concurrently):\n"
                 "    start = time.perf_counter()\n"
                 "    rows = [await pool.fetchrow(PRODUCT_QUERY, 100) for _ in range(n)]\n"
                 "    return rows, time.perf_counter() - start", "but only 1 connection was in use at a time"),
        3: Wrong('plan = "\\n".join(row["QUERY PLAN"] for row in await conn.fetch("EXPLAIN " + PRODUCT_QUERY, 100))',
                 "there is no index named sku_product_id_idx yet"),
    },
    "11_production": {
        1: Wrong("async def init_connection(conn):\n"
                 '    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")',
                 "read the jsonb column as str, not dict"),
        2: Wrong("async def count_within(conn, seconds, timeout):\n"
                 '    return await conn.fetchval("SELECT count(*) FROM product, pg_sleep($1)", seconds)',
                 "waited for the slow query instead of giving up"),
        3: Wrong("async def connect_behind_pooler(dsn):\n"
                 "    return await asyncpg.connect(dsn)", "set statement_cache_size=0"),
    },
}

#: Snapshots a cleanup above needs, taken before the first exercise runs.
BEFORE_EXERCISES = {
    "05_transactions": 'await connection.execute("CREATE TEMP TABLE product_before AS SELECT product_id FROM product'
                       ' WHERE brand_id = 6")',
    "07_manual_transactions": 'await connection.execute("CREATE TEMP TABLE brand_before AS SELECT * FROM brand")',
}


Role = tuple[int, str]


def role(cell: nbformat.NotebookNode) -> Role | None:
    """(exercise number, "answer" | "check" | "solution") from the cell's `course` metadata."""
    course = cell.metadata.get("course", {})
    return (course["exercise"], course["role"]) if "exercise" in course else None


def solution_code(cell: nbformat.NotebookNode) -> str:
    """The reference solution: the python block inside the folded <details> of a markdown cell."""
    found = re.search(r"```python\n(.*?)\n```", cell.source, re.S)
    if not found:
        raise ValueError(f"no python block in the solution cell: {cell.source[:200]!r}")
    return found.group(1)


@dataclass(frozen=True)
class Turn:
    """One probe: code run after a check cell, and what its output must show."""
    label: str
    code: str
    must_show: tuple[str, ...] = ()
    must_not_show: tuple[str, ...] = ()
    must_end_with: str = ""


def turns(stem: str, number: int, check_source: str, solution: str) -> list[Turn]:
    wrong = WRONG[stem][number]
    probes = [Turn("a wrong answer", wrong.code),
              Turn("the check after the wrong answer", check_source,
                   must_show=(f"Exercise {number} is not right yet", wrong.expect),
                   must_not_show=("passed", "AssertionError"))]
    if wrong.cleanup:
        probes.append(Turn("cleanup after the wrong answer", wrong.cleanup))
    return [*probes, Turn("the reference solution", solution),
            Turn("the check after the solution", check_source, must_end_with=f"Exercise {number} passed")]


class Probe(IPyNbCell):
    """A cell nbval did not collect, run in its kernel; it fails on an error or a wrong message."""

    def __init__(self, name: str, parent: IPyNbFile, cell_num: int, turn: Turn) -> None:
        cell = nbformat.v4.new_code_cell(turn.code)  # never run, no outputs: nbval compares nothing
        super().__init__(name, parent, cell_num, cell, defaultdict(bool, check=False))
        self.turn = turn

    def runtest(self) -> None:
        super().runtest()  # raises, with the traceback, if the code raised
        text = "".join(out.get("text", "") for out in self.test_outputs if out.output_type == "stream")
        for expected in self.turn.must_show:
            assert expected in text, f"expected {expected!r} in the output:\n{text}"
        for unexpected in self.turn.must_not_show:
            assert unexpected not in text, f"did not expect {unexpected!r} in the output:\n{text}"
        if self.turn.must_end_with:
            last = text.strip().splitlines()[-1:] or [""]
            assert last[0] == self.turn.must_end_with, f"expected {self.turn.must_end_with!r}, got:\n{text}"

    def repr_failure(self, excinfo: Any) -> Any:
        if isinstance(excinfo.value, AssertionError):
            return f"Exercise probe '{self.name}' after cell {self.cell_num}:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.path.name}::{self.name}"


def probes_for(file: IPyNbFile, cells: list[IPyNbCell]) -> dict[int, list[Probe]]:
    """The probes to run after each of the file's collected cells, by that cell's index."""
    stem = Path(file.path).stem
    solutions = {role(c)[0]: solution_code(c) for c in file.nb.cells if role(c) and role(c)[1] == "solution"}
    after: dict[int, list[Probe]] = {}
    for index, item in enumerate(cells):
        match role(item.cell):
            case (1, "answer") if stem in BEFORE_EXERCISES and index > 0:
                snapshot = Turn("a snapshot the cleanups need", BEFORE_EXERCISES[stem])
                after.setdefault(index - 1, []).append(
                    Probe.from_parent(file, name="Exercises: a snapshot", cell_num=item.cell_num, turn=snapshot))
            case (number, "check"):
                after[index] = [Probe.from_parent(file, name=f"Exercise {number}: {turn.label}",
                                                  cell_num=item.cell_num, turn=turn)
                                for turn in turns(stem, number, item.cell.source, solutions[number])]
    return after


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Insert each course notebook's probes right after the cells they follow."""
    by_file: dict[IPyNbFile, list[IPyNbCell]] = {}
    for item in items:
        if isinstance(item, IPyNbCell) and Path(item.path).stem in WRONG:
            by_file.setdefault(item.parent, []).append(item)
    extra = {}
    for file, cells in by_file.items():
        extra.update({id(cells[i]): probes for i, probes in probes_for(file, cells).items()})
    if extra:
        items[:] = [new for item in items for new in (item, *extra.get(id(item), ()))]
