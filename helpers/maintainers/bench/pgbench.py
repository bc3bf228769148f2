"""pgbench, PostgreSQL's own load generator in C: the ceiling a Python client is measured against.

It runs the product query as a prepared statement (`-M prepared`) from a custom script (`-f`),
without its vacuum of the standard tables (`-n`), one thread per client (`-j` = `-c`), for a
window of whole seconds (`-T`).  Its rate is read from its own report ("tps … without initial
connection time": a transaction is one query here), so connecting is not counted.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from ...dsn import for_child
from ...errors import CourseError
from ...lab import Done, Side
from ...server import binary
from .queries import METHODS, pgbench_script

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)

#: Transactions per client in place of a window shorter than a second (the smoke size), which -T
#: cannot express.
SMOKE_TRANSACTIONS = 20


class PgbenchError(CourseError):
    """pgbench could not run or reported no rate."""


async def version() -> str:
    process = await asyncio.create_subprocess_exec(binary("pgbench"), "--version", stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    return out.decode().strip()


class Pgbench:
    """One script file per method, written once into a temporary directory."""

    def __init__(self, dsn: str, product_id: int) -> None:
        # pgbench accepts a connection string where the database name goes; the password goes by
        # environment, since every user of the machine can read a command line.
        self.dsn, self.secret = for_child(dsn)
        self._dir = tempfile.TemporaryDirectory(prefix="course-bench-")
        self.scripts = {}
        for method in METHODS:
            path = Path(self._dir.name) / f"{method}.sql"
            path.write_text(pgbench_script(method, product_id))
            self.scripts[method] = path

    def __enter__(self) -> Pgbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()

    def side(self, method: str, clients: int) -> Side:
        async def run(seconds: float) -> Done:
            if seconds >= 1:
                return await self.run(method, clients, seconds=round(seconds))
            return await self.run(method, clients, transactions=SMOKE_TRANSACTIONS)
        return run

    async def run(self, method: str, clients: int, *, seconds: int | None = None,
                  transactions: int | None = None) -> Done:
        """`clients` connections for `seconds` (-T) or `transactions` each (-t)."""
        length = ["-T", str(seconds)] if seconds is not None else ["-t", str(transactions)]
        process = await asyncio.create_subprocess_exec(
            binary("pgbench"), "-n", "-M", "prepared", "-f", str(self.scripts[method]),
            "-c", str(clients), "-j", str(clients), *length, self.dsn,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **self.secret})
        out_bytes, err_bytes = await process.communicate()
        out, err = out_bytes.decode(errors="replace"), err_bytes.decode(errors="replace")
        tps, processed = _TPS.search(out), _PROCESSED.search(out)
        if process.returncode != 0 or tps is None or processed is None:
            tail = (err or out).strip().splitlines()[-3:]
            raise PgbenchError(f"pgbench failed (exit code {process.returncode}): {' / '.join(tail)}",
                               "check that the server is up (`python -m helpers db status`) and try again.")
        queries = int(processed[1])
        return Done(queries, seconds=queries / float(tps[1]))
