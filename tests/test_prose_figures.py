"""Figures in prose come from the run they sit in.

A stored output is refreshed by `make execute`; the sentence next to it is not.  So a markdown
cell may state a figure with a unit (seconds, q/s, MB, a ratio, a percentage, CPU cores...) only
when the same figure, number and unit, appears in that notebook's stored outputs (printed by a
cell, e.g. an f-string), or when it is a fixed fact listed in FIXED_FACTS with its reason.
Anything else is a measurement from another run, or one machine's fact, written into prose:
print it from the cell, or phrase the sentence so that it holds on any machine ("the ratio
printed above").  Code (fenced blocks and `inline code`) is not prose and is not scanned.

No server is needed: the test reads the .ipynb files.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: Figures that are facts, not measurements: the same on every machine and in every run.
#: Keyed by notebook stem, then by the figure as `figures()` spells it ("0.1 s", "50 %").
#: Each entry says why it is fixed: a duration set in the notebook's code, a figure the book
#: published (quoted as the book's), a library default read from its source.
FIXED_FACTS: dict[str, dict[str, str]] = {
    "08_async_generators": {
        "0.1 s": "positive_integers_async(..., delay=0.1): the sleep before each item, set in the code",
        "0.3 s": "three items of 0.1 s each: the sum of the sleeps one generator awaits, set in the code",
        "0.6 s": "two such generators: the sum of all their sleeps, set in the code",
    },
    "04_connection_pools": {
        "7.2 s": "the study notes' author's sequential run (000_91dc64959fa09d31.txt: 7.2302 s), quoted as theirs",
        "4.2 s": "the study notes' author's concurrent run (same file: 4.2496 s), quoted as theirs",
        "0.5 s": "section 7's code: pool.acquire(timeout=0.5)",
        "1.5 s": "section 7's code: the borrowing task's pg_sleep(1.5)",
    },
    "10_performance_lab": {
        "1 cores": "a backend is one server process, so it runs on one core at a time (PostgreSQL's process model)",
        "10%": "the thresholds set in the lab's code: a gain is >= 1.10x the step before (lab.say(..., 1.10)), the "
               "spread goal is 10 % of the median, and exercise 1's threshold defaults to 0.10",
    },
    "09_cursors": {
        "1 ms": "an assumed round trip across a network, stated as an assumption, not measured",
        "20 s": "20,000 round trips at that assumed 1 ms each: arithmetic on the assumption",
    },
}

#: Cells of notebooks another branch owns that state figures from another run: known failures,
#: owned by another branch (issue 15: truth-a 01-03, truth-b 04-06, lab 10).  The lead removes
#: this list at merge; strict, so an entry that no longer fails is reported and removed too.
KNOWN_FAILURES: dict[str, str] = {
}

_NUMBER = r"(?<![\w.,])(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_WORD_NUMBER = r"(?<!\w)(?P<word>one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|sixteen|thirty-two)"
#: Each unit as it may be written, mapped to one spelling, so "2 s" and "2 seconds" are one figure.
_UNITS: dict[str, str] = {
    r"µs|us|microseconds?": "µs",
    r"ms|milliseconds?": "ms",
    r"s|secs?|seconds?": "s",
    r"min|minutes?": "min",
    r"hours?": "h",
    r"q/s|queries/s|queries per second": "q/s",
    r"rows/s|rows per second": "rows/s",
    r"tps|transactions/s|transactions per second": "tps",
    r"%|percent|per cent": "%",
    r"bytes?|B": "B",
    r"kB|KB|KiB": "kB",
    r"MB|MiB": "MB",
    r"GB|GiB": "GB",
    r"(?:(?:logical |physical )?CPU |processor )?cores?|CPUs?|vCPUs?": "cores",
}
_UNIT = "|".join(f"(?:{spelling})" for spelling in sorted(_UNITS, key=len, reverse=True))
#: A space may separate number and unit; a ratio is "0.84×", "2 ×" or "2x", never "2 x 3" (a product).
_FIGURE = re.compile(rf"{_NUMBER}(?:(?P<ratio>[ \u00a0\u202f]?×|x)|[ \u00a0\u202f]?(?P<unit>{_UNIT}))(?![\w/])")
_CORES_IN_WORDS = re.compile(rf"{_WORD_NUMBER}[ -](?P<unit>(?:(?:logical |physical )?CPU |processor )?cores?|CPUs?)(?!\w)",
                             re.IGNORECASE)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "sixteen": 16, "thirty-two": 32}


def _unit(written: str) -> str:
    return next(name for spelling, name in _UNITS.items() if re.fullmatch(spelling, written))


def _spell(number: Decimal, unit: str) -> str:
    text = format(number.normalize(), "f")
    return f"{text}{unit}" if unit in ("%", "×") else f"{text} {unit}"


def prose(markdown: str) -> str:
    """The prose of a markdown cell: no fenced code, no `inline code`, no link targets, no HTML tags."""
    text = re.sub(r"```.*?```", " ", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"<[^>\n]*>", " ", text)


def figures(text: str) -> list[str]:
    """Every figure with a unit in `text`, spelled one way: "3.3 s", "194 MB", "2 cores", "1.5×"."""
    found = []
    for match in _FIGURE.finditer(text):
        unit = "×" if match["ratio"] else _unit(match["unit"])
        found.append(_spell(Decimal(match["number"].replace(",", "")), unit))
    for match in _CORES_IN_WORDS.finditer(text):
        found.append(_spell(Decimal(_WORDS[match["word"].lower()]), "cores"))
    return found


def output_text(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed, as text: streams, plain/HTML/markdown results, errors."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for kind in ("text/plain", "text/html", "text/markdown"):
            parts.append(output.get("data", {}).get(kind, ""))
        if output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


def unsupported_figures(nb: nbformat.NotebookNode, fixed: dict[str, str]) -> list[tuple[int, str]]:
    """(cell index, figure) for each figure in a markdown cell that is neither fixed nor printed."""
    printed = set(figures("\n".join(output_text(c) for c in nb.cells if c.cell_type == "code")))
    return [(index, figure) for index, cell in enumerate(nb.cells) if cell.cell_type == "markdown"
            for figure in figures(prose(cell.source)) if figure not in printed and figure not in fixed]


@pytest.mark.parametrize(
    "path",
    [pytest.param(path, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[path.stem], strict=True))
     if path.stem in KNOWN_FAILURES else path for path in NOTEBOOKS],
    ids=lambda path: path.stem)
def test_prose_states_only_printed_or_fixed_figures(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    found = unsupported_figures(nb, FIXED_FACTS.get(path.stem, {}))
    assert not found, (
        f"{path.name}: figures in prose that no cell of this notebook printed and that are not in FIXED_FACTS "
        "(print them from the cell, or phrase the sentence so it holds on any machine):\n"
        + "\n".join(f"  cell {index}: {figure!r} in: {_sentence(nb.cells[index].source, figure)}"
                    for index, figure in found))


def _sentence(markdown: str, figure: str) -> str:
    """The sentence of `markdown` that states `figure`, for the failure message."""
    sentences = re.split(r"(?<=[.:;!?])\s+", prose(markdown))
    found = next((s for s in sentences if figure in figures(s)), "?")  # "?": the figure spans two sentences
    return " ".join(found.split())[:160]


def test_figures_are_found_in_the_issues_examples() -> None:
    assert figures("it took about twice as long (3.3 s against 1.7 s)") == ["3.3 s", "1.7 s"]
    assert figures("When this notebook was written, fetch peaked near 194 MB.") == ["194 MB"]
    assert figures("the cursor took about as long as fetch (about 2 s each here)") == ["2 s"]
    assert figures("the machine has 2 CPU cores") == ["2 cores"]
    assert figures("Client and server share two cores") == ["2 cores"]
    assert figures("a pool of 1 (3,582 q/s) beats the sequential line (2,713 q/s)") == ["3582 q/s", "2713 q/s"]
    assert figures("COPY is 5.2x faster, 0.84× of the ceiling, 12% of the time") == ["5.2×", "0.84×", "12%"]
    assert figures("1.5 MiB, 300 kB, 2 GB, 250 ms, 40 µs, 120,000 rows/s, 5 minutes") == [
        "1.5 MB", "300 kB", "2 GB", "250 ms", "40 µs", "120000 rows/s", "5 min"]


def test_numbers_without_a_unit_and_code_are_not_figures() -> None:
    assert figures(prose("products 501 to 600, 1,000 round trips, PostgreSQL 15, Python 3.11, 100,000 SKUs")) == []
    assert figures(prose("`asyncio.sleep(0.1)` and `acquire(timeout=0.5)` and ```python\nsleep(2)\n```")) == []
    assert figures(prose("listing 5.17 in [notebook 10](10_performance_lab.ipynb#5-s)")) == []
    assert figures("2 x 3 is a product, not a ratio; 100 sizes; 3 steps") == []


def _notebook(markdown: str, printed: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("print(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    return nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell(markdown)])


def test_a_figure_passes_only_when_printed_or_fixed() -> None:
    assert unsupported_figures(_notebook("fetch took 1.22 s", "fetch: 1.22 s"), {}) == []
    assert unsupported_figures(_notebook("fetch took 1.22 seconds", "fetch: 1.220 s"), {}) == []
    assert unsupported_figures(_notebook("3.3 s against 1.7 s", "fetch: 1.22 s"), {}) == [(1, "3.3 s"), (1, "1.7 s")]
    assert unsupported_figures(_notebook("about 2 s each here", "fetch: 1.98 s"), {}) == [(1, "2 s")]
    assert unsupported_figures(_notebook("a pool of 4 took 2 s", "2 cores"), {}) == [(1, "2 s")]
    assert unsupported_figures(_notebook("each item sleeps 0.1 s", ""), {"0.1 s": "set in the code"}) == []


def test_every_fixed_fact_is_still_stated() -> None:
    """A fact no prose states any more is dead weight in the list: remove it with the sentence."""
    for stem, facts in FIXED_FACTS.items():
        nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
        stated = {figure for cell in nb.cells if cell.cell_type == "markdown" for figure in figures(prose(cell.source))}
        assert set(facts) <= stated, f"{stem}: fixed facts no markdown cell states: {sorted(set(facts) - stated)}"
