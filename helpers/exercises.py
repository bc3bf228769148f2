"""Exercises that wait for the learner.

Each exercise in a notebook is four cells: the task; an *answer cell* whose stubs (`...`) the
learner replaces; the *check*; and the reference solution, folded in a markdown `<details>`
block so that it never runs by itself.  Run All on a fresh notebook therefore leaves every
exercise unanswered, and each check says so instead of failing:

    async def exercise_1():
        assert my_version.minor == 0, "since PostgreSQL 10 the bug-fix release is the micro"
    await check(1, exercise_1, "my_version")

`check` prints one of three things and never raises, so Run All goes on: "not answered yet"
(an answer is still `...` or a function whose body is only `...`), "Exercise 1 passed", or
what is wrong (the failed assertion's message, or the error the answer raised).
"""

from __future__ import annotations

import asyncio
import dis
import inspect
import re
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

_EMPTY_BODY_OPS = {"RESUME", "NOP", "CACHE", "RETURN_GENERATOR", "POP_TOP", "RETURN_VALUE", "RETURN_CONST",
                   "LOAD_CONST", "COPY_FREE_VARS", "MAKE_CELL"}


def is_stub(value: Any) -> bool:
    """True for `...` itself and for a function whose body is only `...` (or `pass`, or a docstring)."""
    if value is Ellipsis:
        return True
    if not inspect.isfunction(value):
        return False
    doc = value.__doc__
    return all(op.opname in _EMPTY_BODY_OPS and (not op.opname.endswith("_CONST") or op.argval in (None, doc))
               for op in dis.get_instructions(value))


def _not_answered(number: int, why: str) -> None:
    print(f"Exercise {number}: not answered yet ({why}). Write your answer in the cell above, "
          "run it, then run this check again.")


def _wrong(number: int, what: str) -> None:
    print(f"Exercise {number} is not right yet: {what}", file=sys.stderr)


def _failed_line(failure: AssertionError) -> str:
    """For an assertion without a message: the check's line that failed is the best hint."""
    frames = traceback.extract_tb(failure.__traceback__)
    line = frames[-1].line if frames else ""
    return f"this check failed: {line}" if line else "an assertion of the check failed"


async def check(number: int, test: Callable[[], Awaitable[None] | None], *answers: str, graded: bool = False) -> None:
    """Run `test` on the learner's answers (the names they define) and say how it went.

    It prints in every case and returns nothing (a value would show as the cell's Out[]); it
    raises only what the learner could not mean (KeyboardInterrupt, SystemExit).  With
    `graded=True` (the autograder's test cells, see `helpers.admin.assignments`) it also
    raises `ExerciseNotPassed` unless the answer passed, since nbgrader counts a test cell as
    failed only when it raises.
    """
    if not await _run_check(number, test, answers) and graded:
        raise ExerciseNotPassed(f"Exercise {number} did not pass: see the message above")


class ExerciseNotPassed(AssertionError):
    """An autograded check whose answer is missing or wrong (the printed message says which)."""


async def _run_check(number: int, test: Callable[[], Awaitable[None] | None], answers: tuple[str, ...]) -> bool:
    """Print what `check` says; True when the exercise passed."""
    namespace = test.__globals__
    missing = [name for name in answers if name not in namespace]
    if missing:
        _not_answered(number, f"`{missing[0]}` is not defined")
        return False
    stubs = [name for name in answers if is_stub(namespace[name])]
    if stubs:
        stub = stubs[0]
        _not_answered(number, f"the body of `{stub}` is still `...`" if callable(namespace[stub])
                      else f"`{stub}` is still `...`")
        return False
    try:
        outcome = test()
        if inspect.isawaitable(outcome):
            await outcome
    except NotImplementedError:
        _not_answered(number, "your code raises NotImplementedError")
        return False
    except AssertionError as failure:
        _wrong(number, str(failure) or _failed_line(failure))
        return False
    except (Exception, asyncio.CancelledError) as error:
        message = f": {error}" if str(error) else ""
        _wrong(number, f"your code raised {type(error).__name__}{message}")
        return False
    print(f"Exercise {number} passed")
    return True


@asynccontextmanager
async def queries_sent(conn: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """The text of each query `conn` sends inside the block (its query logger), so that a check
    can see *how* an answer worked: one `BEGIN`, a `SAVEPOINT` per step, `READ ONLY`.  The
    logger sees `execute`, the `fetch` family and `executemany` (and so every statement a
    `transaction()` block sends); not cursors, prepared statements or COPY."""
    sent: list[str] = []

    def record(query: Any) -> None:
        sent.append(query.query)

    conn.add_query_logger(record)
    try:
        yield sent
    finally:
        await asyncio.sleep(0)  # asyncpg calls a logger soon after each query: let the last one run
        conn.remove_query_logger(record)


# -- an exercise's cells, as the notebooks mark them ---------------------------------------
# Each exercise cell carries `{"course": {"exercise": N, "role": "answer" | "check" | "solution"}}`
# in its metadata; the exercise probes (tests/exercise_probes.py) and the nbgrader edition
# (helpers/admin/assignments.py) both find the cells by it.
ExerciseRole = tuple[int, str]
_SOLUTION_BLOCK = re.compile(r"```python\n(.*?)\n```", re.S)


def exercise_role(cell: Mapping[str, Any]) -> ExerciseRole | None:
    """(exercise number, "answer" | "check" | "solution") from a cell's `course` metadata."""
    course = cell.get("metadata", {}).get("course", {})
    return (course["exercise"], course["role"]) if "exercise" in course else None


def solution_code(markdown: str) -> str:
    """The reference solution: the python block inside a solution cell's folded <details>."""
    found = _SOLUTION_BLOCK.search(markdown)
    if not found:
        raise ValueError(f"no python block in the solution cell: {markdown[:200]!r}")
    return found.group(1)

