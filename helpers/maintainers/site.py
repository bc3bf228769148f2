"""Static copies of the course for a classroom: `python -m helpers site html|slides` (`make html`, `make slides`).

    html    build/html/NN_name.html for every notebook, and build/html/index.html linking them
    slides  build/slides/NN_name.html, reveal.js slide decks, and build/slides/index.html

Both use the outputs stored in the notebooks (nothing is executed, no database is needed) and
work offline, from file:// or any web server: plots are embedded as PNG data, and the only
scripts are local copies in `_static/`:

- reveal.js (slides) and Mermaid (diagrams), fetched once with `npm pack` at the pinned versions
  below and kept in build/vendor/.  Without npm, the HTML pages still build and show each
  diagram as its source text; the slides need reveal.js and stop with a message.
- No require.js, jQuery or MathJax: the course has no widgets and no formulas (a `$` in the
  prose stays a dollar sign).

Solutions (cells tagged `solution`) are folded away behind a "Show the solution" toggle, and
the notebooks' "Next" links point at the next page instead of the next .ipynb.  Each HTML page
has Previous · Contents · Next links at its top and its end.  The decks are laid out by
helpers.maintainers.slide_layout (a slide per `##` section, sub-slides for `###` and for what does not fit)
with the speaker notes of docs/speaker-notes/NN_name.md (S opens the speaker view).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mistune
import nbformat

from ..config import NOTEBOOK_DIR, REPO_ROOT, notebook_paths
from . import slide_layout

BUILD = REPO_ROOT / "build"
VENDOR_DIR = BUILD / "vendor"
NOTES_DIR = REPO_ROOT / "docs" / "speaker-notes"

#: npm packages copied next to the pages; their licences (MIT) travel with them.
REVEAL = ("reveal.js", "5.2.1", ["dist/", "plugin/notes/", "LICENSE"])
MERMAID = ("mermaid", "11.12.1", ["dist/mermaid.min.js", "LICENSE"])
SLIDE_SIZE = (1280, 720)  # a 16:9 projector; reveal.js scales the deck to the screen


class VendorError(RuntimeError):
    """The JavaScript the pages need could not be fetched."""


# --- vendored JavaScript -------------------------------------------------------------------

@dataclass
class Vendor:
    reveal: Path | None  # a folder holding dist/ and plugin/notes/
    mermaid: Path | None  # mermaid.min.js (a classic script: ES modules do not load from file://)


def _vendor_path(package: tuple[str, str, list[str]]) -> Path:
    name, version, _ = package
    return VENDOR_DIR / f"{name}-{version}"


def fetch_package(package: tuple[str, str, list[str]]) -> Path:
    """The package's wanted files under build/vendor/<name>-<version>/ (fetched by `npm pack` if missing)."""
    name, version, wanted = package
    target = _vendor_path(package)
    if (target / ".complete").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise VendorError(f"npm is not installed, so {name}@{version} cannot be fetched "
                          "(Debian: apt-get install npm)")
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run([npm, "pack", "--json", "--loglevel=error", "--pack-destination", scratch,
                                 f"{name}@{version}"], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise VendorError(f"npm pack {name}@{version} failed: {result.stderr.strip()[-500:]}")
        tarball = Path(scratch) / json.loads(result.stdout)[0]["filename"]
        shutil.rmtree(target, ignore_errors=True)
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                relative = member.name.removeprefix("package/")
                if not member.isfile() or relative.endswith(".map") or ".." in Path(relative).parts:
                    continue
                if any(relative == w or (w.endswith("/") and relative.startswith(w)) for w in wanted):
                    destination = target / relative
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
    (target / ".complete").write_text(f"{name}@{version}\n")
    return target


def fetch_vendor(*, reveal: bool = True, mermaid: bool = True) -> Vendor:
    return Vendor(reveal=fetch_package(REVEAL) if reveal else None,
                  mermaid=fetch_package(MERMAID) / "dist" / "mermaid.min.js" if mermaid else None)


def _install_static(out: Path, vendor: Vendor) -> None:
    static = out / "_static"
    if vendor.mermaid is not None:
        (static / "mermaid").mkdir(parents=True, exist_ok=True)
        shutil.copy2(vendor.mermaid, static / "mermaid" / "mermaid.min.js")
        shutil.copy2(vendor.mermaid.parent.parent / "LICENSE", static / "mermaid" / "LICENSE")
    if vendor.reveal is not None:
        shutil.copytree(vendor.reveal, static / "reveal.js", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".complete"))


# --- templates (nbconvert's lab and reveal templates, with local scripts) ------------------

_SOLUTION_BLOCK = """
{% block input_group -%}
{%- if 'slide-continued' in cell.metadata.get('tags', []) -%}
{#- the rest of a long output, on a slide of its own: the source is on the slide before -#}
{%- elif 'solution' in cell.metadata.get('tags', []) -%}
<details class="course-solution"><summary>Show the solution</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock input_group %}
"""

