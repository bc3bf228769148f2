"""How `make test` spreads the suite over two xdist workers without doing anything twice.

Every notebook is executed once under strict nbval, once in JupyterLab (Chromium) and once
by its exercise tests.  Those three share the notebook's name, so they form one xdist group
(`--dist loadgroup`): one worker runs them one after another, and the nbval cells stay in
order on one kernel.  The other worker meanwhile runs another notebook, so notebooks are
proven two at a time on the same server.  Groups are queued in reverse course order: that is
the order that proves notebooks do not depend on the ones before them, and it starts the
longest notebook (10, the benchmark) first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def notebook_of(item: pytest.Item) -> str | None:
    """The notebook an item executes: an nbval cell's file, or a test parametrized by it."""
    if item.path.suffix == ".ipynb":
        return item.path.stem
    callspec = getattr(item, "callspec", None)
    for value in callspec.params.values() if callspec else ():
        name = value.stem if isinstance(value, Path) else str(value)
        if name in NOTEBOOKS:
            return name
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def queue_position(item: pytest.Item) -> tuple[int, int]:
        notebook = notebook_of(item)
        return (0, -NOTEBOOKS.index(notebook)) if notebook else (1, 0)

    for item in items:
        notebook = notebook_of(item)
        if notebook:
            item.add_marker(pytest.mark.xdist_group(notebook))
    items.sort(key=queue_position)  # stable: cells keep their order within a notebook
