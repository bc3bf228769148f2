"""A class on a real JupyterHub, set up the way docs/instructor-guide.md says.

JupyterHub (the `hub` extra) behind configurable-http-proxy from npm (COURSE_CHP names it;
`.ci/run` installs it), DummyAuthenticator and SimpleLocalProcessSpawner, the guide's own
`jupyterhub_config.py` block, a PostgreSQL 15 class server set up with `course class setup`.
Three learners get the course through an nbgitpuller link and run notebooks 01, 04 and 05 at
the same time, each through their own single-user server (REST API, then the kernel's
websocket, as JupyterLab does), while `team` resets its databases.  Not part of `make test`:
`.ci/run` runs it as its own stage (`pytest tests/hub`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

import asyncpg
import pytest

from helpers import names
from helpers.admin.classroom import hub_prefix
from helpers.config import REPO_ROOT
from tests.pg_other import free_port, other_bin_dir, other_server, skip_reason

pytest.importorskip("jupyterhub", reason="the hub extra is not installed (.ci/run installs it)")
pytest.importorskip("nbgitpuller", reason="the hub extra is not installed (.ci/run installs it)")
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import websocket_connect

GUIDE = REPO_ROOT / "docs" / "instructor-guide.md"
VENV_BIN = Path(sys.executable).parent
LEARNERS = ["Carol.Smith", "team", "team_3"]
NOTEBOOKS = ["01_connect", "04_connection_pools", "05_transactions"]
DEMO_PASSWORD = "hub-test-demo-" + secrets.token_hex(4)
CELL_TIMEOUT = 600

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def chp_command() -> Path | None:
    explicit = os.environ.get("COURSE_CHP")
    found = Path(explicit) if explicit else REPO_ROOT / "build" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
    return found if found.exists() else None


def guide_config() -> str:
    """The guide's `jupyterhub_config.py` block, as written there (its indentation removed)."""
    text = GUIDE.read_text()
    match = re.search(r"\n( *)```python\n\1(# jupyterhub_config\.py.*?)\n\1```", text, re.S)
    assert match, "docs/instructor-guide.md has no ```python block starting with '# jupyterhub_config.py'"
    indent = match.group(1)
    return "\n".join(line.removeprefix(indent) for line in match.group(2).splitlines()) + "\n"


def nbgitpuller_query(repo: str, branch: str) -> str:
    """The query of the guide's link (the API endpoint takes the same one the link's page sends)."""
    return urlencode({"repo": repo, "branch": branch, "targetpath": "asyncpg-course"})


def guide_link() -> str:
    """The guide's nbgitpuller link, as written there."""
    match = re.search(r"https://HUB(/hub/user-redirect/git-pull\?\S+)", GUIDE.read_text())
    assert match, "docs/instructor-guide.md gives no nbgitpuller link"
    return match.group(1)


# -- the hub --------------------------------------------------------------------------------
@dataclass
class Hub:
    url: str
    token: str
    homes: Path
    log: Path
    http: AsyncHTTPClient = field(default_factory=AsyncHTTPClient)

    async def api(self, method: str, path: str, body: object = None, *, raw: bool = False,
                  request_timeout: float = 60) -> object:
        request = HTTPRequest(self.url + path, method=method, headers={"Authorization": f"token {self.token}"},
                              body=None if body is None else json.dumps(body), allow_nonstandard_methods=True,
                              request_timeout=request_timeout)
        response = await self.http.fetch(request, raise_error=False)
        if response.code >= 400:
            raise AssertionError(f"{method} {path}: {response.code} {response.body.decode(errors='replace')[:500]}")
        if raw:
            return response.body.decode()
        return json.loads(response.body) if response.body else None

    async def start_server(self, name: str) -> None:
        await self.api("POST", f"/hub/api/users/{quote(name)}/server")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            model = await self.api("GET", f"/hub/api/users/{quote(name)}")
            assert isinstance(model, dict)
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"{name}'s server did not start within 120 s; see {self.log}")


@pytest.fixture(scope="module")
def class_server() -> Iterator[object]:
    if other_bin_dir() is None:
        pytest.skip(skip_reason())
    with other_server() as server:
        yield server


