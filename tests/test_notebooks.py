"""The notebooks as documents: anatomy, and proof that the regression check bites.

nbval itself (strict) runs over notebooks/ as part of the same pytest session, in reverse
course order and two notebooks at a time (see tests/scheduling.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.config import notebook_paths
from helpers.maintainers.notebooks import RAISES_TAG
from tests.conftest import nbval_in

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = notebook_paths()
EXPECTED = [f"{n:02d}" for n in range(1, 12)]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_the_course_is_complete() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == EXPECTED


NAVIGATION = (r"(\*\*Previous:\*\* \[[^]]+\]\(\d\d_\w+\.ipynb\) · )?\*\*Contents:\*\* \[[^]]+\]\(README\.md\)"
              r"( · \*\*Next:\*\* \[[^]]+\]\(\d\d_\w+\.ipynb\))?")


def _exercise_anatomy(cells: list[dict]) -> None:
    """Each exercise: the task, an answer cell of stubs, the check, the solution folded in markdown."""
    roles = [(c["metadata"]["course"]["exercise"], c["metadata"]["course"]["role"], c) for c in cells
             if "exercise" in c["metadata"].get("course", {})]
    numbers = sorted({number for number, _, _ in roles})
    assert len(numbers) >= 2 and numbers == list(range(1, len(numbers) + 1)), numbers
    assert [(n, r) for n, r, _ in roles] == [(n, r) for n in numbers for r in ("answer", "check", "solution")]
    for number, role, cell in roles:
        source = _source(cell)
        if role == "answer":
            assert cell["cell_type"] == "code" and "your answer" in source and "..." in source, source
        elif role == "check":
            assert cell["cell_type"] == "code" and f"await check({number}, exercise_{number}" in source, source
            assert "not answered yet" in "".join("".join(o["text"]) for o in cell["outputs"] if "text" in o), \
                "stored outputs: Run All leaves every exercise unanswered"
        else:
            assert cell["cell_type"] == "markdown", "the solution never runs by itself"
            assert re.match(r'<details class="course-solution"><summary>Show the solution</summary>\n\n```python\n',
                            source), source[:120]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_anatomy(path: Path) -> None:
    cells = _cells(path)
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "asyncpg-course", "the course's named kernel"
    md = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    code = [c for c in cells if c["cell_type"] == "code"]
    text = "\n".join(md)
    assert md[0].startswith(f"# {path.name[:2]} · "), "first cell: the title"
    assert "## What you will learn" in md[0]
    for heading in ("## Setup", "## Common mistakes", "## Exercises", "## Summary"):
        assert re.search(rf"^{heading}\b", text, re.M), f"missing section {heading}"
    assert f'notebook_database("{path.stem}"' in _source(code[0]), "first code cell: the setup"
    raising = [c for c in code if RAISES_TAG in c["metadata"].get("tags", [])]
    assert raising, "a real error in Common mistakes"
    assert "except ImportError" in _source(code[0]), "the setup says what to do on a Python without the packages"
    for cell in code:  # the tag alone tells nbval and JupyterLab's Run All that the error is on purpose
        assert "NBVAL_RAISES_EXCEPTION" not in _source(cell), _source(cell)[:80]
    _exercise_anatomy(cells)
    assert len(re.findall(r"^### Exercise \d", text, re.M)) >= 2
    assert re.fullmatch(NAVIGATION, md[-1]), f"last cell: Previous · Contents · Next, not {md[-1]!r}"
    for target in re.findall(r"\]\(([^)]+)\)", md[-1]):
        assert (path.parent / target).is_file(), f"the link {target} resolves in JupyterLab (root notebooks/)"
    for cell in cells:
        assert "slideshow" in cell["metadata"], "slide metadata on every cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_one_real_run(path: Path) -> None:
    code = [c for c in _cells(path) if c["cell_type"] == "code" and _source(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert None not in counts, "every code cell executed"
    assert counts == list(range(1, len(counts) + 1)), "executed once, top to bottom, in a fresh kernel"
    assert any(c["outputs"] for c in code)
    stored = json.dumps([c["outputs"] for c in code])
    for pattern in (r"/(root|home|Users|tmp|work)/", r" at 0x[0-9a-f]{6,}", r"ipykernel_\d+"):
        assert not re.search(pattern, stored), f"a machine-specific value in stored outputs: {pattern}"


def _code_index(notebook: dict, cell: dict) -> int:
    """nbval's number for a cell: its position among the code cells."""
    return [c for c in notebook["cells"] if c["cell_type"] == "code"].index(cell)


@pytest.mark.usefixtures("prefix")  # its own databases: the session's nbval run of 01 keeps its own
def test_nbval_catches_a_changed_output(tmp_path: Path) -> None:
    """Change one compared output in a copy: nbval must fail on that cell and nowhere else, and
    pass on every cell of the original."""
    source = ROOT / "notebooks" / "01_connect.ipynb"
    nb = json.loads(source.read_text())
    target = next(c for c in nb["cells"] if c["cell_type"] == "code" and not _source(c).startswith("# NBVAL")
                  and RAISES_TAG not in c["metadata"].get("tags", [])
                  and any(o.get("output_type") == "stream" and o.get("name") == "stdout" for o in c["outputs"]))
    stream = next(o for o in target["outputs"] if o.get("output_type") == "stream")
    stream["text"] = ["a line the code never prints\n"]
    for name, notebook in (("changed.ipynb", nb), ("original.ipynb", json.loads(source.read_text()))):
        (tmp_path / name).write_text(json.dumps(notebook))
    run = nbval_in(tmp_path, "-q", "-rf", "changed.ipynb", "original.ipynb")  # one session, a kernel per file
    failed = [line.split(" - ")[0] for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert run.returncode == 1, run.stdout[-3000:]
    assert failed == [f"FAILED changed.ipynb::Cell {_code_index(nb, target)}"], run.stdout[-3000:]
    assert "a line the code never prints" in run.stdout


def test_make_test_runs_notebooks_in_reverse_two_at_a_time() -> None:
    """The one nbval run of `make test` proves order-independence and isolation: the notebooks are
    queued last to first (tests/scheduling.py) and two xdist workers run two of them at once."""
    assert "-n 2 --dist loadfile --no-loadscope-reorder" in (ROOT / "Makefile").read_text()  # xdist keeps our order
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             *[str(p) for p in NOTEBOOKS[:3]]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    files = [line.split("::")[0] for line in listed.stdout.splitlines() if "::" in line]
    assert list(dict.fromkeys(files)) == [f"notebooks/{p.name}" for p in reversed(NOTEBOOKS[:3])], listed.stdout[-2000:]
