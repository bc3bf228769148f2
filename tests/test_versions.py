"""The notebooks against a second PostgreSQL major version, reached like a class server.

`make test` runs everything on the embedded PostgreSQL 18; this file proves the notebooks'
stored outputs hold on another major version too (Debian's packaged server, installed by
`.ci/run`), on a loopback port with a password.  The only outputs that depend on the
version are notebook 01's version lines, masked by the narrow rules in
tests/nbval_sanitize.cfg (its `server-*` sections).  Skipped, with the reason, where no second version is
installed.  (.ci/run also runs every notebook and the helpers' tests against it.)
"""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.server import EmbeddedServer
from tests import pg_other
from tests.conftest import value

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
NOTEBOOKS = ["notebooks/01_connect.ipynb", "notebooks/02_schema.ipynb", "notebooks/05_transactions.ipynb"]


@pytest.fixture(scope="module")
def other() -> Iterator[EmbeddedServer]:
    if pg_other.other_bin_dir() is None:
        pytest.skip(pg_other.skip_reason())
    with pg_other.other_server() as server:
        yield server


def _rules(path: Path) -> list[tuple[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return [(parser[s]["regex"], parser[s]["replace"]) for s in parser.sections() if s.startswith("server-")]


def _sanitize(text: str) -> str:
    for regex, replace in _rules(SANITIZE):
        text = re.sub(regex, replace, text)
    return text


@pytest.mark.parametrize("major, micro, spelled", [(13, 22, "13.22"), (15, 18, "15.18 (Debian 15.18-0+deb12u1)"),
                                                   (18, 6, "18.6")])
def test_version_rules_mask_supported_versions_alike(major: int, micro: int, spelled: str) -> None:
    shown = (f"ServerVersion(major={major}, minor=0, micro={micro}, releaselevel='final', serial=0)\n"
             f"major: {major}\nas the server spells it: {spelled}\nconnected to PostgreSQL {major}\n"
             f"bug-fix release: {micro}\n")
    assert _sanitize(shown) == _sanitize(shown.replace(str(major), "18").replace(spelled, "18.6"))


@pytest.mark.parametrize("shown", ["ServerVersion(major=12, minor=0, micro=1, releaselevel='final', serial=0)",
                                   "ServerVersion(major=18, minor=1, micro=0, releaselevel='final', serial=0)",
                                   "ServerVersion(major=18, minor=0, micro=0, releaselevel='beta', serial=1)",
                                   "major: 12", "connected to PostgreSQL 9", "brands in the e-shop: 100"])
def test_version_rules_stay_narrow(shown: str) -> None:
    """An unsupported server, or anything that is not a version line, is still compared."""
    assert _sanitize(shown) == shown


def test_notebooks_pass_on_another_major_version(other: EmbeddedServer, tmp_path: Path) -> None:
    assert not str(value(other.dsn(), "SHOW server_version")).startswith(f"{pg_other.embedded_major()}.")
    env = {**os.environ, "DATABASE_URL": other.dsn(), "COURSE_DB_PREFIX": "other_version"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NOTEBOOKS],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:]
