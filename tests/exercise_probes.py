"""Every exercise, tried wrong and right, in the same kernel as the notebook's nbval run.

A pytest plugin (registered in the root conftest.py): after nbval has run an exercise's check
cell (its stored output, "Exercise N: not answered yet", compared as usual), the items added
here run in that same kernel, as a learner would:

1. a plausible wrong answer (written here), then the check again, which must say
   "Exercise N is not right yet: <the specific reason>";
2. a cleanup of what the wrong answer changed, where it changed anything (steps 1 and 2 once
   for each wrong answer: an exercise that states several rules has one for each);
3. the reference solution, taken from the notebook's folded `<details>` block, then the check
   again, which must end with "Exercise N passed";
4. the reference solution and the check a second time, as a learner who runs the cells again
   does: a correct answer must pass however often it runs.

The next exercise's cells then see the state that solution left, as they would for a learner
who solved the exercises in order.  Sharing nbval's kernel means the notebook (and notebook
10's minute-long live lab) runs once for both checks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile

from helpers.exercises import exercise_role as role
from helpers.exercises import solution_code


@dataclass(frozen=True)
class Wrong:
    """A plausible wrong answer; `expect` is part of the message the check must print."""
    code: str
    expect: str
    cleanup: str = ""  # undoes what the wrong answer changed, so the reference solution starts clean


# Notebook 02's cleanups and its wrong product_review statements (each run as the learner would).
_DROP_SKU_INDEXES = ('for row in await connection.fetch("SELECT indexname FROM pg_indexes WHERE tablename = \'sku\'"\n'
                     '                                   " AND indexname <> \'sku_pkey\'"):\n'
                     '    await connection.execute(f"DROP INDEX {row[0]}")')
_DROP_REVIEW = 'await connection.execute("DROP TABLE IF EXISTS product_review")'


def _review_table(stars: str, *, product: str = "product_id INT NOT NULL REFERENCES product (product_id)",
                  if_not_exists: str = "IF NOT EXISTS ") -> str:
    return (f'CREATE_PRODUCT_REVIEW_TABLE = """CREATE TABLE {if_not_exists}product_review (\n'
            f'    review_id SERIAL PRIMARY KEY, {product}, {stars})"""\n'
            "await connection.execute(CREATE_PRODUCT_REVIEW_TABLE)")


