"""The course as a learner meets it: JupyterLab in a real Chromium, every notebook run from the menu.

One `jupyter lab` (from .venv/bin) serves a temporary copy of notebooks/ on 127.0.0.1 with a
token, fresh settings and workspace directories, and a database prefix of its own
(`<prefix>_browser`), so its kernels never drop a database that nbval or a learner is using.
Chromium (Debian's /usr/bin/chromium, driven by Playwright for Python) opens each notebook,
waits for the status bar to read the kernel as Idle, and clicks Run → Run All Cells.
Nothing is ever saved: autosave is off and the server only sees the copy.

What counts as a failure, per notebook:

- a code cell without an execution count (Run All stopped: a cell raised an error and was not
  tagged `raises-exception`, the tag JupyterLab needs to run on past an error);
- an error output in a cell whose source does not start with `# NBVAL_RAISES_EXCEPTION`, or
  such a cell that shows no error;
- output on stderr, except where the lesson shows it on purpose: in `# NBVAL_RAISES_EXCEPTION`
  cells, and in cells whose stored output has stderr too (logging demonstrations; nbval checks
  that stored output on every run).  A Python warning (`SomethingWarning:`) on stderr outside
  an error cell is never on purpose;
- a cell whose stored output holds a plot (image/png) that does not show it as a loaded,
  visible <img> after the run, and a matplotlib Figure shown as its text `<Figure size …>`.

A screenshot of each whole notebook after its run goes to artifacts/browser/NN_name.png, and the
server's log to artifacts/browser/jupyter-lab.log.  The server (and its kernels) is stopped
through its shutdown API.

Another browser test builds one static HTML page and one slide deck (helpers.site, as `make
html` and `make slides` do) and opens them in Chromium with every request recorded: nothing may
leave localhost or file://.  The tests marked `browser` are skipped, with the reason, when
Chromium is missing; the tests of the rules above and of that skip need no browser.

Settings: COURSE_CHROMIUM (default /usr/bin/chromium; missing → every test here is skipped),
COURSE_BROWSER_TIMEOUT (seconds one notebook's Run All may take, default 300),
COURSE_BROWSER_NOTEBOOKS (another folder of notebooks, for developing this test).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest

from helpers import config, connect, course_databases, server_dsn
from helpers.databases import quote_ident, template_name

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = Path(os.environ.get("COURSE_BROWSER_NOTEBOOKS") or ROOT / "notebooks").resolve()
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM") or "/usr/bin/chromium")
RUN_TIMEOUT = float(os.environ.get("COURSE_BROWSER_TIMEOUT") or 300)
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 900}
MAX_SCREENSHOT_HEIGHT = 30_000

RAISES = "# NBVAL_RAISES_EXCEPTION"
WARNING_RE = re.compile(r"\b\w*Warning: ")
FIGURE_TEXT_RE = re.compile(r"^<Figure size \d+(\.\d+)?x\d+(\.\d+)? with \d+ Axes>$")

#: JupyterLab settings of a fresh user: no news or update checks, no autosave, every cell
#: rendered (no windowing), so the checks and screenshots see the whole notebook.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


# --- JupyterLab server ---------------------------------------------------------------------

@dataclass
class Lab:
    url: str  # ends with "/"
    token: str
    root: Path  # the copy of the notebooks the server serves
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, timeout: float = 10) -> object:
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def close_sessions(self, name: str) -> None:
        """Shut down the kernel of notebook `name` (its session), as closing it in JupyterLab would."""
        for session in self.api("GET", "api/sessions"):  # type: ignore[union-attr]
            if session["path"] == name:
                self.api("DELETE", f"api/sessions/{session['id']}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_db_prefix() -> str:
    """The course's prefix plus `_browser` (at most 30 characters, like every prefix)."""
    return config.db_prefix()[:21] + "_browser"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install chromium) "
                    "or point COURSE_CHROMIUM at a Chromium binary")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed in this environment")
    return CHROMIUM


@pytest.fixture(scope="module")
def lab(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One `jupyter lab` for the whole module, on a copy of the notebooks, stopped through its API."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    settings = base / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    for name in ("workspaces", "config", "data", "runtime", "ipython"):
        (base / name).mkdir()
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),  # notebook signatures land here, not in ~/.local
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "COURSE_DB_PREFIX": browser_db_prefix(),
    }
    token, port = secrets.token_hex(16), free_port()
    command = [
        str(ROOT / ".venv" / "bin" / "jupyter"), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the notebook model, as the page has it
        # a safety net should this process die without stopping the server
        "--MappingKernelManager.cull_idle_timeout=900", "--ServerApp.shutdown_no_activity_timeout=900",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "jupyter-lab.log").open("wb")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}/", token, root, process)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        _stop(server)
        log.close()
        asyncio.run(_drop_notebook_databases(env["COURSE_DB_PREFIX"]))