@pytest.fixture(scope="module")
def class_file(class_server: object, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """`course class setup` as the guide's step 2 gives it, the demo password by environment."""
    out = tmp_path_factory.mktemp("class") / "class.json"
    args = ["class", "setup", *[arg for name in LEARNERS for arg in ("--learner", name)], "--out", str(out), "--templates"]
    done = subprocess.run([str(VENV_BIN / "course"), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DATABASE_URL": class_server.dsn(),  # type: ignore[attr-defined]
                               "COURSE_DEMO_PASSWORD": DEMO_PASSWORD})
    assert done.returncode == 0, done.stderr
    assert DEMO_PASSWORD not in done.stdout + done.stderr
    for name in LEARNERS:  # each template built beforehand, as its learner's own role
        assert f"template ready: {names.template_name(hub_prefix(name))}, built as {hub_prefix(name)} " in done.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    data: dict[str, object] = json.loads(out.read_text())
    data["path"] = str(out)
    return data


@pytest.fixture(scope="module")
def course_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the course as a git repository the learners pull from (the instructor's remote)."""
    repo = tmp_path_factory.mktemp("remote") / "asyncpg-course"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO_ROOT), str(repo)], check=True)
    branch = subprocess.run(["git", "-C", str(repo), "branch", "--show-current"], capture_output=True, text=True,
                            check=True).stdout.strip() or "main"
    for key, value in (("user.name", "Instructor"), ("user.email", "instructor@example.invalid")):
        subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
    return repo, branch


@pytest.fixture(scope="module")
def hub(class_file: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    chp = chp_command()
    if chp is None:
        pytest.skip("configurable-http-proxy is not installed (.ci/run installs it with npm; COURSE_CHP names it)")
    work = tmp_path_factory.mktemp("hub")
    homes = work / "homes"
    token = secrets.token_hex(32)
    port, hub_port, api_port = free_port(), free_port(), free_port()
    config = guide_config() + f"""
# -- the test's part: loopback addresses, a dummy login, every learner as this OS user --------
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(chp)!r}]
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(homes)!r} + "/{{username}}"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.args = ["--ServerApp.allow_root=True"] if os.getuid() == 0 else []
c.JupyterHub.db_url = "sqlite:///{work / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(work / 'cookie_secret')!r}
c.JupyterHub.services = [{{"name": "course-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "course-test", "services": ["course-test"],
                             "scopes": ["admin:users", "admin:servers", "access:servers", "tokens"]}}]
"""
    (work / "jupyterhub_config.py").write_text(config)
    log = work / "jupyterhub.log"
    env = {**os.environ, "COURSE_DIR": str(REPO_ROOT), "COURSE_CLASS_FILE": str(class_file["path"])}
    for name in ("DATABASE_URL", "COURSE_DB_PREFIX", "COURSE_DEMO_PASSWORD", "JUPYTERHUB_USER"):
        env.pop(name, None)
    with log.open("w") as out:
        process = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(work / "jupyterhub_config.py")],
                                   cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        hub = Hub(f"http://127.0.0.1:{port}", token, homes, log)
        asyncio.run(_wait_for_hub(hub, process))
        yield hub
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_for_hub(hub: Hub, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"jupyterhub exited with {process.returncode}:\n{hub.log.read_text()[-3000:]}")
        try:
            await hub.api("GET", "/hub/api/", request_timeout=5)
            return
        except Exception:  # not up yet
            await asyncio.sleep(0.5)
    raise AssertionError(f"jupyterhub did not answer within 90 s:\n{hub.log.read_text()[-3000:]}")


# -- one learner's server: nbgitpuller, contents, kernels -------------------------------------
@dataclass
class CellResult:
    index: int
    tags: list[str]
    source: str
    outputs: list[dict[str, object]]
    error: str | None


