"""Workload 4: `fetch` against a cursor, peak memory and time, each measurement in a fresh process.

Memory is how far the child process's peak resident set size rose above its size just before
the query (see memory_child.py: Linux's VmHWM, reset before the query; elsewhere ru_maxrss):
everything the rows cost, records and buffers alike, as the operating system sees it.  A
fresh process per measurement means no measurement inherits another's high-water mark.  The
ways take turns within each round, in reverse order every other round, as in `lab.rounds`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import CourseError
from .sizes import Sizes

CHILD = Path(__file__).with_name("memory_child.py")
MiB = 1024 * 1024


def ways(sizes: Sizes) -> dict[str, tuple[str, int]]:
    """Side name → (method, prefetch): fetch, then a cursor per prefetch size."""
    return {"fetch": ("fetch", 0), **{f"cursor, prefetch {p:,}": ("cursor", p) for p in sizes.prefetch}}


async def measure_once(dsn: str, method: str, rows: int, prefetch: int) -> dict[str, Any]:
    spec = json.dumps({"dsn": dsn, "method": method, "rows": rows, "prefetch": prefetch}).encode()
    # Run as a script (not `-m helpers…`): the child imports asyncpg only, not pandas or matplotlib.
    child = await asyncio.create_subprocess_exec(sys.executable, str(CHILD), stdin=PIPE, stdout=PIPE, stderr=PIPE)
    stdout, stderr = await child.communicate(spec)
    if child.returncode != 0:
        last = (stderr.decode(errors="replace").strip().splitlines() or ["(no output)"])[-1]
        raise CourseError(f"The memory measurement ({method}, {rows:,} rows) failed: {last}",
                          "check that the server is up (`python -m helpers db status`) and try again.")
    answer: dict[str, Any] = json.loads(stdout)
    return answer


async def streaming_memory(dsn: str, sizes: Sizes) -> pd.DataFrame:
    """One row per way, row count and round: `rows`, `seconds` and `extra_mib`."""
    order = list(ways(sizes).items())
    rows = []
    for number in range(sizes.memory_rounds):
        for n in sizes.memory_rows:
            for side, (method, prefetch) in (order if number % 2 == 0 else order[::-1]):
                answer = await measure_once(dsn, method, n, prefetch)
                rows.append({"workload": "memory", "method": method, "side": side, "clients": 1,
                             "round": number + 1, "rows": answer["rows"], "seconds": answer["seconds"],
                             "extra_mib": answer["extra_bytes"] / MiB})
    return pd.DataFrame(rows)
