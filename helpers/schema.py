"""The chapter's e-shop schema: five tables, created in dependency order.

Each statement is its own constant so notebook 02 can run them one by one and show the
status string PostgreSQL returns for each.  All of them are idempotent (IF NOT EXISTS,
ON CONFLICT DO NOTHING), so running them twice is harmless.
"""

from __future__ import annotations

CREATE_BRAND_TABLE = """
CREATE TABLE IF NOT EXISTS brand (
    brand_id   SERIAL PRIMARY KEY,
    brand_name TEXT NOT NULL
);"""

CREATE_PRODUCT_TABLE = """
CREATE TABLE IF NOT EXISTS product (
    product_id   SERIAL PRIMARY KEY,
    product_name TEXT NOT NULL,
    brand_id     INT NOT NULL REFERENCES brand (brand_id)
);"""

CREATE_PRODUCT_COLOR_TABLE = """
CREATE TABLE IF NOT EXISTS product_color (
    product_color_id   SERIAL PRIMARY KEY,
    product_color_name TEXT NOT NULL
);"""

CREATE_PRODUCT_SIZE_TABLE = """
CREATE TABLE IF NOT EXISTS product_size (
    product_size_id   SERIAL PRIMARY KEY,
    product_size_name TEXT NOT NULL
);"""

CREATE_SKU_TABLE = """
CREATE TABLE IF NOT EXISTS sku (
    sku_id           SERIAL PRIMARY KEY,
    product_id       INT NOT NULL REFERENCES product (product_id),
    product_size_id  INT NOT NULL REFERENCES product_size (product_size_id),
    product_color_id INT NOT NULL REFERENCES product_color (product_color_id)
);"""

COLOR_INSERT = """
INSERT INTO product_color VALUES (1, 'Blue'), (2, 'Black')
ON CONFLICT (product_color_id) DO NOTHING;"""

SIZE_INSERT = """
INSERT INTO product_size VALUES (1, 'Small'), (2, 'Medium'), (3, 'Large')
ON CONFLICT (product_size_id) DO NOTHING;"""

#: In the order they must run: a table before the tables that reference it.
STATEMENTS: list[str] = [
    CREATE_BRAND_TABLE,
    CREATE_PRODUCT_COLOR_TABLE,
    CREATE_PRODUCT_SIZE_TABLE,
    CREATE_PRODUCT_TABLE,
    CREATE_SKU_TABLE,
    COLOR_INSERT,
    SIZE_INSERT,
]

#: The tables, parents first (load order); reverse it to drop or truncate.
TABLES: list[str] = ["brand", "product_color", "product_size", "product", "sku"]

#: The chapter's query: one product with its SKUs, colours and sizes.
PRODUCT_QUERY = """
SELECT p.product_id,
       p.product_name,
       p.brand_id,
       s.sku_id,
       pc.product_color_name,
       ps.product_size_name
FROM product p
JOIN sku s            ON s.product_id = p.product_id
JOIN product_color pc ON pc.product_color_id = s.product_color_id
JOIN product_size ps  ON ps.product_size_id = s.product_size_id
WHERE p.product_id = $1"""


async def create_schema(connection) -> list[str]:  # type: ignore[no-untyped-def]
    """Run the statements one after another (each depends on the ones before); return the statuses."""
    return [await connection.execute(statement) for statement in STATEMENTS]
