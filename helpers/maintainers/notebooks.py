"""Re-executing the course's notebooks in place, so their stored outputs are one real run.

Stored outputs are nbval's reference.  Tracebacks and warnings name files on the machine
that ran them (`/home/alice/course/.venv/...`, `/tmp/ipykernel_4242/123.py`); those are
replaced by placeholders so the reference is the same wherever it was made.  Nothing else in an output is touched.
"""

from __future__ import annotations

import re
import site
import sys
import sysconfig
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from ..config import REPO_ROOT, notebook_paths

CELL_TIMEOUT = 600
#: The tag on a cell whose error the lesson shows on purpose: nbval 0.11 expects the error, and
#: nbclient and JupyterLab's "Run All" run on past it (without it, Run All stops at the first mistake).
RAISES_TAG = "raises-exception"


def course_notebooks() -> list[Path]:
    return notebook_paths()


def _path_placeholders() -> list[tuple[str, str]]:
    """Longest first, so a site-packages inside the repository's .venv is named as site-packages."""
    places = {sysconfig.get_paths()["purelib"]: "<site-packages>"}
    places.update({path: "<site-packages>" for path in site.getsitepackages()})
    places[sys.base_prefix] = "<python>"
    places[str(REPO_ROOT)] = "<course>"
    return sorted(places.items(), key=lambda item: len(item[0]), reverse=True)


_KERNEL_CELL_FILE = re.compile(r"[^\s\"'<>]*ipykernel_\d+/\d+\.py")  # a warning's "file" for a cell


def scrub(text: str) -> str:
    for path, placeholder in _path_placeholders():
        text = text.replace(path, placeholder)
    return _KERNEL_CELL_FILE.sub("<cell>", text)


_OVERWRITTEN = re.compile(r"[^\n]*\r(?!\n)")  # a progress bar's earlier states, each ended by \r


def scrub_outputs(notebook: nbformat.NotebookNode) -> None:
    """Paths become placeholders; a progress bar keeps only its last state, as JupyterLab shows it."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _OVERWRITTEN.sub("", scrub(output["text"]))
            if "traceback" in output:
                output["traceback"] = [scrub(line) for line in output["traceback"]]
            if "evalue" in output:
                output["evalue"] = scrub(output["evalue"])


SLOW_CELL = 3.0  # seconds: a cell that runs longer should show progress


def slow_cells(notebook: nbformat.NotebookNode) -> list[tuple[int, float]]:
    """(index, seconds) of the cells that ran longer than SLOW_CELL, from nbclient's timestamps."""
    slow = []
    for index, cell in enumerate(notebook.cells):
        timing = cell.metadata.get("execution", {})
        if "shell.execute_reply" in timing and "iopub.execute_input" in timing:
            seconds = (datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
                       - datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))).total_seconds()
            if seconds > SLOW_CELL:
                slow.append((index, seconds))
    return slow


def execute_in_place(path: Path, report: Callable[[str], None] = print) -> float:
    """Run every cell top to bottom in a fresh kernel (from the notebooks' folder); return the seconds.

    Cells slower than SLOW_CELL are reported, so that a new slow cell gets a progress bar."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=True,
                   coalesce_streams=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - started
    for index, seconds in slow_cells(notebook):
        report(f"{path.name}: cell {index} ran {seconds:.1f} s")
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # run timestamps: not part of the reference
    scrub_outputs(notebook)
    nbformat.write(notebook, path)
    return elapsed
