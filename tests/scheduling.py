"""How `make test` spreads the suite over two xdist workers without doing anything twice.

`--dist loadfile` keeps each file on one worker, in order: an nbval notebook's cells (and
the exercise probes that follow its checks, tests/exercise_probes.py) share one kernel, and
the browser module shares its JupyterLab.  Every notebook runs once under strict nbval,
while the other worker runs another file, so the notebooks are proven two at a time on the
same server (each in its own database).

Files are queued longest first: the JupyterLab runs (every notebook in Chromium), then the
notebooks in reverse course order (the order that proves a notebook does not depend on the
ones before it, and starts 10, the benchmark, early), then everything else as collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FIRST = ("test_jupyterlab_runs.py",)


def queue_position(path: Path) -> tuple[int, int]:
    if path.name in FIRST:
        return (0, FIRST.index(path.name))
    if path.name in NOTEBOOKS:
        return (1, -NOTEBOOKS.index(path.name))
    return (2, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: queue_position(item.path))  # stable: a file's items keep their order
