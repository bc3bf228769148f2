"""Workload 4: `fetch` against a cursor, peak memory and time, each measurement in a fresh process.

Memory is how far the child process's peak resident set size rose above its size just before
the query (see memory_child.py: Linux's VmHWM, reset before the query; elsewhere ru_maxrss):
everything the rows cost, records and buffers alike, as the operating system sees it.  A
fresh process per measurement means no measurement inherits another's high-water mark.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from asyncio.subprocess import PIPE
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import CourseError
from .memory_child import QUERY
from .results import StreamingMemory
from .sizes import Sizes

CHILD = Path(__file__).with_name("memory_child.py")
MiB = 1024 * 1024


def variants(sizes: Sizes) -> list[tuple[str, str, int]]:
    """(key, method, prefetch): fetch, then a cursor per prefetch size."""
    return [("fetch", "fetch", 0)] + [(f"cursor_{p}", "cursor", p) for p in sizes.prefetch]


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


async def streaming_memory(dsn: str, sizes: Sizes, *, progress: Callable[[str], None]) -> StreamingMemory:
    keys = variants(sizes)
    samples: dict[str, dict[int, list[dict[str, Any]]]] = {key: {n: [] for n in sizes.memory_rows}
                                                           for key, _, _ in keys}
    for rows in sizes.memory_rows:
        for index in range(sizes.memory_rounds):
            shift = index % len(keys)
            for key, method, prefetch in keys[shift:] + keys[:shift]:
                samples[key][rows].append(await measure_once(dsn, method, rows, prefetch))
        progress(f"memory: {rows:,} rows done")

    def median(key: str, figure: str) -> list[float]:
        return [statistics.median(s[figure] for s in samples[key][n]) for n in sizes.memory_rows]

    extra_mib = {key: [value / MiB for value in median(key, "extra_bytes")] for key, _, _ in keys}
    seconds = {key: median(key, "seconds") for key, _, _ in keys}
    fetch_extra = extra_mib["fetch"][-1]
    return StreamingMemory(
        measure=" / ".join(sorted({s["measure"] for per_rows in samples.values()
                                   for ss in per_rows.values() for s in ss})),
        process="a fresh Python process per measurement (asyncpg only imported)",
        query=QUERY,
        rows=list(sizes.memory_rows),
        rounds=sizes.memory_rounds,
        statistic="median of the rounds",
        extra_mib=extra_mib,
        seconds=seconds,
        rows_per_second={key: [n / t for n, t in zip(sizes.memory_rows, values, strict=True)]
                         for key, values in seconds.items()},
        largest=max(sizes.memory_rows),
        cursor_vs_fetch_memory_at_largest={key: (extra_mib[key][-1] / fetch_extra if fetch_extra > 0 else None)
                                           for key, _, _ in keys if key != "fetch"},
    )
