"""Per-notebook databases, the seeded template, and the data in it."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from helpers import (
    connect, course_databases, create_schema, database_name, fingerprint, generate_dataset, load_with_copy,
    load_with_executemany, load_words, notebook_database, server_dsn, template_fingerprint,
)
from helpers.databases import ensure_template, template_name, template_version
from tests.conftest import _query as _aquery
from tests.conftest import query, value

EXPECTED_COUNTS = {"brand": 100, "product": 1_000, "product_color": 2, "product_size": 3, "sku": 100_000}



def test_word_list_is_clean() -> None:
    words = load_words()
    assert len(words) == 1_000 == len(set(words))
    assert all(re.fullmatch(r"[a-z]+", word) for word in words)


def test_seeded_database_has_the_chapters_sizes(prefix: str) -> None:
    dsn = asyncio.run(notebook_database("counts"))
    counts = {t: value(dsn, f"SELECT count(*) FROM {t}") for t in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    colours = query(dsn, "SELECT product_color_name FROM product_color ORDER BY 1")
    sizes = query(dsn, "SELECT product_size_name FROM product_size ORDER BY product_size_id")
    assert [r[0] for r in colours] == ["Black", "Blue"]
    assert [r[0] for r in sizes] == ["Small", "Medium", "Large"]
    names = query(dsn, "SELECT product_name FROM product")
    assert all(len(r[0].split(" ")) == 10 and r[0] == r[0].strip() for r in names)


def test_generation_is_deterministic_and_both_loaders_agree(prefix: str) -> None:
    assert generate_dataset() == generate_dataset()
    assert generate_dataset(seed=6) != generate_dataset()
    prints = [asyncio.run(_load_into(name, loader)) for name, loader in
              (("copy_a", load_with_copy), ("copy_b", load_with_copy), ("many", load_with_executemany))]
    assert prints[0] == prints[1] == prints[2]
    assert prints[0] == asyncio.run(template_fingerprint())
    assert {t: n for t, (n, _) in prints[0].items()} == EXPECTED_COUNTS


async def _load_into(name: str, loader) -> dict:
    dsn = await notebook_database(name, seeded=False)
    conn = await connect(dsn)
    try:
        await create_schema(conn)
        await loader(conn, generate_dataset())
        return await fingerprint(conn)
    finally:
        await conn.close()


def test_each_call_gives_a_fresh_clone(prefix: str) -> None:
    dsn = asyncio.run(notebook_database("fresh"))
    query(dsn, "DELETE FROM sku")
    assert value(dsn, "SELECT count(*) FROM sku") == 0
    dsn = asyncio.run(notebook_database("fresh"))
    assert value(dsn, "SELECT count(*) FROM sku") == 100_000


def test_clone_replaces_a_database_with_open_connections(prefix: str) -> None:
    """A previous kernel that never closed its connection must not block a fresh run."""

    async def scenario() -> int:
        dsn = await notebook_database("busy")
        held = await asyncpg.connect(dsn)
        dsn = await notebook_database("busy")
        with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
                            asyncpg.InterfaceError)):
            await held.fetchval("SELECT 1")  # terminated by DROP DATABASE … WITH (FORCE)
        held.terminate()
        return (await _aquery(dsn, "SELECT count(*) FROM brand"))[0][0]

    assert asyncio.run(scenario()) == 100


def test_notebooks_in_parallel_are_isolated(prefix: str) -> None:
    async def scenario() -> list[int]:
        a, b = await asyncio.gather(notebook_database("par_a"), notebook_database("par_b"))
        await _aquery(a, "DELETE FROM brand WHERE brand_id > 50 AND NOT EXISTS "
                        "(SELECT FROM product WHERE product.brand_id = brand.brand_id)")
        await _aquery(a, "INSERT INTO brand (brand_name) VALUES ($1)", "only-in-a")
        return [(await _aquery(dsn, "SELECT count(*) FROM brand WHERE brand_name = $1", "only-in-a"))[0][0]
                for dsn in (a, b)]

    assert asyncio.run(scenario()) == [1, 0]


def test_prefix_keeps_learners_apart(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(notebook_database("shared_name"))
    assert database_name("shared_name") == f"{prefix}_shared_name"
    mine = asyncio.run(course_databases())
    assert f"{prefix}_shared_name" in mine and f"{prefix}_eshop_template" in mine
    assert all(name.startswith(prefix + "_") for name in mine)


def test_template_refuses_connections_and_is_rebuilt_when_stale(prefix: str) -> None:
    asyncio.run(ensure_template())
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError):
        query(server_dsn(template_name()), "SELECT 1")

    async def mark_stale() -> None:
        admin = await connect(server_dsn())
        try:
            await admin.execute(f'COMMENT ON DATABASE "{template_name()}" IS \'eshop-0000000000000000\'')
        finally:
            await admin.close()

    asyncio.run(mark_stale())
    asyncio.run(ensure_template())
    comment = value(server_dsn(), "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                  "WHERE datname = $1", template_name())
    assert comment == template_version()


def test_bad_notebook_name_is_refused() -> None:
    from helpers import ConfigError

    with pytest.raises(ConfigError, match="cannot name a course database"):
        database_name('x"; DROP DATABASE postgres; --')
