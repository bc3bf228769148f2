"""How `make test` spreads the suite over two xdist workers without doing anything twice.

`--dist loadfile` keeps each file on one worker, in order: an nbval notebook's cells (and
the exercise probes that follow its checks, tests/exercise_probes.py) share one kernel, and
the browser module shares its JupyterLab.  Every notebook runs once under strict nbval,
while the other worker runs another file, so the notebooks are proven two at a time on the
same server (each in its own database).

Files are handed out in the order this hook sorts them (`--no-loadscope-reorder`: by default
xdist would queue the files with the most tests first, which puts the notebooks with many
cells ahead of everything), longest first: the JupyterLab runs (every notebook in Chromium),
then the notebooks in reverse course order (the order that proves a notebook does not depend
on the ones before it, and starts 10, the benchmark, early), then the other files that take
half a minute or more, then the rest, so the last files handed out are short and the two
workers finish together.  The lists only affect speed: a file missing from them still runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.config import notebook_paths

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = [p.name for p in notebook_paths()]
FIRST = ("test_jupyterlab_runs.py",)
LONG = ("test_databases.py", "test_class.py", "test_errors.py", "test_faults.py", "test_static_site.py",
        "test_versions.py", "test_production.py", "test_secrets.py", "test_bench.py")  # measured in make test, longest first


def queue_position(path: Path) -> tuple[int, int]:
    if path.name in FIRST:
        return (0, FIRST.index(path.name))
    if path.name in NOTEBOOKS:
        return (1, -NOTEBOOKS.index(path.name))
    if path.name in LONG:
        return (2, LONG.index(path.name))
    return (3, 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: queue_position(item.path))  # stable: a file's items keep their order
