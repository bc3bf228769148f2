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
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .config import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CELL_TIMEOUT = 600
RAISES_MARKER = "# NBVAL_RAISES_EXCEPTION"
RAISES_TAG = "raises-exception"


def course_notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


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


def scrub_outputs(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = scrub(output["text"])
            if "traceback" in output:
                output["traceback"] = [scrub(line) for line in output["traceback"]]
            if "evalue" in output:
                output["evalue"] = scrub(output["evalue"])


def execute_in_place(path: Path) -> float:
    """Run every cell top to bottom in a fresh kernel (from the notebooks' folder); return the seconds."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # run timestamps of an older run: not part of the reference
    expected_errors = [cell for cell in notebook.cells if cell.cell_type == "code"
                       and cell.source.startswith(RAISES_MARKER)]
    for cell in expected_errors:
        # The tag is how nbclient and JupyterLab's "Run All" know the error is on purpose:
        # without it, Run All stops at the first common mistake.
        tags = cell.metadata.setdefault("tags", [])
        if RAISES_TAG not in tags:
            tags.append(RAISES_TAG)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - started
    scrub_outputs(notebook)
    nbformat.write(notebook, path)
    return elapsed
