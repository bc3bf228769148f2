"""The course as a learner meets it: every notebook run from JupyterLab's menu, in Chromium.

Chromium opens each notebook in the private JupyterLab of the harness (harness.py), one at a
time in the same JupyterLab page, waits for the status bar to read the kernel as Idle, and clicks
Run → Run All Cells.

What counts as a failure, per notebook:

- a code cell without an execution count (Run All stopped: a cell raised an error and was not
  tagged `raises-exception`, the tag JupyterLab needs to run on past an error);
- an error output in a cell that is not marked to raise (tag `raises-exception`, or a first
  line `# NBVAL_RAISES_EXCEPTION`), or such a cell that shows no error;
- output on stderr, except where the lesson shows it on purpose: in cells marked to raise, and
  in cells whose stored output has stderr too (logging demonstrations; nbval checks that stored
  output on every run).  A Python warning (`SomethingWarning:`) on stderr outside an error cell
  is never on purpose;
- a cell whose stored output holds a plot (image/png) that does not show it as a loaded,
  visible <img> after the run, and a matplotlib Figure shown as its text `<Figure size …>`.

An exercise's check cell that says "not answered yet" is fine: after Run All on a fresh
notebook every exercise is unanswered, by design.

Notebook 10 measures one round of 1 s windows here (harness.smoke_sized_lab): its full length
runs live under nbval in the same `make test`, and the short run fills every table and plot
the notebook shows.

A screenshot of each whole notebook after its run goes to artifacts/browser/NN_name.jpg.  The
rules themselves are tested without a browser at the end of this module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from .harness import ARTIFACTS, MAX_SCREENSHOT_HEIGHT, NEXT_FRAME_JS, NOTEBOOKS, ROOT, RUN_TIMEOUT, VIEWPORT, Lab, LabWindow

RAISES = "# NBVAL_RAISES_EXCEPTION"
RAISES_TAG = "raises-exception"
NOT_ANSWERED = re.compile(r"not answered yet", re.IGNORECASE)
WARNING_RE = re.compile(r"\b\w*Warning: ")
FIGURE_TEXT_RE = re.compile(r"^<Figure size \d+(\.\d+)?x\d+(\.\d+)? with \d+ Axes>$")


# --- in the page -------------------------------------------------------------------------

KERNEL_STATUS_JS = """
() => [...document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem')]
        .map(e => e.textContent.trim()).find(t => / \\| \\w+$/.test(t)) || ''
"""

# Resolves to {dialog} when a dialog blocks the page, {idle: true} when notebook `name` is the
# one shown, its kernel is idle and the status bar reads Idle.
WAIT_IDLE_JS = """
name => {
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) return {dialog: dialog.innerText};
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.context && panel.context.path === name && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return kernel && kernel.status === 'idle' && /\\| Idle$/.test((%s)()) && {idle: true};
}
""" % KERNEL_STATUS_JS  # noqa: UP031 - JavaScript braces make % the readable choice

# Where Run All is: a dialog, the code cells' prompts ("[3]:", "[*]:", "[ ]:") and the kernel's status.
PROGRESS_JS = """
() => {
  const dialog = document.querySelector('.jp-Dialog');
  const panel = window.jupyterapp.shell.currentWidget;
  const prompts = [...panel.content.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  return {dialog: dialog ? dialog.innerText : null, prompts, kernel: (%s)()};
}
""" % KERNEL_STATUS_JS  # noqa: UP031 - JavaScript braces make % the readable choice
#: Once a cell fails, JupyterLab blanks the "[*]" of every cell still waiting, even those the
#: kernel goes on to run (after a `raises-exception` cell); so "no [*] and Idle" is not the end.
#: The end: every code cell has a count and the kernel is Idle, or (no "[*]" left, kernel Idle)
#: nothing has changed for this long.
SETTLE_SECONDS = 3.0


# The notebook as the page has it (nbformat cells), and per code cell what its outputs show.
RESULTS_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.toJSON().cells;
  const shown = [...panel.content.node.querySelectorAll('.jp-Cell')].map(cell => ({
    prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
    images: [...cell.querySelectorAll('.jp-OutputArea-output img')].map(img => {
      const box = img.getBoundingClientRect();
      return {loaded: img.complete && img.naturalWidth > 0, width: box.width, height: box.height};
    }),
  }));
  return {cells, shown};
}
"""

# How much taller than the notebook's window its cells are (scrolled back to the top).
SCROLL_HEIGHT_JS = """
() => {
  const scroller = window.jupyterapp.shell.currentWidget.node.querySelector('.jp-WindowedPanel-outer');
  const cells = scroller ? scroller.querySelectorAll('.jp-Cell') : [];
  if (!cells.length) return 0;
  scroller.scrollTop = 0;
  const bottom = cells[cells.length - 1].getBoundingClientRect().bottom - scroller.getBoundingClientRect().top;
  return Math.ceil(bottom + 24 - scroller.clientHeight);
}
"""


def _text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _first_line(source: str) -> str:
    return source.split("\n", 1)[0].strip()


def _raise_marker(cell: dict) -> str | None:
    """How the cell says it raises on purpose (its tag, or nbval's comment), or None."""
    if RAISES_TAG in cell.get("metadata", {}).get("tags", []):
        return f"tagged {RAISES_TAG!r}"
    if _text(cell["source"]).startswith(RAISES):
        return f"marked {RAISES}"
    return None


def _stored_pngs(cell: dict) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def check_run(name: str, stored: list[dict], cells: list[dict], shown: list[dict]) -> list[str]:
    """Every problem the run shows, one line each (empty: the notebook ran as a learner expects it to)."""
    if len(cells) != len(stored) or len(shown) != len(stored):
        return [f"{name}: the page has {len(cells)} cells in its model and {len(shown)} on screen, the file {len(stored)}"]
    problems = []
    not_run = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code" and cell.get("execution_count") is None]
    if not_run:
        errors_before = [i for i, cell in enumerate(cells[:not_run[0]]) if cell["cell_type"] == "code"
                         and any(o["output_type"] == "error" for o in cell.get("outputs", []))]
        why = "Run All stopped there"
        if errors_before:
            stop = errors_before[-1]
            tags = cells[stop].get("metadata", {}).get("tags", [])
            why = f"Run All stopped at the error in cell {stop} ({_first_line(_text(cells[stop]['source']))!r})"
            if "raises-exception" not in tags:
                why += ("; JupyterLab runs on past an error only in a cell tagged 'raises-exception', "
                        "and this one has no such tag")
        problems.append(f"{name}: {len(not_run)} code cell(s) never ran, from cell {not_run[0]} on: {why}")
    for index, (cell, before, screen) in enumerate(zip(cells, stored, shown, strict=True)):
        if cell["cell_type"] != "code" or cell.get("execution_count") is None:
            continue
        label = f"{name} cell {index} ({_first_line(_text(cell['source']))[:60]!r})"
        outputs = cell.get("outputs", [])
        # an exercise's check saying "not answered yet" is what Run All leaves, on purpose
        errors = [o for o in outputs if o["output_type"] == "error" and not NOT_ANSWERED.search(_text(o.get("evalue")))]
        stderr = "".join(_text(o.get("text")) for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr")
        marker = _raise_marker(cell)
        if marker:
            if not errors:
                problems.append(f"{label}: {marker} but showed no error")
            continue
        for error in errors:
            problems.append(f"{label}: unexpected error {error.get('ename')}: {_text(error.get('evalue'))[:200]}")
        if stderr and not NOT_ANSWERED.search(stderr):
            stored_stderr = any(o.get("output_type") == "stream" and o.get("name") == "stderr"
                                for o in before.get("outputs", []))
            warning = WARNING_RE.search(stderr)
            if warning or not stored_stderr:
                why = "a Python warning" if warning else "its stored output has none"
                problems.append(f"{label}: unexpected stderr ({why}): {stderr.strip()[:300]!r}")
        for output in outputs:
            data = output.get("data", {})
            if "image/png" not in data and FIGURE_TEXT_RE.match(_text(data.get("text/plain")).strip()):
                problems.append(f"{label}: a matplotlib Figure shown as text, not as an image (no image/png output)")
        wanted = _stored_pngs(before)
        if wanted:
            visible = [i for i in screen["images"] if i["loaded"] and i["width"] > 10 and i["height"] > 10]
            if len(visible) < wanted:
                problems.append(f"{label}: stored output has {wanted} plot(s), the page shows {len(visible)} "
                                f"loaded image(s) ({screen['images']})")
    return problems


def _wait_for_run_all(page) -> dict:
    """Poll until Run All has finished (or stopped, or a dialog opened); return the last progress."""
    deadline = time.monotonic() + RUN_TIMEOUT
    last, since = None, time.monotonic()
    while True:
        state = page.evaluate(PROGRESS_JS)
        idle = state["kernel"].endswith("| Idle")
        if state["dialog"] or (idle and all(re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"])):
            return state
        if state != last:
            last, since = state, time.monotonic()
        elif idle and not any("*" in p for p in state["prompts"]) and time.monotonic() - since >= SETTLE_SECONDS:
            return state  # stopped early: the checks say where and why
        if time.monotonic() > deadline:
            pytest.fail(f"Run All had not finished after {RUN_TIMEOUT:.0f} s (COURSE_BROWSER_TIMEOUT); "
                        f"prompts: {state['prompts']}, kernel: {state['kernel']!r}")
        page.wait_for_timeout(250)


def _screenshot(page, path: Path) -> None:
    """The whole notebook in one picture: the viewport grows to the notebook's height, then shrinks back."""
    extra = page.evaluate(SCROLL_HEIGHT_JS)
    height = min(VIEWPORT["height"] + max(extra, 0), MAX_SCREENSHOT_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.evaluate(NEXT_FRAME_JS)  # JupyterLab lays the cells out again for the new height
    page.evaluate(SCROLL_HEIGHT_JS)
    # JPEG: a third to a half of PNG's encoding time at this size, and text stays sharp at 85
    page.screenshot(path=str(path), type="jpeg", quality=85)
    page.set_viewport_size(VIEWPORT)


@pytest.mark.browser
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(path: Path, lab: Lab, lab_window: LabWindow) -> None:
    name = path.name
    stored = nbformat.read(lab.root / name, as_version=4)["cells"]
    opened = time.monotonic()
    try:
        page = lab_window.open(name)
        state = page.wait_for_function(WAIT_IDLE_JS, arg=name, timeout=120_000, polling=100).json_value()
        assert "dialog" not in state, f"{name}: a dialog blocks the page before running: {state['dialog']!r}"
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")

        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click(".lm-Menu .lm-Menu-item:has(> .lm-Menu-itemLabel:text-is('Run All Cells'))")
        started = time.monotonic()
        state = _wait_for_run_all(page)
        ran = time.monotonic()
        results = page.evaluate(RESULTS_JS)
        _screenshot(page, ARTIFACTS / f"{path.stem}.jpg")
        print(f"\n{name}: kernel idle after {started - opened:.1f} s, Run All {ran - started:.1f} s, "
              f"screenshot {time.monotonic() - ran:.1f} s", end=" ")
        assert not state["dialog"], f"{name}: a dialog opened during Run All: {state['dialog']!r}"

        problems = check_run(name, stored, results["cells"], results["shown"])
        assert not problems, "\n".join(problems)
    finally:
        lab_window.close(name)


# --- the rules themselves (no browser needed) -----------------------------------------------

def _code(source: str, *outputs: dict, count: int | None = 1, tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "source": source, "execution_count": count, "outputs": list(outputs),
            "metadata": {"tags": list(tags)} if tags else {}}


STDERR_LOG = {"output_type": "stream", "name": "stderr", "text": "WARNING:root: rolled back\n"}
STDERR_WARNING = {"output_type": "stream", "name": "stderr", "text": "x.py:1: TqdmWarning: IProgress not found\n"}
ERROR = {"output_type": "error", "ename": "UniqueViolationError", "evalue": "duplicate key", "traceback": []}
FIGURE_TEXT = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 700x400 with 1 Axes>"}}
FIGURE = {"output_type": "execute_result", "data": {"text/plain": "<Figure size 700x400 with 1 Axes>",
                                                    "image/png": "iVBOR"}}
NO_IMAGES = {"prompt": "[1]:", "images": []}
ONE_IMAGE = {"prompt": "[1]:", "images": [{"loaded": True, "width": 690, "height": 390}]}


def _check(cells: list[dict], stored: list[dict] | None = None, shown: list[dict] | None = None) -> list[str]:
    return check_run("nb", stored or cells, cells, shown or [NO_IMAGES] * len(cells))


def test_rules_accept_errors_and_stderr_shown_on_purpose() -> None:
    cells = [_code(f"{RAISES}\nawait boom()", ERROR, STDERR_WARNING), _code("logging.warning(...)", STDERR_LOG)]
    assert _check(cells) == []


def test_rules_reject_what_the_lesson_does_not_show() -> None:
    stored = [_code("x = 1"), _code("log()"), _code(f"{RAISES}\nfine()"), _code("import helpers", STDERR_WARNING)]
    run = [_code("x = 1", ERROR), _code("log()", STDERR_LOG), _code(f"{RAISES}\nfine()"),
           _code("import helpers", STDERR_WARNING)]
    problems = _check(run, stored)
    assert len(problems) == 4, problems
    assert "unexpected error UniqueViolationError" in problems[0]
    assert "unexpected stderr (its stored output has none)" in problems[1]
    assert f"marked {RAISES} but showed no error" in problems[2]
    assert "unexpected stderr (a Python warning)" in problems[3]


def test_rules_explain_where_run_all_stopped() -> None:
    cells = [_code(f"{RAISES}\nboom()", ERROR), _code("after()", count=None), _code("more()", count=None)]
    (problem,) = _check(cells)
    assert "2 code cell(s) never ran, from cell 1 on" in problem and "tagged 'raises-exception'" in problem
    cells[0]["metadata"] = {"tags": ["raises-exception"]}
    assert "and this one has no such tag" not in _check(cells)[0]


def test_rules_take_the_raises_exception_tag_alone() -> None:
    """nbval 0.11 and JupyterLab need only the tag; the comment may go."""
    tagged = [_code("await boom()", ERROR, STDERR_WARNING, tags=("raises-exception",))]
    assert _check(tagged) == []
    (problem,) = _check([_code("fine()", tags=("raises-exception",))])
    assert "tagged 'raises-exception' but showed no error" in problem


def test_rules_accept_exercises_not_answered_yet() -> None:
    not_answered = {"output_type": "stream", "name": "stdout", "text": "Exercise 1: not answered yet\n"}
    warned = {"output_type": "stream", "name": "stderr", "text": "UserWarning: Exercise 2: not answered yet\n"}
    cells = [_code("# Check\ncheck_exercise_1()", not_answered), _code("# Check\ncheck_exercise_2()", warned)]
    assert _check(cells) == []
    assert "unexpected error" in _check([_code("# Check\ncheck()", ERROR)])[0], "other errors still count"


def test_rules_want_plots_as_images() -> None:
    assert "shown as text" in _check([_code("plot()", FIGURE_TEXT)])[0]
    stored = [_code("plot()", FIGURE)]
    assert _check(stored, stored, [ONE_IMAGE]) == []
    assert "the page shows 0 loaded image(s)" in _check(stored, stored, [NO_IMAGES])[0]


def test_without_chromium_the_browser_tests_skip_with_a_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__).parent), "-m", "browser", "-p", "no:cacheprovider", "-rs",
         "-o", "addopts=", "-q"],
        env={**os.environ, "COURSE_CHROMIUM": str(missing)}, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Chromium not found at {missing}" in result.stdout
    assert re.search(r"\b\d+ skipped\b", result.stdout) and " passed" not in result.stdout



def test_make_lab_switches_off_jupyterlab_news() -> None:
    """`make lab` writes overrides.json into the app directory JupyterLab reads, with a value its schema allows."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: .*\$\(LAB_OVERRIDES\)", makefile, re.M), "make lab must install the overrides"
    folder = re.search(r"^LAB_OVERRIDES := \$\(VENV\)/(\S+)/overrides\.json$", makefile, re.M)[1]
    overrides = json.loads(re.search(r"echo '(\{.*\})' > \$@", makefile)[1])
    plugin = "@jupyterlab/apputils-extension:notification"
    assert overrides[plugin]["fetchNews"] == "false", overrides
    app_dir = subprocess.run([str(Path(sys.prefix) / "bin" / "jupyter"), "lab", "path"], capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert re.search(r"Application directory:\s+(\S+)", app_dir)[1] == str(Path(sys.prefix) / "share/jupyter/lab")
    assert folder == "share/jupyter/lab/settings", folder
    schema = json.loads((Path(sys.prefix) / "share/jupyter/lab/schemas" / plugin.replace(":", "/")
                         ).with_suffix(".json").read_text())
    assert "false" in [choice["const"] for choice in schema["properties"]["fetchNews"]["oneOf"]]