async def git_pull(hub: Hub, user: str, repo: Path, branch: str) -> list[dict[str, object]]:
    """What the nbgitpuller link's page does: read the pull's event stream until it ends."""
    text = await hub.api("GET", f"/user/{user}/git-pull/api?{nbgitpuller_query(f'file://{repo}', branch)}",
                         raw=True, request_timeout=300)
    assert isinstance(text, str)
    events = [json.loads(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]
    assert events and events[-1].get("phase") == "finished", events[-3:]
    return events


async def run_notebook(hub: Hub, user: str, path: str) -> list[CellResult]:
    """Every code cell of the learner's copy of `path`, in order, in a fresh kernel of their server."""
    model = await hub.api("GET", f"/user/{user}/api/contents/{quote(path)}?content=1&type=notebook")
    assert isinstance(model, dict)
    notebook = model["content"]
    kernel_name = notebook["metadata"]["kernelspec"]["name"]
    session = await hub.api("POST", f"/user/{user}/api/sessions",
                            {"path": path, "type": "notebook", "name": "", "kernel": {"name": kernel_name}})
    assert isinstance(session, dict)
    kernel = session["kernel"]["id"]
    try:
        return await _execute_cells(hub, user, kernel, notebook["cells"])
    finally:
        await hub.api("DELETE", f"/user/{user}/api/sessions/{session['id']}")


async def _execute_cells(hub: Hub, user: str, kernel: str, cells: list[dict[str, object]]) -> list[CellResult]:
    url = hub.url.replace("http", "ws", 1) + f"/user/{user}/api/kernels/{kernel}/channels?session_id={uuid.uuid4()}"
    socket = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {hub.token}"}),
                                     max_message_size=64 << 20)
    session = uuid.uuid4().hex
    results = []
    try:
        for index, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else str(cell["source"])
            tags = list(cell.get("metadata", {}).get("tags", []))  # type: ignore[union-attr]
            results.append(await _execute(socket, session, index, source, tags))
            if results[-1].error and "raises-exception" not in tags:
                break  # Run All stops here too
    finally:
        socket.close()
    return results


async def _execute(socket: object, session: str, index: int, source: str, tags: list[str]) -> CellResult:
    msg_id = uuid.uuid4().hex
    socket.write_message(json.dumps({  # type: ignore[attr-defined]
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": session,
                   "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": source, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": False},
    }))
    outputs: list[dict[str, object]] = []
    error = None
    idle = replied = False
    deadline = time.monotonic() + CELL_TIMEOUT
    while not (idle and replied):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"cell {index} did not finish within {CELL_TIMEOUT} s:\n{source}")
        raw = await asyncio.wait_for(socket.read_message(), remaining)  # type: ignore[attr-defined]
        if raw is None:
            raise AssertionError(f"the kernel's websocket closed during cell {index}")
        message = json.loads(raw)
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind in ("stream", "execute_result", "display_data", "error"):
            outputs.append({"type": kind, **content})
            if kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
        elif kind == "execute_reply":
            replied = True
    return CellResult(index, tags, source, outputs, error)


def text_of(result: CellResult) -> str:
    parts = []
    for output in result.outputs:
        if output["type"] == "stream":
            parts.append(str(output["text"]))
        elif output["type"] == "error":
            parts.append("\n".join(map(str, output.get("traceback", []))) + f"\n{output['ename']}: {output['evalue']}")
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))  # type: ignore[union-attr]
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))


def assert_passes(user: str, notebook: str, results: list[CellResult]) -> None:
    """Every cell ran; errors only where a cell shows one on purpose; every exercise unanswered."""
    for result in results:
        if result.error and "raises-exception" not in result.tags:
            raise AssertionError(f"{user}: {notebook} cell {result.index} failed: {result.error}\n"
                                 f"{result.source}\n{text_of(result)[-3000:]}")
        if result.source.startswith("# Check"):
            assert "not answered yet" in text_of(result), (user, notebook, result.index, text_of(result))