async def _drop_notebook_databases(prefix: str) -> None:
    """Drop the databases the kernels made under the browser prefix; keep its template for the next run."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_DB_PREFIX", prefix)
        names = [n for n in await course_databases() if n != template_name()]
        admin = await connect(server_dsn())
        try:
            for name in names:
                await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        finally:
            await admin.close()


def _wait_until_serving(lab: Lab, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {lab.process.returncode}; see {ARTIFACTS / 'jupyter-lab.log'}")
        try:
            lab.api("GET", "api/status", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s; see {ARTIFACTS / 'jupyter-lab.log'}")


def _stop(lab: Lab) -> None:
    """POST /api/shutdown stops the server and every kernel it started; signals only if it does not."""
    if lab.process.poll() is None:
        try:
            lab.api("POST", "api/shutdown")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
    try:
        lab.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(lab.process.pid, signal.SIGTERM)  # the server's own process group: it and its kernels
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait()


# --- Chromium ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab_context(browser, lab: Lab):  # noqa: ANN001, ANN201 - Playwright objects
    """One browser profile for all notebooks: JupyterLab's scripts are loaded from its cache after the first."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    yield context
    context.close()


# --- in the page -------------------------------------------------------------------------

KERNEL_STATUS_JS = """
() => [...document.querySelectorAll('#jp-main-statusbar .jp-StatusBar-TextItem')]
        .map(e => e.textContent.trim()).find(t => / \\| \\w+$/.test(t)) || ''
"""

# Resolves to {dialog} when a dialog blocks the page, {idle: true} when the status bar reads Idle.
WAIT_IDLE_JS = """
() => {
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) return {dialog: dialog.innerText};
  const status = (%s)();
  return /\\| Idle$/.test(status) && window.jupyterapp && {idle: true};
}
""" % KERNEL_STATUS_JS

