"""Notebook cells tagged `pgbouncer` are skipped, with the reason, where PgBouncer is not installed.

A pytest plugin (registered in the root conftest.py).  Notebook 11's PgBouncer cells print what
a real PgBouncer did; where none is installed they print the install hint instead, which is not
the stored output.  So nbval skips exactly those cells and says why in the summary (`-rs`), and
every other cell of the notebook is still compared.  `.ci/run` installs PgBouncer.
"""

from __future__ import annotations

import pytest
from nbval.plugin import IPyNbCell

from helpers import pgbouncer

TAG = "pgbouncer"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = pgbouncer.missing_reason()
    if reason is None:
        return
    for item in items:
        if isinstance(item, IPyNbCell) and TAG in item.cell.metadata.get("tags", []):
            item.add_marker(pytest.mark.skip(reason=f"{reason} (a cell that shows PgBouncer)"))