_STYLE = """
<style type="text/css">
details.course-solution > summary { cursor: pointer; color: var(--jp-brand-color1, #1976d2);
  font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 14px);
  margin: 4px 0 4px calc(var(--jp-cell-prompt-width, 64px) + 8px); }
.course-nav { font-family: var(--jp-ui-font-family, sans-serif); font-size: 15px;
  margin: 16px 16px 16px calc(var(--jp-cell-prompt-width, 64px) + 22px); }
.course-nav a { color: var(--jp-content-link-color, #1976d2); text-decoration: none; }
.course-nav a:hover { text-decoration: underline; }
.course-nav-sep { color: #999; margin: 0 0.9em; }
</style>
"""

_MERMAID_BLOCK = r"""
{%- block html_head_js_mermaidjs -%}
{%- if resources.course_mermaid -%}
{# nbconvert's renderer imports Mermaid as an ES module, which browsers refuse from file://;
   the classic script defines window.mermaid and a data: module hands it over.  Each diagram
   becomes an <img> of its SVG, so no page style (reveal.js's least of all) can distort it. #}
<script src="{{ resources.course_mermaid }}"></script>
<script>mermaid.startOnLoad = false;  /* nbconvert's renderer below draws the diagrams */</script>
{{ mermaid_js("data:text/javascript,export default window.mermaid;", "") }}
{%- endif -%}
{%- endblock html_head_js_mermaidjs -%}
"""

HTML_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{% from 'mermaidjs.html.j2' import mermaid_js %}
{# Nothing here uses require.js (no widgets) or MathJax (no formulas). #}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
""" + _MERMAID_BLOCK + r"""
{%- block html_head_css -%}""" + _STYLE + r"""{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.course_nav }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.course_nav }}
{{ super() }}
{%- endblock body_footer -%}
""" + _SOLUTION_BLOCK

SLIDES_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{% from 'mermaidjs.html.j2' import mermaid_js %}
{# No jQuery or require.js (reveal.js loads as a classic script below), no MathJax. #}
{%- block html_head_js_jquery -%}{%- endblock html_head_js_jquery -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
""" + _MERMAID_BLOCK + r"""
{%- block html_head_css -%}""" + _STYLE + r"""
<style type="text/css">
/* Long code and output scroll inside their slide instead of running off the screen. */
.reveal .slides section { height: 100%; overflow-y: auto; }
/* reveal.js's white theme (the one whose fonts ship with it) shouts its headings */
.reveal .slides :is(h1, h2, h3, h4) { text-transform: none; }
.reveal .jp-Mermaid img { max-height: 600px; }
.reveal p.slide-continued { color: #777; font-size: 18px; margin: 0; }
.reveal .celltag_slide-small .jp-InputArea pre { font-size: 15px; line-height: 18px; }
</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
  Reveal.initialize({
    controls: true, progress: true, history: true, hash: true,
    transition: "{{ resources.reveal.transition }}",
    slideNumber: "{{ resources.reveal.number }}",
    width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }},
    plugins: [RevealNotes],
  });
</script>
{% endblock footer_js %}
""" + _SOLUTION_BLOCK


# --- the notebooks ---------------------------------------------------------------------------

def course_notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    return notebook_paths(directory)


