"""Per-notebook databases, the seeded template, and the data in it."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from helpers import (
    connect,
    connected,
    course_databases,
    create_schema,
    database_name,
    fingerprint,
    generate_dataset,
    notebook_database,
    server_dsn,
    template_fingerprint,
)
from helpers.databases import ensure_template, template_name, template_version
from helpers.seed import load_with_copy, load_with_executemany, load_words
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
    assert prints[0] == asyncio.run(template_fingerprint())  # sequences included: 100, 1000, 100000
    assert {t: n for t, (n, _) in prints[0].items() if t != "sequences"} == EXPECTED_COUNTS
    assert prints[0]["sequences"][1] == ("brand_brand_id_seq=100,product_color_product_color_id_seq=None,"
                                         "product_product_id_seq=1000,product_size_product_size_id_seq=None,"
                                         "sku_sku_id_seq=100000")


async def _load_into(name: str, loader) -> dict:
    dsn = await notebook_database(name, seeded=False)
    conn = await connect(dsn)
    try:
        await create_schema(conn)
        await loader(conn, generate_dataset())
        return await fingerprint(conn, sequences=True)
    finally:
        await conn.close()


def test_a_setup_cell_run_again_closes_the_notebooks_connections_and_says_what_to_run(
        prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    """In a kernel: the first run prints nothing; a second run ends the notebook's connections to its
    own database (not to others), closes their objects at once and names the cells to run next."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        asyncio.run(_run_setup_twice(shell.user_ns))
    finally:
        InteractiveShell.clear_instance()
    first, second = capsys.readouterr().out.split("--\n")
    assert first == ""
    assert second.startswith("The database of rerun was made anew, and `connection` and `borrowed` (open on the old one) are closed now.")
    assert "Run the cells below this one again, in order" in second and "`elsewhere`" not in second


async def _run_setup_twice(namespace: dict) -> None:
    dsn = await notebook_database("rerun", seeded=False)
    print("--")
    namespace["connection"] = connection = await asyncpg.connect(dsn)
    namespace["elsewhere"] = elsewhere = await asyncpg.connect(server_dsn())
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=2)
    async with pool.acquire() as given_back:  # a variable left holding a connection the pool took back
        namespace["given_back"] = given_back
    namespace["borrowed"] = borrowed = await pool.acquire()
    try:
        await notebook_database("rerun", seeded=False)
        assert connection.is_closed() and not elsewhere.is_closed()
        assert await elsewhere.fetchval("SELECT 1") == 1
        with pytest.raises(asyncpg.InterfaceError):  # closed, or taken back by its pool: not usable
            await borrowed.fetchval("SELECT 1")
    finally:
        await elsewhere.close()
        pool.terminate()


def test_each_call_gives_a_fresh_clone(prefix: str) -> None:
    dsn = asyncio.run(notebook_database("fresh"))
    query(dsn, "DELETE FROM sku")
    assert value(dsn, "SELECT count(*) FROM sku") == 0
    dsn = asyncio.run(notebook_database("fresh"))
    assert value(dsn, "SELECT count(*) FROM sku") == 100_000


async def test_clone_replaces_a_database_with_open_connections(prefix: str) -> None:
    """A previous kernel that never closed its connection must not block a fresh run."""

    dsn = await notebook_database("busy")
    held = await asyncpg.connect(dsn)
    dsn = await notebook_database("busy")
    with pytest.raises((asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
                        asyncpg.InterfaceError)):
        await held.fetchval("SELECT 1")  # terminated by DROP DATABASE … WITH (FORCE)
    held.terminate()
    result = (await _aquery(dsn, "SELECT count(*) FROM brand"))[0][0]
    assert result == 100


