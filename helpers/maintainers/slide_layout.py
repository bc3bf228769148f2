"""Slides that fit: a notebook laid out as a reveal.js deck, one section per slide.

The notebooks' own slide metadata is incomplete (a markdown cell often holds several `##`
sections), so a deck built from it has slides many screens tall.  This module lays out a
*copy* of the notebook instead (the notebooks themselves are never changed):

- every `#` and `##` heading starts a slide and every `###` heading a sub-slide (↓), also in
  the middle of a markdown cell, which is cut there;
- a slide whose content would not fit on the screen goes on in a sub-slide headed
  "… (continued)"; the cut falls between paragraphs, between cells, or inside a long
  output (lines of text, rows of a table), never inside a code cell's source;
- the speaker notes of each `##` section (docs/speaker-notes/NN_name.md, one `##` heading
  per section, the same text as in the notebook) become reveal.js notes of its slide.

Heights are estimated from the source (lines of prose, code and output; image sizes; table
rows), measured against the decks in Chromium (tests/browser/test_static_site.py checks
that no slide is taller than two screens).
"""

from __future__ import annotations

import base64
import copy
import html
import math
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

#: What one slide may hold, in CSS pixels of the 1280×720 slide (the rest is margins).
BUDGET = 600
CONTENT_WIDTH = 1060  # the cells' width on a 1280 px slide, prompts excluded

# Rendered sizes in the deck (reveal.js white theme under nbconvert's lab styles).
PROSE_LINE, PROSE_CHARS, PARAGRAPH_GAP = 26, 98, 18
CODE_LINE, CODE_CHARS = 23, 92
SMALL_CODE_LINE = 18  # a source too long for the slide is set smaller (tag `slide-small`)
HEADING_HEIGHT = {1: 80, 2: 64, 3: 52}
CELL_GAP = 14  # padding around every cell
INPUT_PADDING, OUTPUT_PADDING = 26, 18
TABLE_ROW, TABLE_HEAD = 33, 40
MERMAID_HEIGHT = 600
SOLUTION_SUMMARY = 36  # a folded "Show the solution"
CONTINUED_HEIGHT = 40

HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TABLE_ROW_RE = re.compile(r"\s*<tr[\s>].*?</tr>\s*", re.S)


# --- speaker notes ------------------------------------------------------------------------

def read_notes(path: Path) -> dict[str, str]:
    """`## heading` → the text below it, from a speaker-notes file (missing file: no notes)."""
    if not path.exists():
        return {}
    notes: dict[str, str] = {}
    heading = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = normalize(line[3:])
            notes[heading] = ""
        elif heading is not None:
            notes[heading] += line + "\n"
    return {key: text.strip() for key, text in notes.items()}


def normalize(heading: str) -> str:
    """A heading as notes are keyed: single spaces, no trailing `#`s."""
    return " ".join(heading.strip().rstrip("#").split())


def section_headings(notebook: nbformat.NotebookNode) -> list[str]:
    """The notebook's `##` headings, in order (outside code fences)."""
    return [text for cell in notebook.cells if cell.cell_type == "markdown"
            for level, text in _headings(cell.source) if level == 2]


def _headings(source: str) -> Iterator[tuple[int, str]]:
    fenced = False
    for line in source.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            yield len(match[1]), normalize(match[2])


# --- pieces: markdown cut at headings and paragraphs, code cells cut inside long outputs --

@dataclass
class Piece:
    cell: nbformat.NotebookNode
    height: float
    level: int = 0  # 1-3 for a piece that starts with a heading
    heading: str = ""


