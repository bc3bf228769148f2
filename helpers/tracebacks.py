"""Short tracebacks in the notebooks: the error, its message and the learner's own lines.

An asyncpg error raised deep inside the library reaches Jupyter as 60-90 lines of frames from
asyncpg, asyncio and IPython, often twice ("During handling of the above exception ...").  A
learner needs three things: which line of *their* cell failed, the exception type, and the
message.  Imported in IPython, helpers installs a display that shows exactly that; frames of
library code are counted, not shown, and `%tb` in the next cell still prints the full traceback.
When the trouble is the connection, not the learner's code (out of connections, a connection
that broke, an interrupted cell), a line from `helpers.diagnose` says what happened and what to run.
In a kernel, importing helpers also makes Stop take effect at once (`helpers.interrupts`).

Only how the error is *shown* changes: the cell still fails (Run All stops unless the cell is
tagged `raises-exception`), and `ename`/`evalue` in the stored output are the real ones.
`log_exceptions_briefly()` does the same for `logging.exception`: the exception's own lines, no frames.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from types import TracebackType
from typing import Any

RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


def short_traceback(filename_label: dict[str, str], etype: type[BaseException], value: BaseException,
                    tb: TracebackType | None) -> list[str]:
    """The lines to show: each frame of a notebook cell (`filename_label` maps a cell's file to
    "Cell In[5]"), how many library frames were left out, then `Type: message`."""
    all_frames = traceback.extract_tb(tb)
    first = next((i for i, frame in enumerate(all_frames) if frame.filename in filename_label), 0)
    frames = all_frames[first:]  # before the first cell frame: IPython running the cell
    own = [frame for frame in frames if frame.filename in filename_label]
    hidden = len(frames) - len(own)
    heading = "Traceback (your code" + (f"; {hidden} frame(s) of library code hidden, %tb shows all" if hidden else "") + "):"
    lines = [heading]
    for frame in own:
        lines.append(f"  {filename_label[frame.filename]}, line {frame.lineno}")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    message = str(value)
    lines.append(f"{RED}{BOLD}{etype.__name__}{RESET}" + (f": {message}" if message else ""))
    hint = course_hint(value)
    if hint:
        lines.append(f"{BOLD}The course:{RESET} {hint}")
    return lines


def course_hint(value: BaseException) -> str | None:
    """What the course knows about this error (out of connections, a lost connection, an interrupt), or None."""
    from .diagnose import cell_hint  # asyncpg and the server probe: only when an error is shown

    try:
        return cell_hint(value)
    except Exception:  # a hint must never hide the error it explains
        return None


def _show_short_traceback(shell: Any, etype: type[BaseException], value: BaseException,
                          tb: TracebackType | None, tb_offset: int | None = None) -> list[str]:
    """IPython's custom-exception handler: remember the error for %tb/%debug, then display it."""
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = value
    names = {filename: f"Cell In[{number}]" for filename, number in shell.compile._filename_map.items()}
    stb = short_traceback(names, etype, value, tb)
    shell._showtraceback(etype, value, stb)
    return stb


def install_short_tracebacks() -> bool:
    """Show errors short in the running IPython kernel (a no-op anywhere else)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell.compile, "_filename_map"):
        return False
    shell.set_custom_exc((Exception, asyncio.CancelledError, KeyboardInterrupt), _show_short_traceback)
    from .interrupts import wake_on_interrupt

    wake_on_interrupt()  # and Stop then interrupts an awaiting cell at once, not when its query ends
    return True


class _ExceptionOnlyFormatter(logging.Formatter):
    """A log record's exception as its own lines only (type, message, DETAIL), no frames."""

    def formatException(self, ei: Any) -> str:
        return "".join(traceback.format_exception_only(ei[0], ei[1])).rstrip()


def log_exceptions_briefly(level: int = logging.WARNING) -> None:
    """Log to stderr as `LEVEL:logger: message`, and `logging.exception` without its traceback.

    A real application wants the traceback; a notebook's stored output must be short and the
    same on every run, and frames hold paths and line numbers.  Running it again replaces it.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ExceptionOnlyFormatter("%(levelname)s:%(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler], level=level, force=True)


install_short_tracebacks()
