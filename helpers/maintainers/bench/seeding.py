"""Workload 3: the chapter's dataset loaded into empty tables three ways, in interleaved rounds.

`executemany` (the chapter's way), `copy_records_to_table` (asyncpg's COPY), and psql's
`COPY … FROM STDIN` of the same rows as CSV (the ceiling: a C client streaming text).  Each
loader has a database of its own with the schema created; before each load its tables are
emptied (`TRUNCATE … RESTART IDENTITY`) and the server writes out its dirty pages
(`CHECKPOINT`, where the role may), neither timed; the load is timed from connecting to
disconnecting (psql: from starting the process to its exit), inside one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import time
from collections.abc import Callable

import asyncpg
import pandas as pd

from ... import lab
from ...connection import connected
from ...databases import notebook_database
from ...dsn import for_child
from ...errors import CourseError
from ...schema import create_schema
from ...seed import Dataset, generate_dataset, load_with_copy, load_with_executemany
from ...server import binary
from .sizes import Sizes

LOADERS = {"executemany": load_with_executemany, "copy_records_to_table": load_with_copy}
PSQL = "psql COPY (CSV)"


def copy_script(dataset: Dataset) -> bytes:
    """One psql script: a transaction with a `COPY … FROM STDIN (FORMAT csv)` and its rows per table."""
    out = io.StringIO()
    out.write("BEGIN;\n")
    for table, columns, rows in dataset.rows():
        out.write(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv);\n")
        csv.writer(out, lineterminator="\n").writerows(rows)
        out.write("\\.\n")
    out.write("COMMIT;\n")
    return out.getvalue().encode()


async def _empty(dsn: str, dataset: Dataset) -> None:
    """Empty the tables the dataset fills (the schema's own colours and sizes stay), then write
    out what the previous load left dirty, so that no load pays for the one before it."""
    tables = ", ".join(table for table, _, _ in dataset.rows())  # our own table names, never input
    async with connected(dsn) as conn:
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        # CHECKPOINT needs a superuser or pg_checkpoint (PostgreSQL 15+); without, the loads share the writes
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")


def _asyncpg_side(dsn: str, dataset: Dataset, load: Callable[..., object]) -> lab.Side:
    async def run(_window: float) -> lab.Done:
        await _empty(dsn, dataset)
        start = time.perf_counter()
        async with connected(dsn) as conn:
            loaded = await load(conn, dataset)  # type: ignore[misc]
        return lab.Done(loaded, seconds=time.perf_counter() - start)
    return run


def _psql_side(dsn: str, dataset: Dataset) -> lab.Side:
    script = copy_script(dataset)
    rows = sum(len(table_rows) for _, _, table_rows in dataset.rows())
    url, secret = for_child(dsn)  # the password by environment, not on the public command line

    async def run(_window: float) -> lab.Done:
        await _empty(dsn, dataset)
        start = time.perf_counter()
        psql = await asyncio.create_subprocess_exec(
            binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, env={**os.environ, **secret},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await psql.communicate(script)
        seconds = time.perf_counter() - start
        if psql.returncode != 0:
            raise CourseError(f"psql could not load the rows: {err.decode(errors='replace').strip()[:300]}",
                              "check that the server is up (`python -m helpers db status`) and try again.")
        return lab.Done(rows, seconds=seconds)
    return run


async def seeding(name: str, sizes: Sizes, server_cpu: Callable[[], float] | None) -> pd.DataFrame:
    """One row per loader and round; `rows` holds the rows loaded (`queries` is left empty)."""
    dataset = generate_dataset(brands=sizes.seed_brands, products=sizes.seed_products, skus=sizes.seed_skus)
    sides: dict[str, lab.Side] = {}
    for index, side in enumerate([*LOADERS, PSQL]):
        dsn = await notebook_database(f"{name}_seed{index}", seeded=False)
        async with connected(dsn) as conn:
            await create_schema(conn)
        sides[side] = _psql_side(dsn, dataset) if side == PSQL else _asyncpg_side(dsn, dataset, LOADERS[side])
    rows = await lab.rounds(sides, workload="seeding", count=sizes.seed_rounds, server_cpu=server_cpu, clients=1)
    return rows.assign(method="load", rows=rows["queries"], queries=float("nan"))
