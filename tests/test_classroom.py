"""`course class …` without a class server: the hub's prefixes, the demo password's rules, the work folder.

The roles themselves are made on a real PostgreSQL 15 class server by the hub test
(tests/hub/test_hub.py, a `.ci/run` stage).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import config, names
from helpers.admin import classroom
from helpers.errors import ConfigError


def course(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def test_the_prefix_is_the_one_of_the_name_jupyterhub_lists() -> None:
    done = course("class", "prefix", "Carol.Smith", "team", "team_3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    carol = names.prefix_from_user("carol.smith")
    assert lines[0] == f"Carol.Smith: JupyterHub lists 'carol.smith'; prefix {carol}"
    assert carol != names.prefix_from_user("Carol.Smith")  # the hash is of the lowercased name
    assert lines[1:] == ["team: JupyterHub lists 'team'; prefix team", "team_3: JupyterHub lists 'team_3'; prefix team_3"]


@pytest.mark.parametrize("password", ["", "learner"])
def test_the_demo_password_may_not_be_empty_or_the_public_one(monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv(config.DEMO_PASSWORD_VAR, password)
    if password:
        with pytest.raises(ConfigError, match="public password"):
            classroom.demo_password()
    else:  # empty counts as unset; with no terminal to ask on, the answer says where to put it
        monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 - closed with the test's process
        with pytest.raises(ConfigError, match=config.DEMO_PASSWORD_VAR):
            classroom.demo_password()


def test_class_setup_wants_a_class_server_and_never_takes_the_password_on_argv() -> None:
    env = {config.DEMO_PASSWORD_VAR: "chosen-by-the-instructor", config.DATABASE_URL_VAR: ""}
    done = course("class", "setup", "--learner", "alice", "--out", os.devnull, env=env)
    assert done.returncode == 1 and "DATABASE_URL is not set" in done.stderr, done.stderr
    assert "password" not in course("class", "setup", "--help").stdout.split("options:")[1].split("--templates")[0]


def test_work_dir_is_build_when_writable_else_the_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(config.WORK_DIR_VAR, str(tmp_path / "mine"))
    assert config.work_dir("bench") == tmp_path / "mine" / "bench" and (tmp_path / "mine" / "bench").is_dir()
    monkeypatch.delenv(config.WORK_DIR_VAR)
    monkeypatch.setenv("HOME", str(tmp_path))
    shared = tmp_path / "shared-course"
    shared.mkdir()
    monkeypatch.setattr(config, "REPO_ROOT", shared)
    assert config.work_dir() == shared / "build"
    monkeypatch.setattr(config.os, "access", lambda path, mode: False)  # a course folder the learner cannot write
    assert config.work_dir("bench") == tmp_path / "asyncpg-course-work" / "bench"
