"""Helpers for the asyncpg course: where the database is, per-notebook databases, data, timing, plots.

Notebooks import from here and nowhere deeper:

    from helpers import notebook_database
    DSN = await notebook_database("04_connection_pools")     # a fresh clone of the seeded template
"""

from .config import work_dir
from .connection import LEARNER_PASSWORD, LEARNER_ROLE, connect, connected, learner_dsn, server_dsn
from .databases import (
    course_databases,
    database_name,
    drop_course_databases,
    ensure_template,
    fingerprint,
    notebook_database,
    template_fingerprint,
)
from .dsn import mask
from .errors import ConfigError, CourseError, ServerError
from .exercises import check, is_stub, queries_sent
from .generators import take
from .schema import PRODUCT_QUERY, STATEMENTS, TABLES, create_schema
from .seed import WORDS_FILE, Dataset, generate_dataset
from .tracebacks import install_short_tracebacks, log_exceptions_briefly  # importing it shortens tracebacks in IPython
from .watched import Watched

# pandas and matplotlib take most of a second to import: load them when a notebook first asks
# for a timing or plotting helper, not for `python -m helpers db stop`.
_LAZY = {
    "plot_comparison": "plotting", "plot_sweep": "plotting", "plot_timeline": "plotting",
    "Timings": "timing", "async_timed": "timing", "elapsed_bar": "timing",
}


def __getattr__(name: str) -> object:
    from importlib import import_module

    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name == "lab":  # notebook 10's scaffolding, as `from helpers import lab`
        return import_module(".lab", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LEARNER_PASSWORD",
    "LEARNER_ROLE",
    "PRODUCT_QUERY",
    "STATEMENTS",
    "TABLES",
    "WORDS_FILE",
    "ConfigError",
    "CourseError",
    "Dataset",
    "ServerError",
    "Timings",
    "Watched",
    "async_timed",
    "check",
    "connect",
    "connected",
    "course_databases",
    "create_schema",
    "database_name",
    "drop_course_databases",
    "elapsed_bar",
    "ensure_template",
    "fingerprint",
    "generate_dataset",
    "install_short_tracebacks",
    "is_stub",
    "lab",
    "learner_dsn",
    "log_exceptions_briefly",
    "mask",
    "notebook_database",
    "plot_comparison",
    "plot_sweep",
    "plot_timeline",
    "queries_sent",
    "server_dsn",
    "take",
    "template_fingerprint",
    "work_dir",
]
