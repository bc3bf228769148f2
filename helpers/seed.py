"""The chapter's data, generated deterministically, and two ways to load it.

The same seed gives the same rows, byte for byte, on every machine: names come from a
shipped list of 1,000 common English words, choices from one `random.Random(seed)`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tqdm import tqdm

WORDS_FILE = Path(__file__).parent / "data" / "common_words.txt"
SEED = 5  # the chapter is chapter 5
N_BRANDS = 100
N_PRODUCTS = 1_000
N_SKUS = 100_000
WORDS_PER_PRODUCT = 10
SIZE_IDS = (1, 2, 3)  # Small, Medium, Large
COLOR_IDS = (1, 2)  # Blue, Black

Brand = tuple[str]
Product = tuple[str, int]
Sku = tuple[int, int, int]


@cache
def load_words() -> tuple[str, ...]:
    """The word list, one word per line; `splitlines` (unlike `readlines`) drops the newlines."""
    return tuple(WORDS_FILE.read_text(encoding="utf-8").splitlines())


def generate_brands(rng: random.Random, words: Sequence[str], count: int = N_BRANDS) -> list[Brand]:
    """`count` distinct one-word brand names."""
    return [(word,) for word in rng.sample(list(words), count)]


def generate_products(rng: random.Random, words: Sequence[str], brands: int = N_BRANDS,
                      count: int = N_PRODUCTS) -> list[Product]:
    """Products named by ten distinct words, each of a random brand."""
    return [(" ".join(rng.sample(list(words), WORDS_PER_PRODUCT)), rng.randint(1, brands)) for _ in range(count)]


def generate_skus(rng: random.Random, products: int = N_PRODUCTS, count: int = N_SKUS) -> list[Sku]:
    """SKUs of a random product, size and colour."""
    return [(rng.randint(1, products), rng.choice(SIZE_IDS), rng.choice(COLOR_IDS)) for _ in range(count)]


@dataclass(frozen=True)
class Dataset:
    brands: list[Brand]
    products: list[Product]
    skus: list[Sku]

    def rows(self) -> Iterator[tuple[str, Sequence[str], list[tuple[object, ...]]]]:
        """(table, columns, rows) in load order; ids come from the tables' SERIAL columns."""
        yield "brand", ("brand_name",), list(self.brands)
        yield "product", ("product_name", "brand_id"), list(self.products)
        yield "sku", ("product_id", "product_size_id", "product_color_id"), list(self.skus)


def generate_dataset(seed: int = SEED, brands: int = N_BRANDS, products: int = N_PRODUCTS,
                     skus: int = N_SKUS) -> Dataset:
    """The whole e-shop; the defaults are the chapter's sizes."""
    rng = random.Random(seed)
    words = load_words()
    return Dataset(
        brands=generate_brands(rng, words, brands),
        products=generate_products(rng, words, brands, products),
        skus=generate_skus(rng, products, skus),
    )


def insert_sql(table: str, columns: Sequence[str]) -> str:
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"


async def load_with_executemany(connection, dataset: Dataset, *, progress: bool = False,  # type: ignore[no-untyped-def]
                                batch: int = 10_000) -> int:
    """The chapter's way: one parameterised INSERT, executed for every row (in one transaction)."""
    total = 0
    async with connection.transaction():
        for table, columns, rows in dataset.rows():
            sql = insert_sql(table, columns)
            for start in tqdm(range(0, len(rows), batch), desc=table, unit="batch", disable=not progress,
                              leave=False):
                await connection.executemany(sql, rows[start:start + batch])
            total += len(rows)
    return total


async def load_with_copy(connection, dataset: Dataset, *, progress: bool = False) -> int:  # type: ignore[no-untyped-def]
    """The fast way: the COPY protocol, one stream of binary rows per table."""
    total = 0
    async with connection.transaction():
        for table, columns, rows in tqdm(list(dataset.rows()), desc="copy", unit="table", disable=not progress,
                                         leave=False):
            await connection.copy_records_to_table(table, records=rows, columns=list(columns))
            total += len(rows)
    return total
