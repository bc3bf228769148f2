"""pgbench, PostgreSQL's own load generator in C: the ceiling a Python client is measured against.

It runs the same SQL as a prepared statement (`-M prepared`) from a custom script (`-f`),
without its vacuum of the standard tables (`-n`), beside a measured side: for as long as the
side took, in whole seconds (`-T`, at least one), or, for the smoke size, for as many queries
as the side ran (`-t`), since there a second per pgbench run would be most of the lab's time.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
from pathlib import Path

from ...dsn import for_child
from ...errors import CourseError
from ...server import binary
from .measure import Measurement, children_cpu
from .queries import pgbench_script

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)


class PgbenchError(CourseError):
    """pgbench could not run or reported no rate."""


def version() -> str:
    return subprocess.run([binary("pgbench"), "--version"], capture_output=True, text=True, check=True).stdout.strip()


def seconds_for(duration: float) -> int:
    """pgbench's -T takes whole seconds: the nearest one, at least 1."""
    return max(1, round(duration)) if math.isfinite(duration) else 1


class Pgbench:
    """One script file per method, written once into a temporary directory."""

    def __init__(self, dsn: str, product_id: int, *, same_queries: bool = False) -> None:
        self.dsn, self.same_queries = dsn, same_queries
        self._dir = tempfile.TemporaryDirectory(prefix="course-bench-")
        self.scripts = {}
        for method in ("fetchrow", "fetch"):
            path = Path(self._dir.name) / f"{method}.sql"
            path.write_text(pgbench_script(method, product_id))
            self.scripts[method] = path

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> Pgbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def beside(self, method: str, clients: int, *, queries: int, seconds: float,
               spans: list[int] | None = None) -> Measurement:
        """pgbench beside a side that ran `queries` in `seconds`: as long (its -T is appended to `spans`),
        or, made with same_queries, as many queries (-t: a share per client, rounded up)."""
        if self.same_queries:
            return self.run(method, clients, transactions=math.ceil(queries / clients))
        span = seconds_for(seconds)
        if spans is not None:
            spans.append(span)
        return self.run(method, clients, seconds=span)

    def run(self, method: str, clients: int, *, seconds: int | None = None,
            transactions: int | None = None) -> Measurement:
        """Run `clients` connections (one thread each) for `seconds` (-T) or `transactions` each (-t);
        the rate excludes connecting."""
        length = ["-T", str(seconds)] if seconds is not None else ["-t", str(transactions)]
        # pgbench accepts a connection string (URI) where the database name goes; the password
        # goes by environment, since every user can read a command line.
        dsn, secret = for_child(self.dsn)
        args = [binary("pgbench"), "-n", "-M", "prepared", "-f", str(self.scripts[method]),
                "-c", str(clients), "-j", str(clients), *length, dsn]
        before = children_cpu()
        result = subprocess.run(args, capture_output=True, text=True, timeout=(seconds or 0) + 60,
                                env={**os.environ, **secret})
        cpu = children_cpu() - before
        tps, processed = _TPS.search(result.stdout), _PROCESSED.search(result.stdout)
        if result.returncode != 0 or tps is None or processed is None:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise PgbenchError(f"pgbench failed (exit code {result.returncode}): {' / '.join(tail)}",
                               "check that the server is up (`python -m helpers db status`) and try again.")
        queries = int(processed.group(1))
        rate = float(tps.group(1))
        return Measurement(queries=queries, seconds=queries / rate, client_cpu=cpu)
