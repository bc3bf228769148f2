"""Homework with nbgrader, for real: `make homework`, then nbgrader's own commands (the end-to-end
tests are marked `world`: `make test-world` runs them).

`make homework` builds nbgrader's virtualenv and writes every notebook's exercises as an
assignment; the student versions must hold no solution, and `nbgrader autograde` must give
full marks to the reference solutions, none to the untouched stubs and all but one point
to a submission with one wrong answer, each student's notebook on a database prefix of its
own that is gone once it is graded.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from helpers import check, course_databases
from helpers.admin import assignments
from helpers.exercises import ExerciseNotPassed, exercise_role, solution_code
from helpers.target import resolve
from tests.exercise_probes import wrong_answers

ROOT = Path(__file__).resolve().parent.parent
GRADING_BIN = ROOT / ".venv-grading" / "bin"
ASSIGNMENT = "05_transactions"

def _digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{GRADING_BIN}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([str(GRADING_BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make homework` into a folder of the test's, with the notebooks' bytes checked before and after."""
    folder = tmp_path_factory.mktemp("nbgrader")
    before = _digests()
    done = subprocess.run(["make", "--no-print-directory", "homework", f"NBGRADER_DIR={folder}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"make homework failed:\n{done.stdout}\n{done.stderr}"
    assert _digests() == before, "make homework changed a notebook in notebooks/"
    return folder


def _course_notebooks() -> dict[str, nbformat.NotebookNode]:
    found = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if any(exercise_role(cell) for cell in notebook.cells):
            found[path.stem] = notebook
    return found


def _solutions(notebook: nbformat.NotebookNode) -> dict[int, str]:
    return {role[0]: solution_code(cell.source) for cell in notebook.cells
            if (role := exercise_role(cell)) and role[1] == "solution"}


@pytest.mark.world  # a virtualenv of nbgrader's own: make test-world, not make test
def test_every_notebook_with_exercises_is_released_without_its_solutions(course: Path) -> None:
    notebooks = _course_notebooks()
    assert len(notebooks) >= 9
    for stem, original in notebooks.items():
        released = nbformat.read(course / "release" / stem / f"{stem}.ipynb", as_version=4)
        text = "\n".join(cell.source for cell in released.cells)
        assert "BEGIN SOLUTION" not in text and "course-solution" not in text, stem
        # A solution line may also stand in the lesson or the check (`async with conn.transaction():`);
        # none that stands only in the solution may reach the student.
        shown = "\n".join(cell.source for cell in original.cells if (exercise_role(cell) or (0, ""))[1] != "solution")
        for number, solution in _solutions(original).items():
            for line in solution.splitlines():
                if len(line.strip()) > 12 and line.strip() not in shown:
                    assert line.strip() not in text, f"{stem}: exercise {number}'s solution line {line.strip()!r}"
        graded = [cell for cell in released.cells if cell.metadata.get("nbgrader", {}).get("grade")]
        checks = [cell for cell in original.cells if (exercise_role(cell) or (0, ""))[1] == "check"]
        assert len(graded) == len(checks), stem
        for cell in graded:
            assert cell.metadata.nbgrader["locked"] and cell.metadata.nbgrader["points"] == 1
            assert "graded=True)" in cell.source


def _submit(course: Path, student: str, answers: dict[int, str], extra_cell: str = "") -> None:
    notebook = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if cell.metadata.get("nbgrader", {}).get("solution") and int(grade_id.split("_")[1]) in answers:
            cell.source = answers[int(grade_id.split("_")[1])]
    if extra_cell:  # a cell the student added after the setup cell
        setup = next(i for i, cell in enumerate(notebook.cells) if "notebook_database(" in cell.source)
        notebook.cells.insert(setup + 1, nbformat.v4.new_code_cell(extra_cell))
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{ASSIGNMENT}.ipynb")


@pytest.mark.world
def test_autograde_gives_full_none_and_partial_marks(course: Path) -> None:
    solutions = _solutions(_course_notebooks()[ASSIGNMENT])
    wrong_first = {**solutions, 1: wrong_answers(ASSIGNMENT, 1)[0].code}
    _submit(course, "perfect", solutions, extra_cell="print(DSN.split('?')[0].rsplit('/', 1)[-1])")
    _submit(course, "untouched", {})
    _submit(course, "one_wrong", wrong_first)

    began = time.perf_counter()
    log = _nbgrader(course, "autograde", ASSIGNMENT, "--create", "--force").stderr
    seconds = time.perf_counter() - began
    print(f"nbgrader autograde: 3 students in {seconds:.1f} s, {seconds / 3:.1f} s a student")

    _nbgrader(course, "export", "--to", str(course / "grades.csv"))
    with open(course / "grades.csv", newline="") as grades:
        scores = {row["student_id"]: (float(row["score"]), float(row["max_score"]))
                  for row in csv.DictReader(grades) if row["assignment"] == ASSIGNMENT}
    top = float(len(solutions))
    assert scores == {"perfect": (top, top), "untouched": (0.0, top), "one_wrong": (top - 1, top)}, log

    for student in scores:  # each on a prefix of its own, said in the log and seen by the notebook
        assert f"Running {student}'s notebook on the database prefix grade_{student}" in log
    perfect = nbformat.read(course / "autograded" / "perfect" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    outputs = [out.get("text", "") for cell in perfect.cells if cell.cell_type == "code" for out in cell.outputs]
    assert f"grade_perfect__{ASSIGNMENT}\n" in outputs
    for student in scores:  # and nothing of theirs is left on the server
        os.environ["COURSE_DB_PREFIX"] = f"grade_{student}"
        try:
            assert asyncio.run(course_databases(resolve())) == [], student
        finally:
            del os.environ["COURSE_DB_PREFIX"]



def test_a_function_stub_keeps_its_signature_and_other_answers_are_wrapped_whole() -> None:
    stub = "# Exercise 2 · your answer: replace each ... with your code, run this cell, then the check below.\n" \
           "async def f(conn):\n    ..."
    solution = "async def f(conn):\n    return await conn.fetchval('SELECT 1')"
    assert assignments.answer_source(stub, solution).splitlines()[1:] == [
        "async def f(conn):", "    ### BEGIN SOLUTION", "    return await conn.fetchval('SELECT 1')", "    ### END SOLUTION"]
    assert "in place of `raise NotImplementedError()`" in assignments.answer_source(stub, solution).splitlines()[0]
    top_level = "my_version = ..."
    assert assignments.answer_source(top_level, "my_version = connection.get_server_version()") == \
        "### BEGIN SOLUTION\nmy_version = connection.get_server_version()\n### END SOLUTION"
    helper_first = "import math\n\nasync def f(conn):\n    return math.pi"  # not the stub's signature first
    assert assignments.answer_source(stub, helper_first).splitlines()[1] == "### BEGIN SOLUTION"


def test_the_graded_check_needs_exactly_one_check_call() -> None:
    assert assignments.graded_check('x = 1\nawait check(1, exercise_1, "f")', "nb", 1).endswith(
        'await check(1, exercise_1, "f", graded=True)')
    for source in ("x = 1", 'await check(1, a, "f")\nawait check(1, b, "f")'):
        with pytest.raises(ValueError, match="one `await check"):
            assignments.graded_check(source, "nb", 1)


def test_a_graded_check_raises_unless_the_answer_passed(capsys: pytest.CaptureFixture[str]) -> None:
    def passes() -> None:
        pass

    def fails() -> None:
        raise AssertionError("not like this")

    asyncio.run(check(1, passes, graded=True))
    with pytest.raises(ExerciseNotPassed, match="Exercise 1 did not pass"):
        asyncio.run(check(1, fails, graded=True))
    asyncio.run(check(1, fails))  # the self-learner's check never raises
    assert capsys.readouterr().err.count("not like this") == 2
