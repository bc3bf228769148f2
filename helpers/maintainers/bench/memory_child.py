"""One streaming-memory measurement, run as a script in a fresh Python process.

Reads a JSON spec on stdin ({"dsn", "method": "fetch"|"cursor", "rows", "prefetch"}), connects,
warms up (codecs, prepared statement), then reads the rows and writes JSON on stdout: the
seconds taken and how far the process's peak resident set size rose above its resident size
just before the query.  On Linux the peak is reset right before the query (writing 5 to
/proc/self/clear_refs resets VmHWM), so start-up and warm-up do not count; elsewhere the
lifetime peak from getrusage (ru_maxrss) is used.  It imports only the standard library and
asyncpg, so the baseline is small and the same for every method.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

QUERY = "SELECT g AS id, md5(g::text) AS digest FROM generate_series(1, $1::int) AS g"


PROC = Path("/proc/self")
VMHWM = "peak RSS (Linux VmHWM, reset through /proc/self/clear_refs just before the query) minus RSS at that moment"
MAXRSS = "peak RSS (getrusage RUSAGE_SELF ru_maxrss) after the query minus before it"


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", (PROC / "status").read_text(), re.MULTILINE)
    assert match, field
    return int(match.group(1))


def reset_peak() -> tuple[str, int]:
    """Start a fresh high-water mark if the OS allows it; return (method, baseline bytes)."""
    try:
        (PROC / "clear_refs").write_text("5")
        return VMHWM, _status_kib("VmRSS") * 1024
    except OSError:
        return MAXRSS, _maxrss_bytes()


def peak_bytes(method: str) -> int:
    return _status_kib("VmHWM") * 1024 if method == VMHWM else _maxrss_bytes()


def _maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


async def read(conn: asyncpg.Connection, method: str, rows: int, prefetch: int) -> int:
    """Touch every row (sum of the ids), as an application would; return the row count seen."""
    seen = total = 0
    if method == "fetch":
        records = await conn.fetch(QUERY, rows)
        for record in records:
            total += record["id"]
            seen += 1
    else:
        async with conn.transaction():  # a cursor lives inside a transaction
            async for record in conn.cursor(QUERY, rows, prefetch=prefetch):
                total += record["id"]
                seen += 1
    assert total == seen * (seen + 1) // 2
    return seen


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    conn = await asyncpg.connect(spec["dsn"], timeout=10)
    try:
        await read(conn, spec["method"], 100, spec["prefetch"])  # warm up
        measure, baseline = reset_peak()
        start = time.perf_counter()
        seen = await read(conn, spec["method"], spec["rows"], spec["prefetch"])
        seconds = time.perf_counter() - start
        peak = peak_bytes(measure)
    finally:
        await conn.close()
    return {"rows": seen, "seconds": seconds, "measure": measure, "baseline_bytes": baseline, "peak_bytes": peak,
            "extra_bytes": max(0, peak - baseline)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