#: One plausible wrong answer per exercise, or a tuple of them: one for each rule the exercise states.
WRONG: dict[str, dict[int, Wrong | tuple[Wrong, ...]]] = {
    "01_connect": {
        1: (Wrong("async def major_or_none(dsn, timeout):\n"
                  "    try:\n"
                  "        connection = await asyncpg.connect(dsn, timeout=timeout)\n"
                  "    except Exception:\n"
                  "        return None\n"
                  "    try:\n"
                  "        return connection.get_server_version().major\n"
                  "    finally:\n"
                  "        await connection.close()",
                  "a wrong password gave None: the server was reached"),
            Wrong("async def major_or_none(dsn, timeout):\n"
                  "    try:\n"
                  "        connection = await asyncpg.connect(dsn)\n"
                  "    except OSError:\n"
                  "        return None\n"
                  "    try:\n"
                  "        return connection.get_server_version().major\n"
                  "    finally:\n"
                  "        await connection.close()",
                  "did not give up within 3 seconds: pass timeout= to asyncpg.connect"),
            Wrong("async def major_or_none(dsn, timeout):\n"
                  "    try:\n"
                  "        connection = await asyncpg.connect(dsn, timeout=timeout)\n"
                  "    except ConnectionRefusedError:\n"
                  "        return None\n"
                  "    try:\n"
                  "        return connection.get_server_version().major\n"
                  "    finally:\n"
                  "        await connection.close()",
                  "for a silent server asyncpg raised TimeoutError: return None for it too"),
            Wrong("async def major_or_none(dsn, timeout):\n"
                  "    try:\n"
                  "        connection = await asyncpg.connect(dsn, timeout=timeout)\n"
                  "    except OSError:\n"
                  "        return None\n"
                  "    return connection.get_server_version().major",
                  "major_or_none did not close its connection"),
            Wrong("async def major_or_none(dsn, timeout):\n"
                  "    try:\n"
                  "        connection = await asyncpg.connect(dsn, timeout=timeout)\n"
                  "    except OSError:\n"
                  "        return None\n"
                  "    try:\n"
                  "        return connection.get_server_version()\n"
                  "    finally:\n"
                  "        await connection.close()",
                  "should return the major version, an int, not ServerVersion(")),
        2: (Wrong("async def can_log_in(dsn):\n    return True", "a wrong password ('letmein') should give False"),
            Wrong("async def can_log_in(dsn):\n"
                  "    try:\n"
                  "        connection = await asyncpg.connect(dsn)\n"
                  "    except Exception:\n"
                  "        return False\n"
                  "    await connection.close()\n"
                  "    return True",
                  "a server that cannot be reached gave False"),
            Wrong("async def can_log_in(dsn):\n"
                  "    try:\n"
                  "        await asyncpg.connect(dsn)\n"
                  "    except asyncpg.InvalidPasswordError:\n"
                  "        return False\n"
                  "    return True",
                  "can_log_in did not close its connection")),
    },
    "02_schema": {
        1: (Wrong('SKU_INDEXES = ["CREATE INDEX IF NOT EXISTS sku_product_id_idx ON sku (product_id)"]\n'
                  "for statement in SKU_INDEXES:\n"
                  "    await connection.execute(statement)",
                  "no index on sku starts with product_color_id, product_size_id", _DROP_SKU_INDEXES),
            Wrong('SKU_INDEXES = [f"CREATE INDEX ON sku ({column})"\n'
                  '               for column in ("product_id", "product_size_id", "product_color_id")]\n'
                  "for statement in SKU_INDEXES:\n"
                  "    await connection.execute(statement)",
                  "created 3 more index(es): give each index a name", _DROP_SKU_INDEXES),
            Wrong('SKU_INDEXES = [f"CREATE INDEX sku_{column}_idx ON sku ({column})"\n'
                  '               for column in ("product_id", "product_size_id", "product_color_id")]\n'
                  "for statement in SKU_INDEXES:\n"
                  "    await connection.execute(statement)",
                  "write CREATE INDEX IF NOT EXISTS", _DROP_SKU_INDEXES),
            Wrong('SKU_INDEXES = ["CREATE INDEX IF NOT EXISTS sku_all_idx ON sku (product_id, product_size_id,'
                  ' product_color_id)"]\n'
                  "for statement in SKU_INDEXES:\n"
                  "    await connection.execute(statement)",
                  "no index on sku starts with product_color_id, product_size_id", _DROP_SKU_INDEXES)),
        2: (Wrong(_review_table("stars INT NOT NULL"), "add CHECK (stars BETWEEN 1 AND 5)", _DROP_REVIEW),
            Wrong(_review_table("stars INT NOT NULL CHECK (stars BETWEEN 1 AND 5)", if_not_exists=""),
                  "write CREATE TABLE IF NOT EXISTS", _DROP_REVIEW),
            Wrong(_review_table("stars INT NOT NULL CHECK (stars BETWEEN 1 AND 5)", product="product_id INT NOT NULL"),
                  "product_id must be REFERENCES product (product_id)", _DROP_REVIEW),
            Wrong(_review_table("stars INT NOT NULL CHECK (stars BETWEEN 1 AND 5)", product="product_id INT"),
                  "the NOT NULL columns review_id, product_id, stars", _DROP_REVIEW),
            Wrong(_review_table("stars INT NOT NULL") + "\n"
                  + _review_table("stars INT NOT NULL CHECK (stars BETWEEN 1 AND 5)"),
                  "an earlier attempt made it, and IF NOT EXISTS skipped yours", _DROP_REVIEW)),
        3: (Wrong("async def create_all(conn, statements):\n"
                  "    for statement in statements:\n"
                  "        await conn.execute(statement)",
                  "the failed call left the table wishlist behind"),
            Wrong("async def create_all(conn, statements):\n"
                  "    try:\n"
                  "        async with conn.transaction():\n"
                  "            for statement in statements:\n"
                  "                await conn.execute(statement)\n"
                  "    except asyncpg.PostgresError:\n"
                  "        pass",
                  "create_all should raise that error, not swallow it"),
            Wrong("async def create_all(conn, statements):\n"
                  '    await conn.execute("BEGIN")\n'
                  "    for statement in statements:\n"
                  "        await conn.execute(statement)\n"
                  '    await conn.execute("COMMIT")',
                  "after the failure create_all left a transaction open"),
            Wrong("async def create_all(conn, statements):\n"
                  '    await conn.execute("BEGIN")\n'
                  "    try:\n"
                  "        for statement in statements:\n"
                  "            await conn.execute(statement)\n"
                  "    except asyncpg.PostgresError:\n"
                  '        await conn.execute("ROLLBACK")\n'
                  "        raise",
                  "after success create_all left a transaction open")),
    },
    "03_seeding_executemany": {
        1: (Wrong("async def count_skus(conn, product_id, size_name):\n"
                  '    return await conn.fetchval("SELECT count(*) FROM sku WHERE product_id = $1", product_id)',
                  "SKUs in size Large, not"),
            Wrong("async def count_skus(conn, product_id, size_name):\n"
                  "    return await conn.fetchval(\n"
                  '        "SELECT count(*) FROM sku JOIN product_size USING (product_size_id)"\n'
                  "        f\" WHERE product_id = {product_id} AND product_size_name = '{size_name}'\")",
                  "pass product_id and size_name as $1 and $2"),
            Wrong("async def count_skus(conn, product_id, size_name):\n"
                  "    return await conn.fetchrow(\n"
                  '        "SELECT count(*) FROM sku JOIN product_size USING (product_size_id)"\n'
                  '        " WHERE product_id = $1 AND product_size_name = $2", product_id, size_name)',
                  "not a Record")),
        2: (Wrong('top_brands = pd.DataFrame([dict(r) for r in await connection.fetch(\n'
                  '    "SELECT b.brand_name, count(*) AS products FROM brand b JOIN product p USING (brand_id)"\n'
                  '    " GROUP BY b.brand_id, b.brand_name ORDER BY b.brand_id LIMIT 5")])',
                  "not the five brands with the most products"),
            Wrong('top_brands = pd.DataFrame([dict(r) for r in await connection.fetch(\n'
                  '    "SELECT b.brand_name, count(*) AS products FROM brand b JOIN product p USING (brand_id)"\n'
                  '    " GROUP BY b.brand_id, b.brand_name ORDER BY products DESC, b.brand_id DESC LIMIT 5")])',
                  "ties by brand_id"),
            Wrong('top_brands = pd.DataFrame([dict(r) for r in await connection.fetch(\n'
                  '    "SELECT b.brand_name, count(*) FROM brand b JOIN product p USING (brand_id)"\n'
                  '    " GROUP BY b.brand_id, b.brand_name ORDER BY count(*) DESC, b.brand_id LIMIT 5")])',
                  "the columns should be brand_name and products"),
            Wrong('top_brands = await connection.fetch(\n'
                  '    "SELECT b.brand_name, count(*) AS products FROM brand b JOIN product p USING (brand_id)"\n'
                  '    " GROUP BY b.brand_id, b.brand_name ORDER BY products DESC, b.brand_id LIMIT 5")',
                  "should be a pandas DataFrame")),
        3: (Wrong("async def add_brands(conn, names):\n"
                  '    await conn.executemany("INSERT INTO brand (brand_name) VALUES ($1)", [(name,) for name in names])',
                  "is in brand 2 times, not once"),
            Wrong("async def add_brands(conn, names):\n"
                  '    if not await conn.fetchval("SELECT count(*) FROM brand WHERE brand_name = ANY($1::text[])", names):\n'
                  '        await conn.executemany("INSERT INTO brand (brand_name) VALUES ($1)", [(n,) for n in names])',
                  "is in brand 0 times, not once"),
            Wrong("async def add_brands(conn, names):\n"
                  '    await conn.execute("BEGIN")\n'
                  '    await conn.executemany("INSERT INTO brand (brand_name) SELECT $1::text"\n'
                  '                           " WHERE NOT EXISTS (SELECT FROM brand WHERE brand_name = $1)",\n'
                  "                           [(n,) for n in names])\n\n\n"
                  'await add_brands(connection, ["Aurora"])',
                  "run `await connection.execute('ROLLBACK')`",
                  'await connection.execute("ROLLBACK")')),
    },
    "04_connection_pools": {
        1: (Wrong("async def sku_counts(pool, product_ids, limit):\n"
                  "    async with pool.acquire() as conn:\n"
                  '        total = await conn.fetchval("SELECT count(*) FROM sku")\n'
                  "    return {product_id: total for product_id in product_ids}", "disagrees with GROUP BY"),
            Wrong("async def sku_counts(pool, product_ids, limit):\n"  # right counts, one after another
                  "    counts = {}\n"
                  "    for product_id in product_ids:\n"
                  "        async with pool.acquire() as conn:\n"
                  '            counts[product_id] = await conn.fetchval("SELECT count(*) FROM sku WHERE product_id = $1",\n'
                  "                                                     product_id)\n"
                  "    return counts", "run the queries at the same time"),
            Wrong("async def sku_counts(pool, product_ids, limit):\n"  # concurrently, but on one borrowed connection
                  "    async with pool.acquire() as conn:\n"
                  '        counts = await asyncio.gather(*(conn.fetchval("SELECT count(*) FROM sku WHERE product_id = $1", p)\n'
                  "                                        for p in product_ids))\n"
                  "    return dict(zip(product_ids, counts))", "another operation is in progress"),
            Wrong("async def sku_counts(pool, product_ids, limit):\n"  # concurrently, but no limit
                  "    async def one(product_id):\n"
                  "        async with pool.acquire() as conn:\n"
                  '            return product_id, await conn.fetchval("SELECT count(*) FROM sku WHERE product_id = $1",\n'
                  "                                                   product_id)\n"
                  "    return dict(await asyncio.gather(*(one(p) for p in product_ids)))", "never more than 3")),
        2: (Wrong("async def seq_scanned_tables(conn, query, *args):\n"
                  '    rows = await conn.fetch("EXPLAIN (COSTS OFF) " + query, *args)\n'
                  '    return [row[0].split("Seq Scan on ")[1].split()[0] for row in rows if "Seq Scan on " in row[0]]',
                  "expected {'product'}, got ['product']"),
            Wrong("async def seq_scanned_tables(conn, query, *args):\n"  # keeps the alias
                  '    rows = await conn.fetch("EXPLAIN (COSTS OFF) " + query, *args)\n'
                  '    return {row[0].split("Seq Scan on ")[1].strip() for row in rows if "Seq Scan on " in row[0]}',
                  "an alias follows the name")),
        3: (Wrong("async def count_brands_or_none(pool, timeout):\n"
                  "    async with pool.acquire() as conn:\n"
                  '        return await conn.fetchval("SELECT count(*) FROM brand")', "should give None, not 100"),
            Wrong("async def count_brands_or_none(pool, timeout):\n"  # catches every error, not only the timeout
                  "    try:\n"
                  "        async with pool.acquire(timeout=timeout) as conn:\n"
                  '            return await conn.fetchval("SELECT count(*) FROM brand")\n'
                  "    except Exception:\n"
                  "        return None", "catch only the timeout")),
    },
    "05_transactions": {
        1: (Wrong("async def insert_brands(conn, names):\n"
                  '    return [await conn.fetchval("INSERT INTO brand VALUES (DEFAULT, $1) RETURNING brand_id", name)\n'
                  "            for name in names]", "use one transaction"),
            Wrong("async def insert_brands(conn, names):\n"
                  "    async with conn.transaction():\n"
                  '        return [await conn.execute("INSERT INTO brand VALUES (DEFAULT, $1)", name) for name in names]',
                  "should return the new brand_ids"),
            Wrong("async def insert_brands(conn, names):\n"
                  "    try:\n"
                  "        async with conn.transaction():\n"
                  '            return [await conn.fetchval("INSERT INTO brand VALUES (DEFAULT, $1) RETURNING brand_id", n)\n'
                  "                    for n in names]\n"
                  "    except asyncpg.PostgresError:\n"
                  "        return []", "should reach the caller"),
            # BEGIN by hand and no ROLLBACK on the error: the check names the one thing to do, and the
            # cleanup does just that
            Wrong("async def insert_brands(conn, names):\n"
                  '    await conn.execute("BEGIN")\n'
                  '    ids = [await conn.fetchval("INSERT INTO brand VALUES (DEFAULT, $1) RETURNING brand_id", name)\n'
                  "           for name in names]\n"
                  '    await conn.execute("COMMIT")\n'
                  "    return ids", "run `await connection.execute('ROLLBACK')`",
                  'await connection.execute("ROLLBACK")')),
        2: (Wrong("async def move_products(conn, from_brand, to_brand, expected):\n"
                  "    async with conn.transaction():\n"
                  '        status = await conn.execute("UPDATE product SET brand_id = $2 WHERE brand_id = $1", from_brand, to_brand)\n'
                  "        if int(status.split()[-1]) != expected:\n"
                  '            raise ValueError("wrong count")\n'
                  "        return status", "should return the number of moved products"),
            Wrong("async def move_products(conn, from_brand, to_brand, expected):\n"
                  '    status = await conn.execute("UPDATE product SET brand_id = $2 WHERE brand_id = $1", from_brand, to_brand)\n'
                  "    moved = int(status.split()[-1])\n"
                  "    if moved != expected:\n"
                  '        raise ValueError("wrong count")\n'
                  "    return moved", "a wrong count must roll the move back"),
            Wrong("async def move_products(conn, from_brand, to_brand, expected):\n"
                  "    async with conn.transaction():\n"
                  '        status = await conn.execute("UPDATE product SET brand_id = $2 WHERE brand_id = $1", from_brand, to_brand)\n'
                  "        return int(status.split()[-1])", "a wrong expected count must raise ValueError")),
        3: (Wrong("async def brand_report(conn):\n"
                  "    async with conn.transaction(readonly=True):\n"
                  '        return {"brands": await conn.fetchval("SELECT count(*) FROM brand"),\n'
                  '                "products": await conn.fetchval("SELECT count(*) FROM product"),\n'
                  '                "isolation": await conn.fetchval("SHOW transaction_isolation")}', "'read committed'"),
            Wrong("async def brand_report(conn):\n"
                  '    async with conn.transaction(isolation="repeatable_read"):\n'
                  '        return {"brands": await conn.fetchval("SELECT count(*) FROM brand"),\n'
                  '                "products": await conn.fetchval("SELECT count(*) FROM product"),\n'
                  '                "isolation": await conn.fetchval("SHOW transaction_isolation")}',
                  "make the transaction read-only"),
            Wrong("async def brand_report(conn):\n"
                  "    async def read(query):\n"
                  '        async with conn.transaction(isolation="repeatable_read", readonly=True):\n'
                  "            return await conn.fetchval(query)\n"
                  '    return {"brands": await read("SELECT count(*) FROM brand"),\n'
                  '            "products": await read("SELECT count(*) FROM product"),\n'
                  '            "isolation": await read("SHOW transaction_isolation")}', "in one transaction")),
    },
    "06_savepoints": {
        1: (Wrong("async def add_colours(conn, colours):\n"
                  "    inserted = []\n"
                  "    async with conn.transaction():\n"
                  "        for colour_id, name in colours:\n"
                  "            try:\n"
                  '                await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                  "            except asyncpg.UniqueViolationError:\n"
                  "                continue\n"
                  "            inserted.append(colour_id)\n"
                  "    return inserted", "your code raised InFailedSQLTransactionError"),
            Wrong("async def add_colours(conn, colours):\n"  # autocommit: no transaction, no savepoint
                  "    inserted = []\n"
                  "    for colour_id, name in colours:\n"
                  "        try:\n"
                  '            await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                  "        except asyncpg.UniqueViolationError:\n"
                  "            continue\n"
                  "        inserted.append(colour_id)\n"
                  "    return inserted", "in one transaction: your code started 0"),
            Wrong("async def add_colours(conn, colours):\n"  # a transaction per colour, no outer one
                  "    inserted = []\n"
                  "    for colour_id, name in colours:\n"
                  "        try:\n"
                  "            async with conn.transaction():\n"
                  '                await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                  "        except asyncpg.UniqueViolationError:\n"
                  "            continue\n"
                  "        inserted.append(colour_id)\n"
                  "    return inserted", "in one transaction: your code started 4"),
            Wrong("async def add_colours(conn, colours):\n"  # one transaction, ON CONFLICT instead of savepoints
                  "    inserted = []\n"
                  "    async with conn.transaction():\n"
                  "        for colour_id, name in colours:\n"
                  '            status = await conn.execute("INSERT INTO product_color VALUES ($1, $2) ON CONFLICT DO NOTHING",\n'
                  "                                        colour_id, name)\n"
                  '            if status == "INSERT 0 1":\n'
                  "                inserted.append(colour_id)\n"
                  "    return inserted", "its own savepoint")),
        2: (Wrong("async def import_colours(conn, colours, max_skipped):\n"  # gives up after the commit
                  "    inserted, skipped = [], 0\n"
                  "    async with conn.transaction():\n"
                  "        for colour_id, name in colours:\n"
                  "            try:\n"
                  "                async with conn.transaction():\n"
                  '                    await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                  "            except asyncpg.UniqueViolationError:\n"
                  "                skipped += 1\n"
                  "                continue\n"
                  "            inserted.append(colour_id)\n"
                  "    if skipped > max_skipped:\n"
                  '        raise ValueError("too many skipped")\n'
                  "    return inserted", "raise inside the outer transaction block"),
            Wrong("async def import_colours(conn, colours, max_skipped):\n"  # never gives up
                  "    inserted, skipped = [], 0\n"
                  "    async with conn.transaction():\n"
                  "        for colour_id, name in colours:\n"
                  "            try:\n"
                  "                async with conn.transaction():\n"
                  '                    await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                  "            except asyncpg.UniqueViolationError:\n"
                  "                skipped += 1\n"
                  "                continue\n"
                  "            inserted.append(colour_id)\n"
                  "    return inserted", "should raise ValueError"),
            Wrong("async def import_colours(conn, colours, max_skipped):\n"  # ON CONFLICT, no savepoints
                  "    inserted = []\n"
                  "    async with conn.transaction():\n"
                  "        for colour_id, name in colours:\n"
                  '            status = await conn.execute("INSERT INTO product_color VALUES ($1, $2) ON CONFLICT DO NOTHING",\n'
                  "                                        colour_id, name)\n"
                  '            if status == "INSERT 0 1":\n'
                  "                inserted.append(colour_id)\n"
                  "        if len(colours) - len(inserted) > max_skipped:\n"
                  '            raise ValueError("too many skipped")\n'
                  "    return inserted", "its own savepoint"),
            Wrong("async def import_colours(conn, colours, max_skipped):\n"  # a transaction per colour, no outer one
                  "    inserted, skipped = [], 0\n"
                  "    for colour_id, name in colours:\n"
                  "        try:\n"
                  "            async with conn.transaction():\n"
                  '                await conn.execute("INSERT INTO product_color VALUES ($1, $2)", colour_id, name)\n'
                  "        except asyncpg.UniqueViolationError:\n"
                  "            skipped += 1\n"
                  "            continue\n"
                  "        inserted.append(colour_id)\n"
                  "    if skipped > max_skipped:\n"
                  '        raise ValueError("too many skipped")\n'
                  "    return inserted", "in one transaction: your code started 4")),
    },
    "07_manual_transactions": {
        1: (Wrong("async def rename_brand(connection, brand_id, new_name):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  '    await connection.execute("UPDATE brand SET brand_name = $2 WHERE brand_id = $1", brand_id, new_name)\n'
                  "    await tr.commit()\n"
                  "    return True", "rename_brand should return False",
                  'await connection.execute("UPDATE brand SET brand_name = (SELECT brand_name FROM brand_before"\n'
                  '                         " WHERE brand_id = 1) WHERE brand_id = 1")'),
            Wrong("async def rename_brand(connection, brand_id, new_name):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  '    await connection.execute("UPDATE brand SET brand_name = $2 WHERE brand_id = $1", brand_id, new_name)\n'
                  "    if await connection.fetchval(\n"
                  '            "SELECT count(*) FROM brand WHERE brand_name = $1 AND brand_id <> $2", new_name, brand_id):\n'
                  "        return False\n"
                  "    await tr.commit()\n"
                  "    return True", "a refused rename left the transaction open"),
            Wrong("async def rename_brand(connection, brand_id, new_name):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  "    try:\n"
                  '        await connection.execute("UPDATE brand SET brand_name = $2 WHERE brand_id = $1", brand_id, new_name)\n'
                  "        duplicates = await connection.fetchval(\n"
                  '            "SELECT count(*) FROM brand WHERE brand_name = $1 AND brand_id <> $2", new_name, brand_id)\n'
                  "    except asyncpg.PostgresError:\n"
                  "        await tr.rollback()\n"
                  "        return False\n"
                  "    if duplicates:\n"
                  "        await tr.rollback()\n"
                  "        return False\n"
                  "    await tr.commit()\n"
                  "    return True", "the NotNullViolationError must reach the caller"),
            Wrong("async def rename_brand(connection, brand_id, new_name):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  '    await connection.execute("UPDATE brand SET brand_name = $2 WHERE brand_id = $1", brand_id, new_name)\n'
                  "    if await connection.fetchval(\n"
                  '            "SELECT count(*) FROM brand WHERE brand_name = $1 AND brand_id <> $2", new_name, brand_id):\n'
                  "        await tr.rollback()\n"
                  "        return False\n"
                  "    await tr.commit()\n"
                  "    return True", "a failed rename left the transaction open: roll back on any exception")),
        2: (Wrong("async def run_in_transaction(connection, work):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  "    try:\n"
                  "        result = await work(connection)\n"
                  "    except Exception:\n"
                  "        await tr.rollback()\n"
                  "        raise\n"
                  "    await tr.commit()\n"
                  "    return result", "roll back on BaseException"),
            Wrong("async def run_in_transaction(connection, work):\n"  # the chapter's listing 5.12 shape
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  "    try:\n"
                  "        result = await work(connection)\n"
                  "    except asyncpg.PostgresError:\n"
                  "        await tr.rollback()\n"
                  "        raise\n"
                  "    else:\n"
                  "        await tr.commit()\n"
                  "        return result", "roll back on any exception, not only PostgresError"),
            Wrong("async def run_in_transaction(connection, work):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  "    try:\n"
                  "        result = await work(connection)\n"
                  "    except BaseException:\n"
                  "        await tr.rollback()\n"
                  "        return None\n"
                  "    await tr.commit()\n"
                  "    return result", "the RuntimeError must reach the caller"),
            Wrong("async def run_in_transaction(connection, work):\n"
                  "    async with connection.transaction():\n"
                  "        await work(connection)", "should return what work returned ('ok'), not None")),
    },
    "08_async_generators": {
        1: (Wrong("async def countdown(start, delay):\n"
                  "    for value in range(start, -1, -1):\n"
                  "        await asyncio.sleep(delay)\n"
                  "        yield value\n\n"
                  "odd = [value async for value in countdown(9, 0.01) if value % 2 == 1]",
                  "should yield 3, 2, 1, not [3, 2, 1, 0]"),
            Wrong("async def countdown(start, delay):\n"
                  "    for value in range(start, 0, -1):\n"
                  "        yield value\n\n"
                  "odd = [value async for value in countdown(9, 0.01) if value % 2 == 1]",
                  "await asyncio.sleep(delay) before each value"),
            Wrong("async def countdown(start, delay):\n"
                  "    for value in range(start, 0, -1):\n"
                  "        await asyncio.sleep(delay)\n"
                  "        yield value\n\n"
                  "odd = [value async for value in countdown(9, 0.01)]",
                  "odd should be [9, 7, 5, 3, 1]")),
        2: (Wrong("async def batched(source, size):\n"
                  "    batch = []\n"
                  "    async for item in source:\n"
                  "        batch.append(item)\n"
                  "        if len(batch) == size:\n"
                  "            yield batch\n"
                  "            batch = []", "not [[1, 2, 3], [4, 5, 6]]"),
            Wrong("async def batched(source, size):\n"
                  "    batch = []\n"
                  "    async for item in source:\n"
                  "        if len(batch) == size:\n"
                  "            yield batch\n"
                  "            batch = []\n"
                  "        batch.append(item)\n"
                  "    if batch:\n"
                  "        yield batch", "but batched pulled 7 items from its source"),
            Wrong("async def batched(source, size):\n"
                  "    batch = []\n"
                  "    async for item in source:\n"
                  "        batch.append(item)\n"
                  "        if len(batch) == size:\n"
                  "            yield batch\n"
                  "            batch = []\n"
                  "    yield batch", "not [[1, 2], [3, 4], []]")),
        3: (Wrong("async def ids_of_brand(rows, brand_id):\n"
                  '    return [row["product_id"] async for row in rows]', "brand 7 has"),
            Wrong("async def ids_of_brand(rows, brand_id):\n"
                  '    return [row["product_id"] for row in await connection.fetch(\n'
                  '        "SELECT product_id FROM product WHERE brand_id = $1 ORDER BY product_id", brand_id)]',
                  "from the rows it is given"),
            Wrong("async def ids_of_brand(rows, brand_id):\n"
                  '    return sorted([row["product_id"] async for row in rows if row["brand_id"] == brand_id])',
                  "are [3, 1, 4] in that order, not [1, 3, 4]")),
    },
    "09_cursors": {
        1: (Wrong("async def every_nth(connection, query, n):\n"
                  "    rows, offset = [], n - 1\n"
                  '    while (row := await connection.fetchrow(f"{query} LIMIT 1 OFFSET {offset}")) is not None:\n'
                  "        rows.append(row)\n"
                  "        offset += n\n"
                  "    return rows", "use one cursor and no other query"),
            Wrong("async def every_nth(connection, query, n):\n"
                  "    async with connection.transaction():\n"
                  "        rows = [row async for row in connection.cursor(query)]\n"
                  "    return rows[n - 1::n]", "read 1000 rows to return 10: skip the others with forward"),
            Wrong("async def every_nth(connection, query, n):\n"
                  "    async with connection.transaction():\n"
                  "        cursor = await connection.cursor(query)\n"
                  "        rows = []\n"
                  "        while await cursor.forward(n) == n and (row := await cursor.fetchrow()) is not None:\n"
                  "            rows.append(row)\n"
                  "    return rows", "should give the rows [100, 200, 300, 400] ..., not [101, 202"),
            Wrong("async def every_nth(connection, query, n):\n"
                  "    await connection.transaction().start()\n"
                  "    cursor = await connection.cursor(query)\n"
                  "    rows = []\n"
                  "    while await cursor.forward(n - 1) == n - 1 and (row := await cursor.fetchrow()) is not None:\n"
                  "        rows.append(row)\n"
                  "    return rows", "every_nth left a transaction open")),
        2: (Wrong("async def stream_batches(connection, query, batch_size):\n"
                  "    async with connection.transaction():\n"
                  "        cursor = await connection.cursor(query)\n"
                  "        while True:\n"
                  "            batch = await cursor.fetch(batch_size)\n"
                  "            yield batch\n"
                  "            if not batch:\n"
                  "                return", "not [300, 300, 300, 100, 0]"),
            Wrong("async def stream_batches(connection, query, batch_size):\n"
                  "    async with connection.transaction():\n"
                  "        rows = await connection.fetch(query)\n"
                  "        for start in range(0, len(rows), batch_size):\n"
                  "            yield rows[start:start + batch_size]", "not connection.fetch"),
            Wrong("async def stream_batches(connection, query, batch_size):\n"
                  "    async with connection.transaction():\n"
                  "        cursor = await connection.cursor(query)\n"
                  "        rows = await cursor.fetch(1_000_000)\n"
                  "        for start in range(0, len(rows), batch_size):\n"
                  "            yield rows[start:start + batch_size]", "but 1000 rows were read: fetch one batch at a time"),
            Wrong("async def stream_batches(connection, query, batch_size):\n"
                  "    tr = connection.transaction()\n"
                  "    await tr.start()\n"
                  "    cursor = await connection.cursor(query)\n"
                  "    while batch := await cursor.fetch(batch_size):\n"
                  "        yield batch\n"
                  "    await tr.commit()", "closing the generator early left its transaction open")),
    },
    "10_performance_lab": {
        1: (Wrong("def stops_rising(summary, threshold=0.10):\n"
                  "    return summary['median'].idxmax()\n"
                  "\n"
                  "\n"
                  "def cpu_bound(summary, cores):\n"
                  "    return cores * 1000 / (summary['client_ms'] + summary['server_ms'])",
                  "first stops rising at 'c'"),
            Wrong("def stops_rising(summary, threshold=0.10):\n"  # the threshold argument ignored
                  "    medians = summary['median']\n"
                  "    for before, after in itertools.pairwise(medians.index):\n"
                  "        if medians[after] < 1.10 * medians[before]:\n"
                  "            return after\n"
                  "    return None\n"
                  "\n"
                  "\n"
                  "def cpu_bound(summary, cores):\n"
                  "    return cores * 1000 / (summary['client_ms'] + summary['server_ms'])",
                  "with threshold=0.6"),
            Wrong("def stops_rising(summary, threshold=0.10):\n"  # the server's CPU left out of the bound
                  "    medians = summary['median']\n"
                  "    for before, after in itertools.pairwise(medians.index):\n"
                  "        if medians[after] < (1 + threshold) * medians[before]:\n"
                  "            return after\n"
                  "    return None\n"
                  "\n"
                  "\n"
                  "def cpu_bound(summary, cores):\n"
                  "    return cores * 1000 / summary['client_ms']",
                  "the client's and the server's CPU together")),
        2: (Wrong("async def reset_timeout(connection):\n"
                  "    await connection.execute(connection.get_reset_query())",
                  "application_name was reset too"),
            Wrong("async def reset_timeout(connection):\n"  # resets nothing
                  '    await connection.execute("SELECT 1")',
                  "the next user still sees statement_timeout"),
            Wrong("async def reset_timeout(connection):\n"  # right, and one statement too many
                  '    await connection.execute("RESET statement_timeout")\n'
                  '    await connection.execute("SELECT pg_advisory_unlock_all()")',
                  "the reset should send one statement, but sent 2")),
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
    "07_manual_transactions": 'await connection.execute("CREATE TEMP TABLE brand_before AS SELECT * FROM brand")',
}


@dataclass(frozen=True)
class Turn:
    """One probe: code run after a check cell, and what its output must show."""
    label: str
    code: str
    must_show: tuple[str, ...] = ()
    must_not_show: tuple[str, ...] = ()
    must_end_with: str = ""


def wrong_answers(stem: str, number: int) -> tuple[Wrong, ...]:
    entry = WRONG[stem][number]
    return entry if isinstance(entry, tuple) else (entry,)


def turns(stem: str, number: int, check_source: str, solution: str) -> list[Turn]:
    probes = []
    for index, wrong in enumerate(wrong_answers(stem, number), start=1):
        which = "" if index == 1 else f" ({index})"
        probes += [Turn(f"a wrong answer{which}", wrong.code),
                   Turn(f"the check after the wrong answer{which}", check_source,
                        must_show=(f"Exercise {number} is not right yet", wrong.expect),
                        must_not_show=("passed", "AssertionError"))]
        if wrong.cleanup:
            probes.append(Turn(f"cleanup after the wrong answer{which}", wrong.cleanup))
    passes = f"Exercise {number} passed"
    return [*probes, Turn("the reference solution", solution),
            Turn("the check after the solution", check_source, must_end_with=passes),
            Turn("the reference solution again", solution),
            Turn("the check after the solution again", check_source, must_end_with=passes)]


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
    solutions = {role(c)[0]: solution_code(c.source) for c in file.nb.cells if role(c) and role(c)[1] == "solution"}
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