def title_of(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The first `# ` heading of the first markdown cell (e.g. "01 · Connecting to PostgreSQL")."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return str(line[2:]).strip()
            break
    return fallback


def summary_of(notebook: nbformat.NotebookNode) -> str:
    """The paragraph under the title, as plain text."""
    cell = next((c for c in notebook.cells if c.cell_type == "markdown"), None)
    if cell is None:
        return ""
    paragraphs = [p.strip() for p in cell.source.split("\n\n")]
    text = next((p for p in paragraphs[1:] if p and not p.startswith("#")), "")
    # rendered, then stripped of its tags: emphasis goes, `copy_records_to_table` keeps its _
    rendered = re.sub(r"<[^>]+>", "", str(mistune.html(text)))
    return " ".join(html.unescape(rendered).split())


_NOTEBOOK_LINK = re.compile(r"\]\((\d\d_\w+)\.ipynb(#[^)\s]*)?\)")


def _for_pages(notebook: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """A copy whose links between notebooks point at pages, titled after its heading."""
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = _NOTEBOOK_LINK.sub(lambda m: f"]({m[1]}.html{m[2] or ''})", cell.source)
            cell.source = cell.source.replace("](../README.md)", "](index.html)")
    notebook.metadata["title"] = title_of(notebook, stem)
    return notebook


def _exporter(kind: str) -> Any:
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter, SlidesExporter

    if kind == "html":
        return HTMLExporter(extra_loaders=[DictLoader({"course.html.j2": HTML_TEMPLATE})],
                            template_file="course.html.j2")
    width, height = SLIDE_SIZE
    return SlidesExporter(extra_loaders=[DictLoader({"course.slides.j2": SLIDES_TEMPLATE})],
                          template_file="course.slides.j2", reveal_url_prefix="_static/reveal.js",
                          reveal_theme="white", reveal_number="c/t",
                          reveal_width=str(width), reveal_height=str(height))


def _nav(previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    """Previous · Contents · Next, as links (a page without a previous or next omits it)."""
    links = []
    if previous:
        links.append(f'<a rel="prev" href="{html.escape(previous[0])}">← Previous: {html.escape(previous[1])}</a>')
    links.append('<a rel="contents" href="index.html">Contents</a>')
    if following:
        links.append(f'<a rel="next" href="{html.escape(following[0])}">Next: {html.escape(following[1])} →</a>')
    separator = '<span class="course-nav-sep">·</span>'
    return f'<nav class="course-nav" aria-label="Course pages">{separator.join(links)}</nav>'


def _for_slides(notebook: nbformat.NotebookNode, stem: str) -> nbformat.NotebookNode:
    """The page copy laid out as slides, with the notebook's speaker notes."""
    return slide_layout.lay_out(_for_pages(notebook, stem), slide_layout.read_notes(NOTES_DIR / f"{stem}.md"))


def _build(kind: str, out: Path, notebooks: list[Path] | None, vendor: Vendor) -> list[Path]:
    notebooks = course_notebooks() if notebooks is None else notebooks
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _install_static(out, vendor)
    exporter = _exporter(kind)
    resources = {"course_mermaid": "_static/mermaid/mermaid.min.js" if vendor.mermaid else ""}
    sources = [nbformat.read(path, as_version=4) for path in notebooks]
    entries = [(f"{path.stem}.html", title_of(notebook, path.stem), summary_of(notebook))
               for path, notebook in zip(notebooks, sources, strict=True)]
    pages = []
    for number, (path, notebook) in enumerate(zip(notebooks, sources, strict=True)):
        previous = entries[number - 1][:2] if number > 0 else None
        following = entries[number + 1][:2] if number + 1 < len(entries) else None
        copy = _for_slides(notebook, path.stem) if kind == "slides" else _for_pages(notebook, path.stem)
        body, _ = exporter.from_notebook_node(copy, resources={
            **resources, "metadata": {"name": path.stem}, "course_nav": _nav(previous, following)})
        page = out / entries[number][0]
        page.write_text(body, encoding="utf-8")
        pages.append(page)
    (out / "index.html").write_text(_index(kind, entries), encoding="utf-8")
    return pages


def build_html(out: Path = BUILD / "html", notebooks: list[Path] | None = None) -> list[Path]:
    """Static pages of the notebooks as stored, and index.html; return the pages in order."""
    try:
        vendor = fetch_vendor(reveal=False)
    except VendorError as error:
        print(f"warning: {error}; Mermaid diagrams will show as their source text", file=sys.stderr)
        vendor = Vendor(reveal=None, mermaid=None)
    return _build("html", out, notebooks, vendor)


def build_slides(out: Path = BUILD / "slides", notebooks: list[Path] | None = None) -> list[Path]:
    """A reveal.js deck per notebook (laid out by helpers.maintainers.slide_layout), and index.html; return the decks."""
    return _build("slides", out, notebooks, fetch_vendor())


_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
li {{ margin: 0 0 1rem; }}
a {{ font-weight: 600; }}
p.note {{ color: #555; font-size: 0.95rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="note">{note}</p>
<ol>
{items}
</ol>
</body>
</html>
"""


def _index(kind: str, entries: list[tuple[str, str, str]]) -> str:
    items = "\n".join(f'<li><a href="{html.escape(href)}">{html.escape(title)}</a><br>{html.escape(summary)}</li>'
                      for href, title, summary in entries)
    if kind == "html":
        title = "Asynchronous PostgreSQL with asyncpg: the notebooks"
        note = ("Read-only copies of the course notebooks with the outputs of their last run. "
                "To run the code, open the notebooks in JupyterLab (make lab).")
    else:
        title = "Asynchronous PostgreSQL with asyncpg: slides"
        note = ("One deck per notebook, a slide per section. Keys: Space for the next slide, → and ← from "
                "section to section, ↓ and ↑ within one (sub-sections, and what did not fit: \"continued\"), "
                "Esc for an overview, F for full screen, S for the speaker view with notes for each section.")
    return _INDEX.format(title=html.escape(title), note=html.escape(note), items=items)


def build(what: str, out: Path | None = None, notebooks: list[Path] | None = None) -> int:
    """`course site html|slides`: build into `out` (default build/html or build/slides); an exit code."""
    out = out or BUILD / what
    try:
        pages = (build_html if what == "html" else build_slides)(out, notebooks or None)
    except VendorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(pages)} pages in {out}; open {out / 'index.html'}")
    return 0