def _markdown_blocks(source: str) -> list[str]:
    """Paragraphs, headings and fenced blocks (a fence keeps its blank lines and `#` lines)."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False
    for line in source.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and not FENCE.match(line) and (not line.strip() or HEADING.match(line)):
            if current:
                blocks.append("\n".join(current))
                current = []
            if line.strip():
                blocks.append(line)
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _block_height(block: str) -> float:
    if match := HEADING.match(block):
        return HEADING_HEIGHT[len(match[1])]
    lines = block.splitlines()
    if FENCE.match(lines[0]):
        return MERMAID_HEIGHT if "mermaid" in lines[0] else len(lines) * CODE_LINE + PARAGRAPH_GAP
    if lines[0].lstrip().startswith("|"):
        return TABLE_HEAD + (len(lines) - 2) * TABLE_ROW + PARAGRAPH_GAP
    return sum(_wrapped(line, PROSE_CHARS) for line in lines) * PROSE_LINE + PARAGRAPH_GAP


def _wrapped(line: str, width: int) -> int:
    return max(1, math.ceil(len(line) / width))


def markdown_pieces(cell: nbformat.NotebookNode) -> list[Piece]:
    """The cell cut into one piece per block, each a markdown cell of its own."""
    pieces = []
    for block in _markdown_blocks(cell.source):
        part = nbformat.v4.new_markdown_cell(block)
        part.metadata = copy.deepcopy(cell.metadata)
        match = HEADING.match(block)
        pieces.append(Piece(part, _block_height(block), len(match[1]) if match else 0,
                            normalize(match[2]) if match else ""))
    return pieces


@dataclass
class _Atom:
    """The smallest part of an output the layout may put on another slide."""
    output: int  # index in the cell's outputs
    height: float
    text: str = ""  # a line of a stream, a traceback or text/plain; a row of a table


def _png_height(data: str) -> float:
    width, height = struct.unpack(">II", base64.b64decode(data[:64])[16:24])
    return float(height * min(1.0, CONTENT_WIDTH / width))


def _table_parts(markup: str) -> tuple[str, list[str], str] | None:
    """(everything up to the body's first row, the rows, the rest) of a pandas table."""
    start, end = markup.find("<tbody>"), markup.rfind("</tbody>")
    if start < 0 or end < 0:
        return None
    start += len("<tbody>")
    rows = TABLE_ROW_RE.findall(markup[start:end])
    return markup[:start], rows, markup[end:]


def _atoms(output: nbformat.NotebookNode, index: int) -> list[_Atom]:
    kind = output.output_type
    if kind == "stream":
        lines = output.text.splitlines()
    elif kind == "error":  # colours kept; only the visible characters count for the width
        lines = "\n".join(output.traceback).splitlines()
    else:
        data = output.get("data", {})
        if "image/png" in data:
            return [_Atom(index, _png_height(data["image/png"]))]
        if "text/html" in data:
            parts = _table_parts(data["text/html"])
            if parts:
                return [_Atom(index, TABLE_ROW, row) for row in parts[1]]
            return [_Atom(index, TABLE_ROW * max(1, data["text/html"].count("<tr")))]
        lines = str(data.get("text/plain", "")).splitlines()
    return [_Atom(index, _wrapped(ANSI.sub("", line), CODE_CHARS) * CODE_LINE, line) for line in lines]


def _outputs_height(atoms: list[_Atom]) -> float:
    heads = {a.output for a in atoms}
    return sum(a.height for a in atoms) + len(heads) * OUTPUT_PADDING


def _rebuild(cell: nbformat.NotebookNode, atoms: list[_Atom]) -> list[nbformat.NotebookNode]:
    """The outputs of `cell` that `atoms` come from, holding only those atoms."""
    outputs = []
    for index in dict.fromkeys(a.output for a in atoms):
        original = cell.outputs[index]
        mine = [a.text for a in atoms if a.output == index]
        output = copy.deepcopy(original)
        if output.output_type == "stream":
            output.text = "\n".join(mine) + "\n"
        elif output.output_type == "error":
            output.traceback = mine
        elif "text/html" in output.get("data", {}) and (parts := _table_parts(output.data["text/html"])):
            head, _, tail = parts
            output.data = {"text/html": head + "".join(mine) + tail}
        elif "text/plain" in output.get("data", {}) and len(mine) > 0 and mine != [""]:
            output.data = {"text/plain": "\n".join(mine)}
        outputs.append(output)
    return outputs


def code_pieces(cell: nbformat.NotebookNode, room: float = BUDGET) -> list[Piece]:
    """The cell, or, when it would not fit on one slide, the cell with its first outputs and
    then further pieces of output alone (tagged `slide-continued`: no source shown).

    `room` is what is left on the current slide: the first piece fills it when the source and
    a few lines of output fit there, and is a slide's worth otherwise."""
    tags = cell.metadata.get("tags", [])
    lines = len(cell.source.splitlines())
    source_height = lines * CODE_LINE + INPUT_PADDING
    if "solution" in tags:
        source_height = SOLUTION_SUMMARY
    elif source_height > BUDGET * 0.75:
        cell.metadata["tags"] = [*tags, "slide-small"]
        source_height = lines * SMALL_CODE_LINE + INPUT_PADDING
    atoms = [atom for index, output in enumerate(cell.get("outputs", [])) for atom in _atoms(output, index)]
    total = CELL_GAP + source_height + _outputs_height(atoms)
    if total <= BUDGET or not atoms:
        return [Piece(cell, total)]
    pieces: list[Piece] = []
    chunk: list[_Atom] = []
    used: float = CELL_GAP + source_height
    limit = room if room >= used + OUTPUT_PADDING + 3 * CODE_LINE else BUDGET
    for atom in atoms:
        if chunk and used + atom.height + OUTPUT_PADDING > limit:
            pieces.append(_piece_of(cell, chunk, used, first=not pieces))
            used, chunk, limit = CELL_GAP, [], BUDGET
        chunk.append(atom)
        used += atom.height
    pieces.append(_piece_of(cell, chunk, used, first=not pieces))
    return pieces


def _piece_of(cell: nbformat.NotebookNode, atoms: list[_Atom], height: float, *, first: bool) -> Piece:
    part = copy.deepcopy(cell)
    part.outputs = _rebuild(cell, atoms)
    if not first:
        part.metadata.setdefault("tags", [])
        part.metadata.tags = [*part.metadata.tags, "slide-continued"]
    return Piece(part, height + OUTPUT_PADDING * len({a.output for a in atoms}))


# --- the deck -----------------------------------------------------------------------------

def _slideshow(cell: nbformat.NotebookNode, slide_type: str) -> nbformat.NotebookNode:
    cell.metadata["slideshow"] = {"slide_type": slide_type}
    return cell


def _continued(heading: str) -> nbformat.NotebookNode:
    heading = re.sub(r"[`*]", "", heading)  # the label is HTML: Markdown's marks would show
    text = f"{heading} (continued)" if heading else "(continued)"
    cell: nbformat.NotebookNode = nbformat.v4.new_markdown_cell(f'<p class="slide-continued">{html.escape(text)}</p>')
    return cell


def lay_out(notebook: nbformat.NotebookNode, notes: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """A copy of `notebook` whose cells carry the slide types described in the module's docstring."""
    notes = notes or {}
    cells: list[nbformat.NotebookNode] = []
    section = ""  # the heading of the `##` or `###` in force, for "(continued)"
    used = 0.0
    for cell in notebook.cells:
        cell = copy.deepcopy(cell)
        cell.metadata.pop("slideshow", None)
        if cell.cell_type == "markdown":
            pieces = markdown_pieces(cell)
        elif cell.cell_type == "code":
            pieces = code_pieces(cell, BUDGET - used)
        else:
            pieces = [Piece(cell, 0)]
        for piece in pieces:
            if piece.level:
                cells.append(_slideshow(piece.cell, "slide" if piece.level <= 2 else "subslide"))
                section, used = piece.heading, piece.height
                if piece.level == 2 and piece.heading in notes:
                    cells.append(_slideshow(nbformat.v4.new_markdown_cell(notes[piece.heading]), "notes"))
                continue
            if used and used + piece.height > BUDGET:
                cells.append(_slideshow(_continued(section), "subslide"))
                used = CONTINUED_HEIGHT
            cells.append(_slideshow(piece.cell, "-"))
            used += piece.height
    for number, cell in enumerate(cells):  # pieces of one cell need ids of their own
        cell.id = f"s{number}"
    return nbformat.NotebookNode({**notebook, "cells": cells})
