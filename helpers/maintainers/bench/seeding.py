"""Workload 3: the chapter's dataset loaded into empty tables three ways.

`executemany` (the chapter's way), `copy_records_to_table` (asyncpg's COPY), and psql's
`COPY … FROM STDIN` of the same rows as CSV (the ceiling: a C client streaming text).  Each
load goes into a fresh empty database with the schema created, inside one transaction, and
is timed from connecting to disconnecting (psql: from starting the process to its exit).
The rounds take the three loaders in turn, in a rotating order.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ...connection import connect
from ...databases import fingerprint, notebook_database
from ...dsn import for_child
from ...errors import CourseError
from ...schema import create_schema
from ...seed import Dataset, generate_dataset, load_with_copy, load_with_executemany
from ...server import binary
from .results import Seeding
from .sizes import Sizes

LOADERS = ("executemany", "copy_records_to_table", "psql_copy_csv")


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


async def _load_asyncpg(dsn: str, dataset: Dataset, loader: Callable[..., Awaitable[int]]) -> float:
    start = time.perf_counter()
    conn = await connect(dsn)
    try:
        await loader(conn, dataset)
    finally:
        await conn.close()
    return time.perf_counter() - start


def _load_psql(dsn: str, script: bytes) -> float:
    dsn, secret = for_child(dsn)  # the password by environment, not on the public command line
    args = [binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    start = time.perf_counter()
    result = subprocess.run(args, input=script, capture_output=True, timeout=600, env={**os.environ, **secret})
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise CourseError(f"psql could not load the rows: {result.stderr.decode(errors='replace').strip()[:300]}",
                          "check that the server is up (`python -m helpers db status`) and try again.")
    return elapsed


async def seeding(name: str, sizes: Sizes, *, progress: Callable[[str], None]) -> Seeding:
    dataset = generate_dataset(brands=sizes.seed_brands, products=sizes.seed_products, skus=sizes.seed_skus)
    rows = sum(len(table_rows) for _, _, table_rows in dataset.rows())
    script = copy_script(dataset)
    seconds: dict[str, list[float]] = {loader: [] for loader in LOADERS}
    fingerprints: dict[str, Any] = {}
    for index in range(sizes.seed_rounds):
        shift = index % len(LOADERS)
        for loader in LOADERS[shift:] + LOADERS[:shift]:
            dsn = await notebook_database(name, seeded=False)
            conn = await connect(dsn)
            try:
                await create_schema(conn)
            finally:
                await conn.close()
            if loader == "executemany":
                elapsed = await _load_asyncpg(dsn, dataset, load_with_executemany)
            elif loader == "copy_records_to_table":
                elapsed = await _load_asyncpg(dsn, dataset, load_with_copy)
            else:
                elapsed = _load_psql(dsn, script)
            seconds[loader].append(elapsed)
            if loader not in fingerprints:
                conn = await connect(dsn)
                try:
                    fingerprints[loader] = await fingerprint(conn)
                finally:
                    await conn.close()
        progress(f"seeding round {index + 1}/{sizes.seed_rounds} done")
    best = {loader: min(values) for loader, values in seconds.items()}
    psql = best["psql_copy_csv"]
    return Seeding(
        rows=rows,
        tables={table: len(table_rows) for table, _, table_rows in dataset.rows()},
        rounds=sizes.seed_rounds,
        statistic="fastest of the rounds",
        timed="connect, load in one transaction, disconnect (psql: process start to exit)",
        round_seconds=seconds,
        seconds=best,
        rows_per_second={loader: rows / value for loader, value in best.items()},
        time_vs_psql={loader: value / psql for loader, value in best.items()},
        same_data=len({repr(sorted(fp.items())) for fp in fingerprints.values()}) == 1,
    )
