"""The chapter's product query as each client spells it, and the "one row" variant.

asyncpg's `fetchrow` asks the server for a single row (the Execute message carries a row
limit), so the server stops after the first match.  pgbench and psycopg have no such limit:
they always read every row.  To give them the same work as `fetchrow`, their "fetchrow" side
runs the query with `LIMIT 1`; their "fetch" side runs the chapter's SQL unchanged.
"""

from __future__ import annotations

from ...schema import PRODUCT_QUERY

METHODS = ("fetchrow", "fetch")


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


def asyncpg_sql() -> str:
    """The chapter's SQL, one `$1` parameter; `fetchrow` and `fetch` both run it."""
    return PRODUCT_QUERY


def psycopg_sql(method: str) -> str:
    """psycopg spells parameters `%s`; `fetchrow`'s work is `LIMIT 1` (see the module's docstring)."""
    sql = _with_limit(PRODUCT_QUERY, method)
    assert sql.count("$1") == 1
    return sql.replace("$1", "%s")


def pgbench_script(method: str, product_id: int) -> str:
    """A pgbench custom script: a variable set once per transaction, then the query with `:pid`."""
    sql = _one_line(_with_limit(PRODUCT_QUERY, method))
    assert sql.count("$1") == 1
    return f"\\set pid {int(product_id)}\n{sql.replace('$1', ':pid')};\n"


def _with_limit(sql: str, method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    return f"{sql}\nLIMIT 1" if method == "fetchrow" else sql
