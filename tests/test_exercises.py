"""Every exercise waits for the learner, accepts its reference solution and rejects a wrong answer.

Each notebook runs once, in a real kernel against a real database (under a prefix of this
module's own), as a learner would use it: Run All with the stubs, and after each exercise's
check three more turns of the same check: after a plausible wrong answer (written here), after
the reference solution (taken from the notebook's folded `<details>` block), and so on to the
next exercise, whose cells then see the state the solution left.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import drop_course_databases

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.stem: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
NOT_ANSWERED = "not answered yet"


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
}

#: Snapshots a cleanup above needs, taken before the first exercise runs.
BEFORE_EXERCISES = {
    "05_transactions": 'await connection.execute("CREATE TEMP TABLE product_before AS SELECT product_id FROM product'
                       ' WHERE brand_id = 6")',
    "07_manual_transactions": 'await connection.execute("CREATE TEMP TABLE brand_before AS SELECT * FROM brand")',
}

CASES = [(stem, number) for stem, wrongs in WRONG.items() for number in wrongs]

#: Notebook 10's quick lab takes a minute and runs under nbval and in JupyterLab already; here a
#: recorded quick run (tests/data) stands in for it, so the exercises get real figures and plots.
RECORDED_LAB = ROOT / "tests" / "data" / "bench_quick.json"
STAND_INS = {
    ("10_performance_lab", '"bench", "--quick"'): f"""\
import json, types
from helpers.maintainers.bench import plots, report
recorded = report.results_of(json.loads(open({str(RECORDED_LAB)!r}, encoding="utf-8").read()))
figures = report.derived(recorded)
report.write_json(report.document(recorded, figures, plots.save(recorded, figures, LAB)), LAB / "bench.json")
process, lab_seconds = types.SimpleNamespace(returncode=0), 0.0
table_text = report.render(report.tables(recorded, figures), report.header(recorded)).encode()
""",
}


def _stand_in(stem: str, cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for (notebook, marker), source in STAND_INS.items():
        if notebook == stem and cell.cell_type == "code" and marker in cell.source:
            return nbformat.v4.new_code_cell(source)
    return cell


def _role(cell: nbformat.NotebookNode) -> tuple[int, str] | None:
    course = cell.metadata.get("course", {})
    return (course["exercise"], course["role"]) if "exercise" in course else None


def solution_code(cell: nbformat.NotebookNode) -> str:
    """The reference solution: the python block inside the folded <details> of a markdown cell."""
    found = re.search(r"```python\n(.*?)\n```", cell.source, re.S)
    assert found, cell.source[:200]
    return found.group(1)


def _probe(number: int, turn: str, source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata={"probe": {"exercise": number, "turn": turn}})


def probed_notebook(stem: str) -> nbformat.NotebookNode:
    """The notebook with, after each check: wrong answer, check, cleanup, solution, check."""
    notebook = nbformat.read(NOTEBOOKS[stem], as_version=4)
    roles = {_role(cell): cell for cell in notebook.cells if _role(cell)}
    cells = []
    for cell in notebook.cells:
        role = _role(cell)
        if role and role == (1, "answer") and stem in BEFORE_EXERCISES:
            cells.append(_probe(0, "snapshot", BEFORE_EXERCISES[stem]))
        cells.append(_stand_in(stem, cell))
        if role and role[1] == "check":
            number = role[0]
            wrong = WRONG[stem][number]
            cells += [_probe(number, "wrong answer", wrong.code), _probe(number, "wrong", cell.source)]
            if wrong.cleanup:
                cells.append(_probe(number, "cleanup", wrong.cleanup))
            cells += [_probe(number, "solution", solution_code(roles[(number, "solution")])),
                      _probe(number, "right", cell.source)]
    notebook.cells = cells
    return notebook


@pytest.fixture(scope="module", autouse=True)
def own_databases() -> object:
    """The kernels inherit a prefix of this module's own: a learner's databases stay untouched."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_DB_PREFIX", f"ex{os.getpid()}")
        yield
        asyncio.run(drop_course_databases())


@cache
def executed(stem: str) -> nbformat.NotebookNode:
    notebook = probed_notebook(stem)
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(NOTEBOOKS[stem].parent)}}).execute()
    return notebook


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"ERROR {output.ename}: {output.evalue}")
    return "".join(parts)


def _cell(notebook: nbformat.NotebookNode, number: int, turn: str) -> nbformat.NotebookNode:
    if turn == "stub":
        return next(c for c in notebook.cells if _role(c) == (number, "check"))
    return next(c for c in notebook.cells if c.metadata.get("probe") == {"exercise": number, "turn": turn})


def test_every_exercise_has_a_wrong_answer_here() -> None:
    for stem, path in NOTEBOOKS.items():
        checks = [r[0] for c in nbformat.read(path, as_version=4).cells if (r := _role(c)) and r[1] == "check"]
        assert checks == sorted(WRONG[stem]), f"{stem}: exercises {checks}, wrong answers for {sorted(WRONG[stem])}"


@pytest.mark.parametrize(("stem", "number"), CASES, ids=[f"{s[:2]}-ex{n}" for s, n in CASES])
def test_unanswered_after_run_all(stem: str, number: int) -> None:
    text = _text(_cell(executed(stem), number, "stub"))
    assert NOT_ANSWERED in text and "ERROR" not in text and "passed" not in text, text


@pytest.mark.parametrize(("stem", "number"), CASES, ids=[f"{s[:2]}-ex{n}" for s, n in CASES])
def test_a_wrong_answer_is_told_what_is_wrong(stem: str, number: int) -> None:
    notebook = executed(stem)
    for turn in ("wrong answer", "cleanup"):
        if turn == "wrong answer" or WRONG[stem][number].cleanup:
            assert "ERROR" not in _text(_cell(notebook, number, turn)), _text(_cell(notebook, number, turn))
    text = _text(_cell(notebook, number, "wrong"))
    assert f"Exercise {number} is not right yet" in text, text
    assert WRONG[stem][number].expect in text, text
    assert "ERROR" not in text and "passed" not in text and "AssertionError" not in text, text


@pytest.mark.parametrize(("stem", "number"), CASES, ids=[f"{s[:2]}-ex{n}" for s, n in CASES])
def test_the_reference_solution_passes(stem: str, number: int) -> None:
    notebook = executed(stem)
    assert "ERROR" not in _text(_cell(notebook, number, "solution")), _text(_cell(notebook, number, "solution"))
    text = _text(_cell(notebook, number, "right"))
    assert text.splitlines()[-1] == f"Exercise {number} passed", text


def test_every_stand_in_replaces_a_cell() -> None:
    """A renamed cell would silently bring the minute-long lab back into the exercise tests."""
    for notebook, marker in STAND_INS:
        cells = nbformat.read(NOTEBOOKS[notebook], as_version=4).cells
        assert sum(c.cell_type == "code" and marker in c.source for c in cells) == 1, (notebook, marker)
