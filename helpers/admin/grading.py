"""nbgrader's settings for the course: what `nbgrader_config.py` of `course assignments` loads.

Imported only by nbgrader (the optional `grading` extra), never by the course itself.

Autograding runs each student's notebook in the course's kernel, and the notebook's setup cell
clones a database named after the prefix of whoever runs it.  Run for student after student
by one instructor, every submission would get the instructor's databases, and two graders
at once would drop each other's.  So the kernel of each submission runs with a prefix of its
own, `grade_<student>` (`COURSE_DB_PREFIX`), and that prefix's databases are dropped once the
submission is graded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nbgrader.preprocessors import Execute

from .. import config, names
from ..databases import drop_course_databases
from ..target import resolve

#: A notebook's setup cell builds the template for a new prefix (seconds) and notebook 10
#: measures for a minute; nbgrader's default of 30 s a cell is too short for both.
CELL_TIMEOUT_S = 600


def grading_prefix(student: str) -> str:
    """The database prefix a student's submission is graded under: never the student's own."""
    return names.prefix_from_user(f"grade_{student}")


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


class CourseExecute(Execute):  # type: ignore[misc]  # nbgrader has no type information
    """nbgrader's Execute, with the submission's kernel on a database prefix of its own."""

    def preprocess(self, nb: Any, resources: Any) -> Any:
        student = resources["nbgrader"]["student"]
        prefix = grading_prefix(student)
        self.log.info("Running %s's notebook on the database prefix %s", student, prefix)
        with _environment(config.PREFIX_VAR, prefix):
            try:
                return super().preprocess(nb, resources)
            finally:
                asyncio.run(drop_course_databases(resolve()))


def configure(c: Any) -> None:
    """Apply the course's settings to nbgrader's config object `c`."""
    from nbgrader.converters import Autograde

    c.Execute.timeout = CELL_TIMEOUT_S
    steps = Autograde.class_traits()["autograde_preprocessors"].default()
    c.Autograde.autograde_preprocessors = [CourseExecute if step is Execute else step for step in steps]
