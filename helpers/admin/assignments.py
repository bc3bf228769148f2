"""`course assignments`: the course's exercises as nbgrader assignments, for an instructor.

A self-learner's notebook shows each solution one click away; homework must not.  This writes,
from the notebooks' own exercise metadata (see `helpers.exercises.exercise_role`), an
nbgrader course folder:

    <out>/nbgrader_config.py                   the course's nbgrader settings (helpers.admin.grading)
    <out>/source/05_transactions/05_transactions.ipynb
    ...

In each source notebook the answer cell holds the reference solution between nbgrader's
`### BEGIN SOLUTION` / `### END SOLUTION` (an autograded answer), the check becomes a locked
autograder test cell worth one point that calls the same `check` with `graded=True` (so it
raises unless the answer passed), and the folded solution cell is dropped.  The notebooks in
`notebooks/` are only read, never written.  `nbgrader generate_assignment` then makes the
student version, in which each solution is replaced by `raise NotImplementedError()`: the
check reports that as "not answered yet", as it reports a stub in the self-learner notebook.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import nbformat

from ..config import REPO_ROOT
from ..exercises import exercise_role, solution_code

POINTS_PER_EXERCISE = 1
CONFIG = '''\
# nbgrader's settings for the asyncpg course, written by `course assignments`.
# Run nbgrader in this folder with the course's grading environment (`make homework`).
from helpers.admin.grading import configure

configure(c)  # noqa: F821 (nbgrader defines `c`)
'''
_CHECK_CALL = re.compile(r"^(?P<call>await check\((?P<args>.*)\))\s*$", re.M)
_ANSWER_HEADER = re.compile(r"^# Exercise (?P<n>\d+) · your answer:.*$")


def course_notebooks() -> list[Path]:
    return sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def write_course(out: Path, notebooks: list[Path] | None = None) -> list[Path]:
    """Write nbgrader_config.py and one source assignment per notebook with exercises; return the notebooks written."""
    (out / "source").mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    written = []
    for path in notebooks or course_notebooks():
        notebook = nbformat.read(path, as_version=4)
        if not any(exercise_role(cell) for cell in notebook.cells):
            continue
        target = out / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(notebook, path.stem), target)
        written.append(target)
    return written


def source_notebook(notebook: Any, name: str) -> Any:
    """A copy of `notebook` with its exercises as nbgrader cells (see the module docstring)."""
    solutions = {role[0]: solution_code(cell.source) for cell in notebook.cells
                 if (role := exercise_role(cell)) and role[1] == "solution"}
    cells = []
    for cell in notebook.cells:
        role = exercise_role(cell)
        if role is None:
            cells.append(_without_outputs(cell))
        elif role[1] == "answer":
            cells.append(_nbgrader_cell(cell, answer_source(cell.source, solutions[role[0]]),
                                        grade_id=f"exercise_{role[0]}_answer", solution=True))
        elif role[1] == "check":
            cells.append(_nbgrader_cell(cell, graded_check(cell.source, name, role[0]),
                                        grade_id=f"exercise_{role[0]}_check", grade=True, locked=True))
    result = copy.deepcopy(notebook)
    result.cells = cells
    return result


def answer_source(stub: str, solution: str) -> str:
    """The answer cell with the reference solution between nbgrader's markers.

    When the stub is one function whose body is `...` and the solution defines that function,
    only the body goes between the markers, so the student still sees the signature.
    """
    lines = stub.splitlines()
    header = [line for line in lines if line.startswith("#")]
    code = [line for line in lines if line.strip() and not line.startswith("#")]
    header = [_ANSWER_HEADER.sub(lambda m: f"# Exercise {m['n']} · your answer: write your code in place of "
                                 "`raise NotImplementedError()`, run this cell, then the check below.", line)
              for line in header]
    solution_lines = solution.splitlines()
    if (len(code) == 2 and code[0].endswith(":") and code[1].strip() == "..." and solution_lines[:1] == code[:1]
            and all(not line or line[0].isspace() for line in solution_lines[1:])):
        indent = code[1][: len(code[1]) - len(code[1].lstrip())]
        body = solution_lines[1:]
        return "\n".join([*header, code[0], f"{indent}### BEGIN SOLUTION", *body, f"{indent}### END SOLUTION"])
    return "\n".join([*header, "### BEGIN SOLUTION", *solution_lines, "### END SOLUTION"])


def graded_check(source: str, notebook: str, number: int) -> str:
    """The check cell's source, calling `check(..., graded=True)`: it raises unless the answer passed."""
    calls = _CHECK_CALL.findall(source)
    if len(calls) != 1:
        raise ValueError(f"{notebook}: exercise {number}'s check must end in one `await check(...)` line, "
                         f"found {len(calls)}")
    return _CHECK_CALL.sub(lambda m: f"await check({m['args']}, graded=True)", source)


def _nbgrader_cell(cell: Any, source: str, *, grade_id: str, solution: bool = False, grade: bool = False,
                   locked: bool = False) -> Any:
    new = _without_outputs(cell)
    new.source = source
    new.metadata["nbgrader"] = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                                "solution": solution, "task": False}
    if grade:
        new.metadata["nbgrader"]["points"] = POINTS_PER_EXERCISE
    return new


def _without_outputs(cell: Any) -> Any:
    new = copy.deepcopy(cell)
    if new.cell_type == "code":
        new.outputs = []
        new.execution_count = None
    return new
