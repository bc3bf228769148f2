"""The exercise probes (tests/exercise_probes.py) cover every exercise, and they bite.

The probes themselves run inside each notebook's nbval run; these tests check the table of
wrong answers against the notebooks, and run one notebook whose reference solution is broken
to show that a probe fails on it and that the probes run in order right after each check.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.config import notebook_paths
from helpers.exercises import exercise_role as role
from helpers.exercises import solution_code
from tests.conftest import nbval_in
from tests.exercise_probes import WRONG

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.stem: p for p in notebook_paths()}
BROKEN = "06_savepoints"  # a short notebook with two exercises


def _roles(stem: str) -> list[tuple[int, str]]:
    return [r for c in nbformat.read(NOTEBOOKS[stem], as_version=4).cells if (r := role(c))]


def test_every_exercise_has_a_wrong_answer_and_a_solution() -> None:
    assert sorted(WRONG) == sorted(NOTEBOOKS)
    for stem, path in NOTEBOOKS.items():
        checks = [number for number, kind in _roles(stem) if kind == "check"]
        assert checks == sorted(WRONG[stem]), f"{stem}: exercises {checks}, wrong answers for {sorted(WRONG[stem])}"
        for cell in nbformat.read(path, as_version=4).cells:
            if (r := role(cell)) and r[1] == "solution":
                assert solution_code(cell.source).strip(), f"{stem}: exercise {r[0]} has an empty solution"


@pytest.mark.usefixtures("prefix")  # the broken copy's databases are its own, not the session's 06
def test_a_broken_reference_solution_fails_its_probe(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOKS[BROKEN], as_version=4)
    cells = {role(c): c for c in notebook.cells if role(c)}
    solution, stub = cells[(1, "solution")], cells[(1, "answer")].source
    solution.source = solution.source.replace(solution_code(solution.source), stub)  # the "solution" is the stub
    nbformat.write(notebook, tmp_path / f"{BROKEN}.ipynb")
    run = nbval_in(tmp_path, "-v", "-rf", f"{BROKEN}.ipynb", plugins=("tests.exercise_probes",))
    failed = [line.split(" - ")[0] for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert run.returncode == 1, run.stdout[-3000:]
    assert failed == [f"FAILED {BROKEN}.ipynb::Exercise 1: the check after the solution",
                      f"FAILED {BROKEN}.ipynb::Exercise 1: the check after the solution again"], run.stdout[-3000:]
    assert "expected 'Exercise 1 passed'" in run.stdout and "not answered yet" in run.stdout, run.stdout[-3000:]
    ran = re.findall(r"::((?:Cell|Exercise) [^\n]*?) (?:PASSED|FAILED)", run.stdout)
    for number in WRONG[BROKEN]:  # each exercise's probes run right after its check cell, in this order
        first = ran.index(f"Exercise {number}: a wrong answer")
        last = ran.index(f"Exercise {number}: the check after the solution again")
        assert ran[first - 1].startswith("Cell ") and ran[last + 1].startswith("Cell "), ran
        labels = [name.split(": ", 1)[1] for name in ran[first:last + 1]]
        assert labels[:2] == ["a wrong answer", "the check after the wrong answer"], labels
        assert labels[-4:] == ["the reference solution", "the check after the solution",
                               "the reference solution again", "the check after the solution again"], labels
