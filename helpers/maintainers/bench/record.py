"""A bench run as a JSON document, and back: the rows are the record, everything else is derived.

{"schema_version", "mode", "environment", "sizes", "elapsed_seconds", "plots", "rows": [one
object per measurement]}.  Tables, ratios, goals and plots are rebuilt from the rows by
report.py, so a recorded run can be reported again without a server.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ...errors import ConfigError
from .run import COLUMNS, Run

SCHEMA_VERSION = 3


def write_json(run: Run, path: Path) -> None:
    rows = [{key: (None if isinstance(value, float) and math.isnan(value) else value) for key, value in row.items()}
            for row in run.rows.astype(object).to_dict(orient="records")]
    document = {"schema_version": SCHEMA_VERSION, "mode": run.mode, "environment": run.environment,
                "sizes": run.sizes, "elapsed_seconds": run.elapsed_seconds, "plots": run.plots, "rows": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> Run:
    """A recorded run; refuses a document of another schema version, whose fields mean other things."""
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path} is not a bench record: {error}", "give the JSON a `bench --json` run wrote.") from None
    found = document.get("schema_version") if isinstance(document, dict) else None
    if found != SCHEMA_VERSION:
        raise ConfigError(f"{path} holds a bench record of schema version {found!r}; this bench reads version "
                          f"{SCHEMA_VERSION}.", "record it again with `python -m helpers bench --json PATH`.")
    rows = pd.DataFrame(document["rows"]).reindex(columns=COLUMNS)
    return Run(mode=document["mode"], environment=document["environment"], sizes=document["sizes"], rows=rows,
               elapsed_seconds=document["elapsed_seconds"], plots=document["plots"])