async def test_notebooks_in_parallel_are_isolated(prefix: str) -> None:
    a, b = await asyncio.gather(notebook_database("par_a"), notebook_database("par_b"))
    await _aquery(a, "DELETE FROM brand WHERE brand_id > 50 AND NOT EXISTS "
                    "(SELECT FROM product WHERE product.brand_id = brand.brand_id)")
    await _aquery(a, "INSERT INTO brand (brand_name) VALUES ($1)", "only-in-a")
    result = [(await _aquery(dsn, "SELECT count(*) FROM brand WHERE brand_name = $1", "only-in-a"))[0][0]
              for dsn in (a, b)]
    assert result == [1, 0]


def test_prefix_keeps_learners_apart(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(notebook_database("shared_name"))
    assert database_name("shared_name") == f"{prefix}__shared_name"
    mine = asyncio.run(course_databases())
    assert f"{prefix}__shared_name" in mine and f"{prefix}__eshop__template" in mine
    assert all(name.startswith(prefix + "__") for name in mine)


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
    assert comment.startswith(template_version() + " state-")


@pytest.mark.parametrize("bad", ['x"; DROP DATABASE postgres; --', "eshop__template", "a__b", "_x", "x_", "X",
                                 "x" * 33])
def test_bad_notebook_name_is_refused(bad: str) -> None:
    """Notebook names never hold "__", so no notebook can name the template or another's database."""
    from helpers import ConfigError

    with pytest.raises(ConfigError, match="cannot name a course database"):
        database_name(bad)


async def _unlock_template() -> asyncpg.Connection:
    """Open the template for writing, as someone with superuser rights could (a test of drift only)."""
    async with connected(server_dsn()) as admin:
        await admin.execute(f'ALTER DATABASE "{template_name()}" WITH ALLOW_CONNECTIONS true')
    return await asyncpg.connect(server_dsn(template_name()))


async def _lock_template() -> None:
    async with connected(server_dsn()) as admin:
        await admin.execute(f'ALTER DATABASE "{template_name()}" WITH ALLOW_CONNECTIONS false')


@pytest.mark.parametrize("change", ["SELECT setval('brand_brand_id_seq', 132)",
                                    "DELETE FROM sku WHERE sku_id = 100000"])
async def test_a_drifted_template_is_rebuilt_before_the_next_clone(prefix: str, change: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """What recovery does to a template's sequences after a crash (or anyone's change) is seen and healed."""
    await ensure_template()
    template = await _unlock_template()
    try:
        await template.execute(change)
    finally:
        await template.close()
    await _lock_template()
    dsn = await notebook_database("after_drift")
    async with connected(dsn) as conn:
        assert (await conn.fetchval("SELECT nextval('brand_brand_id_seq')"),
                await conn.fetchval("SELECT count(*) FROM sku")) == (101, 100_000)
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and notice[0].startswith(f"notice: the template {template_name()} had drifted")


async def test_verify_finds_a_changed_row_the_quick_check_cannot(prefix: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    await ensure_template()
    template = await _unlock_template()
    try:
        await template.execute("UPDATE brand SET brand_name = 'changed' WHERE brand_id = 1")
    finally:
        await template.close()
    await _lock_template()
    await ensure_template(verify=True)
    async with connected(await notebook_database("after_verify")) as conn:
        assert await conn.fetchval("SELECT brand_name FROM brand WHERE brand_id = 1") != "changed"
    assert "rows differ" in capsys.readouterr().err


async def test_reset_drops_older_named_databases_by_exact_name_only(prefix: str) -> None:
    """Databases named before the `__` scheme are dropped by exact name, never by pattern."""
    from helpers.databases import drop_course_databases, legacy_databases

    mine, not_mine = f"{prefix}_05_transactions", f"{prefix}_3_05_transactions"

    async with connected(server_dsn()) as admin:
        for name in (mine, not_mine):
            await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        found = await legacy_databases()
        dropped = await drop_course_databases()
        async with connected(server_dsn()) as admin:
            kept = await admin.fetchval("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", not_mine)
    finally:
        async with connected(server_dsn()) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{not_mine}"')
    (found, dropped, kept) = found, dropped, kept
    assert found == [mine] and mine in dropped and not_mine not in dropped and kept
