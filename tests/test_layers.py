"""The package's layers, as its docstrings state them, checked on every import (no server needed).

- the core (`helpers/*.py`, the learner API) imports neither `helpers.admin` nor `helpers.maintainers`;
- `helpers.admin` (the operator's tools) may import the core, never `helpers.maintainers`;
- `helpers.maintainers` (site, slides, lock, bench) may import the core and `helpers.admin`;
- a notebook imports only the package's top level (`from helpers import …`), never a module in it;
- the command line (`helpers/__main__.py`, `helpers/admin/cli.py`) may import every layer.

Imports are read with `ast`, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from helpers.config import notebook_paths

pytestmark = pytest.mark.no_server  # no PostgreSQL needed: `make test-unit` runs this module

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "helpers"

#: Which layers each layer may import ("core" is every module of helpers outside admin/ and maintainers/).
ALLOWED = {"core": {"core"}, "admin": {"core", "admin"}, "maintainers": {"core", "admin", "maintainers"}}

#: The command line (`python -m helpers`, `course`) serves every audience: it may import every layer,
#: and only it (its maintainers' commands are imported inside the functions that run them).
ENTRY_POINTS = {"helpers.__main__", "helpers.admin.cli"}

#: Known crossings, each with what removes it.  strict: once the crossing is gone, the mark must go too.
KNOWN: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("admin", "maintainers") else "core"


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module of the helpers package that `source`, the text of `module`, imports
    (relative imports resolved; `from . import config` counts as importing helpers.config)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            name = ".".join(part for part in (base, node.module or "") if part)
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "helpers" or name.startswith("helpers.")}


def crossings(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The imports of `module` that its layer may not make (a module, not also each name taken from it)."""
    if module in ENTRY_POINTS:
        return []
    wrong = {target for target in imports_of(source, module, is_package=is_package)
             if target != "helpers" and layer(target) not in ALLOWED[layer(module)]}
    return sorted(target for target in wrong if target.rpartition(".")[0] not in wrong)


def _params() -> list[object]:
    params = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        known = [reason for (source, _), reason in KNOWN.items() if source == name]
        marks = [pytest.mark.xfail(reason=known[0], strict=True)] if known else []
        params.append(pytest.param(path, id=name, marks=marks))
    return params


@pytest.mark.parametrize("path", _params())
def test_module_imports_only_the_layers_it_may(path: Path) -> None:
    name = module_name(path)
    wrong = crossings(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py")
    assert wrong == [], f"{name} imports {wrong}: across the layers the wrong way"


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("helpers.seed", "from .admin.server import binary\n", ["helpers.admin.server"]),
    ("helpers.seed", "from . import maintainers\n", ["helpers.maintainers"]),
    ("helpers.seed", "import helpers.maintainers.lock\n", ["helpers.maintainers.lock"]),
    ("helpers.admin.doctor", "from ..maintainers.bench import cli\n", ["helpers.maintainers.bench"]),
    ("helpers.admin.cli", "from ..maintainers.site import build\n", []),
    ("helpers.admin.doctor", "from .. import config\nfrom .server import binary\n", []),
    ("helpers.maintainers.bench.pgbench", "from ...admin.server import binary\n", []),
])
def test_the_rule_itself(module: str, source: str, expected: list[str]) -> None:
    """The reader on made-up modules: relative and absolute imports, allowed and not."""
    assert crossings(source, module) == expected


_MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)


def notebook_imports(path: Path) -> set[str]:
    """The modules a notebook's code cells and folded solutions import."""
    found = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            blocks = re.findall(r"```python\n(.*?)\n```", source, re.S)
        else:
            blocks = [_MAGIC.sub("", source)]
        for block in blocks:
            tree = compile(block, str(path), "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    found.add(node.module)
    return found


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_imports_only_the_package_top_level(path: Path) -> None:
    deeper = sorted(name for name in notebook_imports(path) if name.startswith("helpers."))
    assert deeper == [], f"{path.name} imports {deeper}: notebooks import from `helpers` only"