# -- the PostgreSQL side --------------------------------------------------------------------
class PeakConnections:
    """The most client connections pg_stat_activity showed while the class ran (this one excluded)."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.peak, self.samples = dsn, 0, 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PeakConnections:
        self._conn = await asyncpg.connect(self.dsn)
        self._task = asyncio.create_task(self._poll())
        return self

    async def _poll(self) -> None:
        while True:
            count = await self._conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
            self.peak, self.samples = max(self.peak, count), self.samples + 1
            await asyncio.sleep(0.2)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._conn.close()


async def databases_of(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {row["datname"]: row["oid"] for row in await conn.fetch("SELECT datname, oid FROM pg_database")}
    finally:
        await conn.close()


# -- the tests ------------------------------------------------------------------------------
def test_the_guide_holds_the_hub_config() -> None:
    config = guide_config()
    compile(config, "jupyterhub_config.py", "exec")
    assert "jupyterhub-singleuser" in config and "COURSE_DEMO_PASSWORD" in config


def test_a_class_on_jupyterhub(hub: Hub, class_server: object, class_file: dict[str, object],
                               course_repo: tuple[Path, str]) -> None:
    admin_dsn = class_server.dsn()  # type: ignore[attr-defined]
    repo, branch = course_repo
    began = time.perf_counter()
    report = asyncio.run(_class(hub, admin_dsn, repo, branch))
    wall = time.perf_counter() - began
    print(f"\nhub test: {len(LEARNERS)} learners x {len(NOTEBOOKS)} notebooks at once: {wall:.0f} s wall time, "
          f"peak {report['peak']} client connections ({report['samples']} samples of pg_stat_activity)")
    learners = class_file["learners"]
    assert isinstance(learners, dict)
    assert sorted(learners) == sorted(name.lower() for name in LEARNERS) == sorted(report["users"])
    # every learner's databases carry that learner's prefix, and nobody else's
    after = report["after"]
    for name in LEARNERS:
        prefix = hub_prefix(name)
        assert learners[name.lower()]["prefix"] == prefix
        owned = {db for db in after if names.owner(db) == prefix}
        ran = {names.database_name(prefix, nb) for nb in NOTEBOOKS if not (name == "team" and nb == "01_connect")}
        assert ran <= owned, (name, sorted(owned))
    assert hub_prefix("Carol.Smith") != names.prefix_from_user("Carol.Smith")  # why the guide's old recipe was wrong
    # team's reset (while the others ran) dropped team's 01 database and left team_3's alone
    assert names.database_name("team", "01_connect") not in after
    kept = names.database_name("team_3", "01_connect")
    assert report["before_reset"][kept] == after[kept], "team's reset touched team_3's database"
    assert "team_3" not in report["reset_output"].split("dropped")[1].split("\n")[0], report["reset_output"]
    asyncio.run(_who_may_connect_where(admin_dsn, learners))


async def _who_may_connect_where(admin_dsn: str, learners: dict[str, dict[str, str]]) -> None:
    """The demo role reaches the learners' 01 databases only, and reads and writes nothing there;
    a learner reaches their own databases and the maintenance one, not another learner's."""
    def as_role(role: str, password: str, database: str) -> str:
        parts = urlsplit(admin_dsn)
        return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}",
                                         path=f"/{database}"))

    async def refused(dsn: str) -> None:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            await (await asyncpg.connect(dsn)).close()

    for database in ("postgres", names.database_name("team_3", "05_transactions")):
        await refused(as_role("course_learner", DEMO_PASSWORD, database))
    demo = await asyncpg.connect(as_role("course_learner", DEMO_PASSWORD, names.database_name("team_3", "01_connect")))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await demo.fetchval("SELECT count(*) FROM brand")
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await demo.execute("CREATE TEMP TABLE mine (x int)")
    finally:
        await demo.close()
    carol = learners["carol.smith"]
    await refused(as_role(carol["role"], urlsplit(carol["database_url"]).password or "",
                          names.database_name("team_3", "04_connection_pools")))


async def _class(hub: Hub, admin_dsn: str, repo: Path, branch: str) -> dict[str, object]:
    # the guide's config allows the class file's learners; JupyterHub lists them lowercased, as the file has them
    users = await hub.api("GET", "/hub/api/users")
    assert isinstance(users, list)
    listed = [user["name"] for user in users]
    assert sorted(listed) == sorted(name.lower() for name in LEARNERS), listed
    await asyncio.gather(*(hub.start_server(user) for user in listed))
    report: dict[str, object] = {"users": listed}
    reset_ready = asyncio.Event()
    async with PeakConnections(admin_dsn) as peak:
        await asyncio.gather(*(_learner(hub, user, repo, branch, admin_dsn, report, reset_ready) for user in listed))
    report.update(peak=peak.peak, samples=peak.samples, after=await databases_of(admin_dsn))
    return report


async def _learner(hub: Hub, user: str, repo: Path, branch: str, admin_dsn: str, report: dict[str, object],
                   first_done: asyncio.Event) -> None:
    await git_pull(hub, user, repo, branch)
    home = hub.homes / user / "asyncpg-course"
    assert (home / "notebooks" / "01_connect.ipynb").exists(), f"nbgitpuller did not bring {user} the notebooks"
    for notebook in NOTEBOOKS:
        if user == "team" and notebook == "04_connection_pools":
            await _reset(hub, user, admin_dsn, report)
        results = await run_notebook(hub, user, f"asyncpg-course/notebooks/{notebook}.ipynb")
        assert_passes(user, notebook, results)
        if notebook == "01_connect":
            logged_in = [text_of(r) for r in results if "logged in as:" in text_of(r)]
            assert logged_in == ["logged in as: course_learner\n"], (user, logged_in)  # the instructor's demo role
            if user == "team_3":
                first_done.set()


