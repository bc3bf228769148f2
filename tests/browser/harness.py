"""The browser tests' harness: Chromium (Debian's, driven by Playwright) and a private JupyterLab.

One `jupyter lab` (from .venv/bin) serves a temporary copy of notebooks/ on 127.0.0.1 with a
token, fresh settings and workspace directories, and a database prefix of its own
(`<prefix>_browser`), so its kernels never drop a database that nbval or a learner is using.
Nothing is ever saved: autosave is off and the server only sees the copy.  The server (and
its kernels) is stopped through its shutdown API; its log goes to
artifacts/browser/jupyter-lab.log.

All notebooks of a module run in one JupyterLab page (LabWindow): the app's scripts and
plugins (3-6 s per page load on a busy 2-core machine) start once, and each notebook is then
opened in it as from the file browser, alone in the main area, with a kernel of its own.

The fixtures (tests/browser/conftest.py) skip every test that needs Chromium, with the
reason, when it is missing.  Settings: COURSE_CHROMIUM (default /usr/bin/chromium),
COURSE_BROWSER_TIMEOUT (seconds one notebook's Run All may take, default 300),
COURSE_BROWSER_NOTEBOOKS (another folder of notebooks, for developing these tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from helpers import config, course_databases, names
from helpers.connection import admin
from helpers.databases import drop_database, template_name
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = Path(os.environ.get("COURSE_BROWSER_NOTEBOOKS") or ROOT / "notebooks").resolve()
NOTEBOOKS = config.notebook_paths(NOTEBOOK_DIR)
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


#: Resolves after the next two frames: the browser has laid the page out again and painted it.
NEXT_FRAME_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


class LabWindow:
    """One JupyterLab page that opens one notebook at a time, as a learner does from the file
    browser; loaded again only when a test left it in doubt (a dialog open, the page gone)."""

    def __init__(self, context, lab: Lab) -> None:  # context: a Playwright BrowserContext
        self.context, self.lab = context, lab
        self.page = None

    def open(self, name: str):
        """The page with notebook `name` opening in it (its kernel starting), nothing else open."""
        if self.page is None or self.page.is_closed():
            self.page = self.context.new_page()
            # `reset` starts from an empty workspace: no notebook opens with the app
            self.page.goto(f"{self.lab.url}lab?reset&token={self.lab.token}")
            self.page.wait_for_function("() => window.jupyterapp", timeout=120_000, polling=100)
            self.page.evaluate("() => window.jupyterapp.restored.then(() => true)")
        self.page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', "
                           "{path, factory: 'Notebook'}).then(() => true)", name)
        return self.page

    def close(self, name: str) -> None:
        """Close notebook `name` without saving and shut down its kernel; a page left with a dialog
        open is dropped, so the next notebook starts in a new one."""
        from playwright.sync_api import Error as PageError

        if self.page is not None and not self.page.is_closed():
            try:
                stuck = self.page.evaluate("() => { for (const w of [...window.jupyterapp.shell.widgets('main')]) "
                                           "w.dispose(); return !!document.querySelector('.jp-Dialog'); }")
            except PageError:  # a page whose app broke is replaced
                stuck = True
            if stuck:
                self.page.close()
                self.page = None
        self.lab.close_sessions(name)

    def quit(self) -> None:
        if self.page is not None and not self.page.is_closed():
            self.page.close()


def browser_db_prefix() -> str:
    """A prefix of the browser run's own, derived from the course's (valid whatever its length)."""
    return names.sub_prefix(config.prefix_and_source()[0], "browser")


#: Notebook 10 measures for about a minute (2 s windows, 3 rounds), live under nbval in the same
#: `make test`.  In Chromium the copy measures one round of 1 s windows instead, which fills every
#: table and plot the notebook shows; what the browser checks (Run All in JupyterLab, plots shown,
#: no stray stderr) is the same at any length.  Only this line is added, to the setup cell of the copy.
LAB_NOTEBOOK, SETUP_LINE = "10_performance_lab.ipynb", 'DSN = await notebook_database("10_performance_lab")'
SHORT_LAB = "\nlab.WINDOW, lab.ROUNDS = 1.0, 1   # the browser test's copy: short windows, one round"


def smoke_sized_lab(root: Path) -> None:
    path = root / LAB_NOTEBOOK
    if not path.exists():  # COURSE_BROWSER_NOTEBOOKS may name another folder
        return
    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and SETUP_LINE in cell.source]
    if len(cells) != 1:  # a renamed line must fail here, not quietly bring the minute back
        raise AssertionError(f"{LAB_NOTEBOOK}: expected one code cell with {SETUP_LINE!r}, found {len(cells)}")
    cells[0].source = cells[0].source.replace(SETUP_LINE, SETUP_LINE + SHORT_LAB)
    nbformat.write(notebook, path)


@contextmanager
def running_lab(base: Path) -> Iterator[Lab]:
    """`jupyter lab` on a copy of the notebooks under `base`, stopped through its API at the end,
    and the databases its kernels made dropped."""
    root = base / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    smoke_sized_lab(root)
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
        kernels_made = [n for n in await course_databases() if n != template_name()]
        async with admin() as conn:
            for name in kernels_made:
                await drop_database(conn, name)


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
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            lab.api("POST", "api/shutdown")
    try:
        lab.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(lab.process.pid, signal.SIGTERM)  # the server's own process group: it and its kernels
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait()

