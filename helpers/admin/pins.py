"""Reading pins (`name==version` lines, as in constraints.txt and `pip freeze`): the one parser
that `course doctor`, `make lock` and the project-file tests share."""

from __future__ import annotations

import re
from pathlib import Path


def normalise(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name.strip().lower())


def parse_pins(text: str) -> dict[str, str]:
    """{normalised name: version} of every `name==version` line; comments and other lines are skipped."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[normalise(name)] = version.split()[0].split(";")[0]
    return pins


def read_pins(path: Path) -> dict[str, str]:
    """The pins of a file; none when it does not exist."""
    return parse_pins(path.read_text()) if path.exists() else {}