async def _reset(hub: Hub, user: str, admin_dsn: str, report: dict[str, object]) -> None:
    """`team` resets its databases from a terminal of its own server, while team_3 works."""
    deadline = time.monotonic() + 300
    while names.database_name("team_3", "01_connect") not in await databases_of(admin_dsn):
        assert time.monotonic() < deadline, "team_3 never made its 01 database"
        await asyncio.sleep(0.5)
    report["before_reset"] = await databases_of(admin_dsn)
    session = await hub.api("POST", f"/user/{user}/api/sessions",
                            {"path": "reset.ipynb", "type": "notebook", "name": "", "kernel": {"name": "asyncpg-course"}})
    assert isinstance(session, dict)
    try:
        code = ("import subprocess\n"  # `course` is on the PATH the guide's Spawner.environment gives
                "done = subprocess.run(['course', 'db', 'reset'], capture_output=True, text=True)\n"
                "print(done.stdout, done.stderr, 'exit', done.returncode)\n"
                "import helpers\n"
                "print('work folder:', helpers.work_dir())")
        results = await _execute_cells(hub, user, session["kernel"]["id"], [{"cell_type": "code", "source": code}])
    finally:
        await hub.api("DELETE", f"/user/{user}/api/sessions/{session['id']}")
    output = text_of(results[0])
    assert "exit 0" in output, output
    assert f"work folder: {hub.homes / user / 'asyncpg-course-work'}\n" in output, output  # the guide's COURSE_WORK_DIR
    report["reset_output"] = output


def test_an_update_reaches_a_learner_who_edited_a_notebook(hub: Hub, course_repo: tuple[Path, str]) -> None:
    """carol.smith edits 05; the instructor changes 01 and adds a file; both arrive, her edit stays."""
    repo, branch = course_repo
    user, mine = "carol.smith", "asyncpg-course/notebooks/05_transactions.ipynb"
    asyncio.run(_open_the_guides_link(hub, user, repo, branch))
    asyncio.run(_edit(hub, user, mine))
    first = repo / "notebooks" / "01_connect.ipynb"
    changed = json.loads(first.read_text())
    changed["cells"].insert(1, {"cell_type": "markdown", "metadata": {}, "source": ["An update from the instructor."]})
    first.write_text(json.dumps(changed, indent=1, ensure_ascii=False) + "\n")
    (repo / "notebooks" / "HOMEWORK.md").write_text("Homework: exercise 2 of 05.\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "--quiet", "-m", "An update for the class"], check=True)

    asyncio.run(git_pull(hub, user, repo, branch))
    home = hub.homes / user / "asyncpg-course" / "notebooks"
    assert "An update from the instructor." in (home / "01_connect.ipynb").read_text()
    assert (home / "HOMEWORK.md").read_text() == "Homework: exercise 2 of 05.\n"
    assert "My notes: BEGIN, then COMMIT." in (home / "05_transactions.ipynb").read_text(), "the learner's edit was lost"
    results = asyncio.run(run_notebook(hub, user, "asyncpg-course/notebooks/01_connect.ipynb"))
    assert_passes(user, "01_connect (updated)", results)


async def _open_the_guides_link(hub: Hub, user: str, repo: Path, branch: str) -> None:
    """The learner logs in as `Carol.Smith` and clicks the guide's link: the hub sends it to their pull page."""
    link = re.sub(r"repo=[^&]+", "repo=" + quote(f"file://{repo}", safe=""), guide_link())
    link = re.sub(r"branch=[^&]+", f"branch={quote(branch, safe='')}", link)
    browser = Browser(hub)
    form = (await browser.go("/hub/login")).body.decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form)
    assert xsrf, "no _xsrf field on the hub's login page"
    login = urlencode({"username": "Carol.Smith", "password": "anything", "_xsrf": xsrf.group(1)})
    await browser.go("/hub/login?" + urlencode({"next": "/hub/home"}), method="POST", body=login)
    page = await browser.go(link)
    assert page.code == 200, (page.code, page.effective_url)
    assert browser.url.startswith(f"{hub.url}/user/{user}/git-pull?"), browser.url  # Carol.Smith is carol.smith
    assert "git-pull/static/dist/bundle.js" in page.body.decode()  # nbgitpuller's page, whose script runs the pull


