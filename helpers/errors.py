"""The one exception the course raises on purpose, and how it is shown.

A learner who mistypes a password should read one paragraph that says what happened and
what to do, not forty lines of traceback through our helpers.  `CourseError` carries that
paragraph; Jupyter (through `_render_traceback_`) and the CLI print only the paragraph.
"""

from __future__ import annotations


class CourseError(Exception):
    """A problem the learner can fix; the message says what happened and what to do."""

    def __init__(self, what: str, todo: str) -> None:
        self.what = what
        self.todo = todo
        super().__init__(f"{what}\nWhat to do: {todo}")

    def _render_traceback_(self) -> list[str]:
        """IPython calls this instead of printing the traceback."""
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(CourseError):
    """The course is configured in a way that cannot work (bad DATABASE_URL, bad prefix)."""


class ServerError(CourseError):
    """The PostgreSQL server cannot be reached, started or stopped."""