# Where Run All is: a dialog, the code cells' prompts ("[3]:", "[*]:", "[ ]:") and the kernel's status.
PROGRESS_JS = """
() => {
  const dialog = document.querySelector('.jp-Dialog');
  const panel = window.jupyterapp.shell.currentWidget;
  const prompts = [...panel.content.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  return {dialog: dialog ? dialog.innerText : null, prompts, kernel: (%s)()};
}
""" % KERNEL_STATUS_JS
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
    for index, (cell, before, screen) in enumerate(zip(cells, stored, shown)):
        if cell["cell_type"] != "code" or cell.get("execution_count") is None:
            continue
        label = f"{name} cell {index} ({_first_line(_text(cell['source']))[:60]!r})"
        outputs = cell.get("outputs", [])
        errors = [o for o in outputs if o["output_type"] == "error"]
        stderr = "".join(_text(o.get("text")) for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr")
        if _text(cell["source"]).startswith(RAISES):
            if not errors:
                problems.append(f"{label}: marked {RAISES} but showed no error")
            continue
        for error in errors:
            problems.append(f"{label}: unexpected error {error.get('ename')}: {_text(error.get('evalue'))[:200]}")
        if stderr:
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


def _wait_for_run_all(page) -> dict:  # noqa: ANN001
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


def _screenshot(page, path: Path) -> None:  # noqa: ANN001
    """The whole notebook in one picture: the viewport grows to the notebook's height, then shrinks back."""
    extra = page.evaluate(SCROLL_HEIGHT_JS)
    height = min(VIEWPORT["height"] + max(extra, 0), MAX_SCREENSHOT_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.wait_for_timeout(300)  # one layout pass
    page.evaluate(SCROLL_HEIGHT_JS)
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)


@pytest.mark.browser
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(path: Path, lab: Lab, lab_context) -> None:  # noqa: ANN001
    name = path.name
    stored = nbformat.read(lab.root / name, as_version=4)["cells"]
    page = lab_context.new_page()
    opened = time.monotonic()
    try:
        # `reset` starts from an empty workspace: only this notebook opens (and only its kernel starts).
        page.goto(f"{lab.url}lab/tree/{quote(name)}?reset&token={lab.token}")
        state = page.wait_for_function(WAIT_IDLE_JS, timeout=120_000).json_value()
        assert "dialog" not in state, f"{name}: a dialog blocks the page before running: {state['dialog']!r}"
        page.evaluate("() => window.jupyterapp.shell.collapseLeft()")

        page.click(".lm-MenuBar-item:has-text('Run')")
        page.click(".lm-Menu .lm-Menu-item:has(> .lm-Menu-itemLabel:text-is('Run All Cells'))")
        started = time.monotonic()
        state = _wait_for_run_all(page)
        ran = time.monotonic()
        results = page.evaluate(RESULTS_JS)
        _screenshot(page, ARTIFACTS / f"{path.stem}.png")
        print(f"\n{name}: kernel idle after {started - opened:.1f} s, Run All {ran - started:.1f} s, "
              f"screenshot {time.monotonic() - ran:.1f} s", end=" ")
        assert not state["dialog"], f"{name}: a dialog opened during Run All: {state['dialog']!r}"

        problems = check_run(name, stored, results["cells"], results["shown"])
        assert not problems, "\n".join(problems)
    finally:
        page.close()
        lab.close_sessions(name)


# --- the static copies (make html, make slides) work offline ------------------------------

LOCAL_URL = re.compile(r"(file|data|blob|about):|https?://(127\.0\.0\.1|localhost)(:\d+)?/")


@dataclass
class OfflinePage:
    page: object  # a Playwright Page
    outside: list[str]  # requests beyond file:// and localhost (all blocked)
    errors: list[str]  # uncaught script errors


def _open_offline(context, url: str) -> OfflinePage:  # noqa: ANN001
    """A new page at `url` that records (and blocks) every request beyond file:// and localhost."""
    opened = OfflinePage(context.new_page(), [], [])
    page = opened.page
    page.on("request", lambda request: None if LOCAL_URL.match(request.url) else opened.outside.append(request.url))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.route(re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"), lambda route: route.abort())
    page.goto(url, wait_until="load")
    page.wait_for_timeout(1000)  # module scripts, fonts and diagrams finish after `load`
    return opened


def _diagrams(page) -> tuple[int, int]:  # noqa: ANN001
    """(Mermaid diagrams on the page, diagrams drawn as an image)."""
    page.wait_for_function("() => [...document.querySelectorAll('.jp-Mermaid')].every("
                           "d => d.querySelector('img') || d.classList.contains('jp-mod-warning'))", timeout=15_000)
    return page.locator(".jp-Mermaid").count(), page.locator(".jp-Mermaid img").count()


@pytest.mark.browser
def test_static_html_and_slides_load_nothing_from_outside(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """`make html` and `make slides` pages open from file:// with no request beyond the machine."""
    from helpers import site

    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    try:
        site.fetch_vendor()
    except site.VendorError as error:
        pytest.skip(f"the static copies need npm to fetch reveal.js and Mermaid: {error}")
    # a notebook with a Mermaid diagram if there is one (it loads the most), else the first
    sample = next((p for p in NOTEBOOKS if "```mermaid" in p.read_text()), NOTEBOOKS[0])
    html_page = site.build_html(tmp_path / "html", [sample])[0]
    deck = site.build_slides(tmp_path / "slides", [sample])[0]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        html = _open_offline(context, html_page.as_uri())
        diagrams, drawn = _diagrams(html.page)
        html.page.screenshot(path=str(ARTIFACTS / f"html-{sample.stem}.png"))
        assert not html.outside, f"the HTML page asked for {html.outside}"
        assert not html.errors, f"script errors in the HTML page: {html.errors}"
        assert drawn == diagrams, f"{diagrams} Mermaid diagram(s), {drawn} drawn"

        index = _open_offline(context, (html_page.parent / "index.html").as_uri())
        assert not index.outside, f"the index asked for {index.outside}"
        assert index.page.locator(f"a[href='{html_page.name}']").count() == 1

        slides = _open_offline(context, deck.as_uri())
        page = slides.page
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=15_000)
        count = page.evaluate("() => Reveal.getTotalSlides()")
        diagrams, drawn = _diagrams(page)
        for _ in range(count):  # every slide once: nothing may load on the way either
            page.evaluate("() => Reveal.next()")
        page.evaluate("() => Reveal.slide(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / f"slides-{sample.stem}.png"))
        assert not slides.outside, f"the slides asked for {slides.outside}"
        assert not slides.errors, f"script errors in the slides: {slides.errors}"
        assert drawn == diagrams, f"{diagrams} Mermaid diagram(s) in the slides, {drawn} drawn"
        assert count > 3, f"only {count} slides: is the slides metadata there?"
    finally:
        context.close()


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


def test_rules_want_plots_as_images() -> None:
    assert "shown as text" in _check([_code("plot()", FIGURE_TEXT)])[0]
    stored = [_code("plot()", FIGURE)]
    assert _check(stored, stored, [ONE_IMAGE]) == []
    assert "the page shows 0 loaded image(s)" in _check(stored, stored, [NO_IMAGES])[0]


def test_without_chromium_the_browser_tests_skip_with_a_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__)), "-m", "browser", "-p", "no:cacheprovider", "-rs",
         "-o", "addopts=", "-q"],
        env={**os.environ, "COURSE_CHROMIUM": str(missing)}, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Chromium not found at {missing}" in result.stdout
    assert re.search(r"\b\d+ skipped\b", result.stdout) and " passed" not in result.stdout


def test_static_pages_link_pages_and_take_titles_from_headings() -> None:
    from nbformat.v4 import new_markdown_cell, new_notebook

    from helpers import site

    notebook = new_notebook(cells=[
        new_markdown_cell("# 09 · Cursors\n\nA cursor *streams* a [query](https://example.org)'s `rows`.\n\n"
                          "## What you will learn\n\n- one"),
        new_markdown_cell("**Next:** [10 · Performance lab](10_performance_lab.ipynb#setup)"),
        new_markdown_cell("**Next:** [Back to the start](../README.md)"),
    ])
    page = site._for_pages(notebook, "09_cursors")
    assert site.title_of(notebook, "x") == page.metadata["title"] == "09 · Cursors"
    assert site.summary_of(notebook) == "A cursor streams a query's rows."
    assert page.cells[1].source == "**Next:** [10 · Performance lab](10_performance_lab.html#setup)"
    assert page.cells[2].source == "**Next:** [Back to the start](index.html)"
    assert notebook.cells[1].source.endswith(".ipynb#setup)"), "the notebook itself is left alone"