class Browser:
    """Just enough of a browser for the hub's pages: cookies and redirects."""

    def __init__(self, hub: Hub) -> None:
        self.hub, self.cookies, self.url = hub, dict[str, str](), hub.url

    async def go(self, path: str, *, method: str = "GET", body: str | None = None) -> HTTPResponse:
        self.url = urljoin(self.hub.url, path)
        for _ in range(20):
            request = HTTPRequest(self.url, method=method, body=body, follow_redirects=False,
                                  headers={"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())})
            response = await self.hub.http.fetch(request, raise_error=False)
            for cookie in response.headers.get_list("Set-Cookie"):
                name, _, rest = cookie.partition("=")
                self.cookies[name.strip()] = rest.split(";")[0]
            if response.code not in (301, 302, 303, 307):
                return response
            self.url, method, body = urljoin(self.url, response.headers["Location"]), "GET", None
        raise AssertionError(f"more than 20 redirects, last {self.url}")


async def _edit(hub: Hub, user: str, path: str) -> None:
    """What saving in JupyterLab does: PUT the changed notebook through the contents API."""
    model = await hub.api("GET", f"/user/{user}/api/contents/{quote(path)}?content=1&type=notebook")
    assert isinstance(model, dict)
    notebook = model["content"]
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "My notes: BEGIN, then COMMIT."})
    await hub.api("PUT", f"/user/{user}/api/contents/{quote(path)}", {"type": "notebook", "content": notebook})


def test_out_of_connections_the_learner_is_told(hub: Hub, class_server: object) -> None:
    """With max_connections 10 (3 of them reserved for superusers), notebook 04 needs more than there are."""
    server = class_server
    asyncio.run(_set_max_connections(server, "10"))
    try:
        results = asyncio.run(run_notebook(hub, "team_3", "asyncpg-course/notebooks/04_connection_pools.ipynb"))
    finally:
        asyncio.run(_set_max_connections(server, None))
    failed = [result for result in results if result.error and "raises-exception" not in result.tags]
    assert failed, "notebook 04 ran within 7 connections: lower max_connections in this test"
    seen = text_of(failed[0])
    print(f"\nwhat team_3 sees when the connections run out (cell {failed[0].index}):\n{seen[-2000:]}")
    assert "max_connections" in seen, seen


async def _set_max_connections(server: object, value: str | None) -> None:
    conn = await asyncpg.connect(server.dsn())  # type: ignore[attr-defined]
    try:
        await conn.execute("ALTER SYSTEM RESET max_connections" if value is None else f"ALTER SYSTEM SET max_connections = {int(value)}")
    finally:
        await conn.close()
    server.stop()  # type: ignore[attr-defined]  # max_connections takes a restart
    server.start()  # type: ignore[attr-defined]


def test_without_the_demo_role_notebook_01_says_so_and_goes_on(class_server: object, class_file: dict[str, object],
                                                               tmp_path: Path) -> None:
    """A class server nobody ran `course class setup` on for the demo: a one-line note, then the learner's own role."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    admin_dsn = class_server.dsn()  # type: ignore[attr-defined]
    asyncio.run(_drop_demo_role(admin_dsn))
    learner = class_file["learners"]["team_3"]  # type: ignore[index]
    env = {key: value for key, value in os.environ.items() if key not in ("COURSE_DEMO_PASSWORD", "COURSE_DB_PREFIX")}
    env.update(DATABASE_URL=learner["database_url"], JUPYTERHUB_USER="team_3")
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "01_connect.ipynb", as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="asyncpg-course",
                                resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    texts = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in notebook.cells if cell.cell_type == "code"]
    notes = [line for text in texts for line in text.splitlines() if line.startswith("Note: ")]
    assert notes and all("course class setup" in note for note in notes), notes
    assert any(f"logged in as: {learner['role']}" in text for text in texts), texts


async def _drop_demo_role(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP OWNED BY course_learner")  # its CONNECT on the learners' 01 databases
        await conn.execute("DROP ROLE course_learner")
    finally:
        await conn.close()
