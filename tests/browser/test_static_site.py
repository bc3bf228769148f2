"""The static copies of the course (`make html`, `make slides`), opened in Chromium, and their
building blocks tested without a browser.

- Offline: one HTML page and one deck (the notebook with a Mermaid diagram) open from file://
  with every request recorded: nothing may leave localhost or file://.
- Slides that fit: every deck of the course, every slide measured in Chromium at the deck's
  own size (1280×720): none may be taller than two screens (the count taller than one is
  printed and written to artifacts/browser/slide-heights.json).

The site is built once for the module (the `built` fixture), and pages are waited on for what
they load (fonts, images, the network falling quiet), not for fixed times.
- Navigation: every HTML page has Previous · Contents · Next at its top and its end, and the
  links lead where they say; the index keeps names like `copy_records_to_table` intact.
- Speaker notes: every `##` section of every notebook has notes, and each deck carries them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from helpers.maintainers import site, slide_layout

from .harness import ARTIFACTS, NEXT_FRAME_JS, NOTEBOOKS

LOCAL_URL = re.compile(r"(file|data|blob|about):|https?://(127\.0\.0\.1|localhost)(:\d+)?/")


@dataclass
class OfflinePage:
    page: object  # a Playwright Page
    outside: list[str]  # requests beyond file:// and localhost (all blocked)
    errors: list[str]  # uncaught script errors
    loading: set[object] = field(default_factory=set)  # requests not finished yet


def _open_offline(context, url: str) -> OfflinePage:
    """A new page at `url` that records (and blocks) every request beyond file:// and localhost."""
    opened = OfflinePage(context.new_page(), [], [])
    page = opened.page

    def requested(request) -> None:
        opened.loading.add(request)
        if not LOCAL_URL.match(request.url):
            opened.outside.append(request.url)

    # Playwright marks its handlers, so they must be Python functions, not the set's built-in methods
    page.on("request", requested)
    page.on("requestfinished", lambda request: opened.loading.discard(request))
    page.on("requestfailed", lambda request: opened.loading.discard(request))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.route(re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"), lambda route: route.abort())
    page.goto(url, wait_until="load")
    _wait_until_quiet(opened)  # module scripts, fonts and diagrams load after `load`
    _settle(page)
    return opened


def _wait_until_quiet(opened: OfflinePage, quiet: float = 0.5, timeout: float = 30) -> None:
    """Until no request has been loading for `quiet` seconds.

    Playwright's "networkidle" is Chromium's own idleness timer; on a loaded machine it once
    never fired for a deck whose requests had all finished. Counting the requests says the
    same thing, and names the ones still loading if it times out.
    """
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet:
        opened.page.wait_for_timeout(50)  # Playwright delivers the page's events while it waits
        if opened.loading:
            quiet_since = time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"still loading after {timeout:.0f} s: {[r.url for r in opened.loading]}")


#: True once the page's fonts and images have loaded (what may still change a page's layout).
SETTLED_JS = "() => document.fonts.status === 'loaded' && [...document.images].every(img => img.complete)"


def _settle(page) -> None:
    page.wait_for_function(SETTLED_JS, timeout=15_000, polling=50)
    page.evaluate(NEXT_FRAME_JS)


def _diagrams(page) -> tuple[int, int]:
    """(Mermaid diagrams on the page, diagrams drawn as an image)."""
    page.wait_for_function("() => [...document.querySelectorAll('.jp-Mermaid')].every("
                           "d => d.querySelector('img') || d.classList.contains('jp-mod-warning'))", timeout=15_000)
    return page.locator(".jp-Mermaid").count(), page.locator(".jp-Mermaid img").count()


def _notebooks_and_vendor_or_skip() -> None:
    """Skip, with the reason, where there is nothing to build or npm cannot fetch reveal.js and Mermaid."""
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    try:
        site.fetch_vendor()
    except site.VendorError as error:
        pytest.skip(f"the static copies need npm to fetch reveal.js and Mermaid: {error}")


@pytest.mark.browser
def test_static_html_and_slides_load_nothing_from_outside(browser, built: Site) -> None:
    """`make html` and `make slides` pages open from file:// with no request beyond the machine."""
    # a notebook with a Mermaid diagram if there is one (it loads the most), else the first
    number = next((n for n, p in enumerate(NOTEBOOKS) if "```mermaid" in p.read_text()), 0)
    sample, html_page, deck = NOTEBOOKS[number], built.html[number], built.slides[number]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        html = _open_offline(context, html_page.as_uri())
        diagrams, drawn = _diagrams(html.page)
        html.page.screenshot(path=str(ARTIFACTS / f"html-{sample.stem}.png"))
        assert not html.outside, f"the HTML page asked for {html.outside}"
        assert not html.errors, f"script errors in the HTML page: {html.errors}"
        assert drawn == diagrams, f"{diagrams} Mermaid diagram(s), {drawn} drawn"

        index = _open_offline(context, (html_page.parent / "index.html").as_uri())
        assert not index.outside, f"the index asked for {index.outside}"
        assert index.page.locator(f"a[href='{html_page.name}']").count() == 1

        slides = _open_offline(context, deck.as_uri())
        page = slides.page
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=15_000)
        count = page.evaluate("() => Reveal.getTotalSlides()")
        diagrams, drawn = _diagrams(page)
        # every slide once: nothing may load on the way either
        page.evaluate("count => { for (let i = 0; i < count; i++) Reveal.next(); Reveal.slide(0, 0); }", count)
        _settle(page)
        page.wait_for_timeout(500)  # the transition back to the title, for the screenshot
        page.screenshot(path=str(ARTIFACTS / f"slides-{sample.stem}.png"))
        assert not slides.outside, f"the slides asked for {slides.outside}"
        assert not slides.errors, f"script errors in the slides: {slides.errors}"
        assert drawn == diagrams, f"{diagrams} Mermaid diagram(s) in the slides, {drawn} drawn"
        assert count > 3, f"only {count} slides: is the slides metadata there?"
    finally:
        context.close()


def test_static_pages_link_pages_and_take_titles_from_headings() -> None:
    from nbformat.v4 import new_markdown_cell, new_notebook

    from helpers.maintainers import site

    notebook = new_notebook(cells=[
        new_markdown_cell("# 09 · Cursors\n\nA cursor *streams* a [query](https://example.org)'s `rows`.\n\n"
                          "## What you will learn\n\n- one"),
        new_markdown_cell("**Next:** [10 · Performance lab](10_performance_lab.ipynb#setup)"),
        new_markdown_cell("**Next:** [Back to the start](../README.md)"),
    ])
    page = site._for_pages(notebook, "09_cursors")
    assert site.title_of(notebook, "x") == page.metadata["title"] == "09 · Cursors"
    assert site.summary_of(notebook) == "A cursor streams a query's rows."
    assert page.cells[1].source == "**Next:** [10 · Performance lab](10_performance_lab.html#setup)"
    assert page.cells[2].source == "**Next:** [Back to the start](index.html)"
    assert notebook.cells[1].source.endswith(".ipynb#setup)"), "the notebook itself is left alone"


# --- slides that fit, navigation, speaker notes (the whole course, built once) -----------

#: Every slide in the deck: its position, heading and content height in slide pixels (the deck
#: is scaled to the window; heights are divided by that scale).  reveal.js hides the slides
#: away from the current one (display: none); a style shows them all for one layout pass, so
#: the whole deck is measured at once instead of slide by slide (the same heights, a tenth of
#: the time), and goes again when they are measured.
SLIDE_HEIGHTS_JS = """
() => {
  const height = Reveal.getConfig().height;
  const showAll = document.createElement('style');
  showAll.textContent = '.reveal .slides section { display: block !important; }';
  document.head.appendChild(showAll);
  const slides = Reveal.getSlides().map(slide => {
    const {h, v} = Reveal.getIndices(slide);
    slide.scrollTop = 0;
    const top = slide.getBoundingClientRect().top;
    const bottoms = [...slide.children].filter(c => c.tagName !== 'ASIDE').map(c => c.getBoundingClientRect().bottom);
    const content = bottoms.length ? (Math.max(...bottoms) - top) / Reveal.getScale() : 0;
    const heading = slide.querySelector('h1, h2, h3, p.slide-continued');
    return {h, v: v || 0, height: Math.round(content),
            heading: heading ? heading.textContent.replace('¶', '').trim() : ''};
  });
  showAll.remove();
  return {height, slides};
}
"""


@dataclass
class Site:
    html: list[Path]
    slides: list[Path]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """`make html` and `make slides` of every notebook, into a temporary folder."""
    _notebooks_and_vendor_or_skip()
    out = tmp_path_factory.mktemp("site")
    return Site(site.build_html(out / "html", NOTEBOOKS), site.build_slides(out / "slides", NOTEBOOKS))


@pytest.mark.browser
def test_no_slide_is_taller_than_two_screens(browser, built: Site) -> None:
    """Every slide of every deck, measured at the deck's own size; the count over one screen is reported."""
    width, height = site.SLIDE_SIZE
    context = browser.new_context(viewport={"width": width, "height": height})
    report, too_tall = {}, []
    try:
        # one page for every deck, as a reader going from deck to deck: reveal.js and Mermaid are
        # compiled once, not ten times (half the test's time)
        page = context.new_page()
        for deck in built.slides:
            page.goto(deck.as_uri(), wait_until="load")
            page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=15_000)
            _settle(page)
            measured = page.evaluate(SLIDE_HEIGHTS_JS)
            if deck.stem.startswith("04"):
                page.evaluate("() => Reveal.slide(4, 0)")
                page.wait_for_timeout(300)
                page.screenshot(path=str(ARTIFACTS / f"slide-{deck.stem}.png"))
            assert measured["height"] == height, measured["height"]
            report[deck.stem] = measured["slides"]
            too_tall += [f"{deck.stem} slide {s['h']}.{s['v']} ({s['heading']!r}): {s['height']} px"
                         for s in measured["slides"] if s["height"] > 2 * height]
    finally:
        context.close()
    slides = [s for deck in report.values() for s in deck]
    over_one = [s for s in slides if s["height"] > height]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "slide-heights.json").write_text(json.dumps(report, indent=1))
    print(f"\n{len(slides)} slides; {len(over_one)} taller than one screen ({height} px), "
          f"{len(too_tall)} taller than two", end=" ")
    assert not too_tall, "slides taller than two screens:\n" + "\n".join(too_tall)
    sections = sum(len(slide_layout.section_headings(nbformat.read(p, as_version=4))) for p in NOTEBOOKS)
    assert len(slides) > sections, f"{len(slides)} slides for {sections} ## sections: are headings starting slides?"


def _navs(page: Path) -> list[str]:
    return re.findall(r'<nav [^>]*class="course-nav".*?</nav>', page.read_text(encoding="utf-8"), re.S)


def test_every_html_page_has_previous_contents_next(built: Site) -> None:
    names = [page.name for page in built.html]
    for number, page in enumerate(built.html):
        text = page.read_text(encoding="utf-8")
        navs = _navs(page)
        assert len(navs) == 2 and navs[0] == navs[1], f"{page.name}: {len(navs)} navigation bars"
        main = text[text.index("<main>"):text.index("</main>")]
        assert main.lstrip("<main>").lstrip().startswith("<nav"), f"{page.name}: the navigation is not at the top"
        assert main.rstrip().endswith("</nav>"), f"{page.name}: the navigation is not at the end"
        links = {re.search(r'rel="(\w+)"', tag)[1]: re.search(r'href="([^"]+)"', tag)[1]
                 for tag in re.findall(r"<a [^>]*>", navs[0])}
        expected = {"contents": "index.html"}
        if number > 0:
            expected["prev"] = names[number - 1]
        if number + 1 < len(names):
            expected["next"] = names[number + 1]
        assert links == expected, f"{page.name}: {links}"
        assert all((page.parent / href).exists() for href in links.values())


@pytest.mark.browser
def test_next_and_previous_lead_to_the_neighbours(browser, built: Site) -> None:
    first, second = built.html[0], built.html[1]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(first.as_uri())
        page.locator("nav.course-nav").last.get_by_role("link", name=re.compile("^Next")).click()
        page.wait_for_load_state()
        assert page.url.endswith(second.name), page.url
        page.locator("nav.course-nav").first.get_by_role("link", name=re.compile("^← Previous")).click()
        page.wait_for_load_state()
        assert page.url.endswith(first.name), page.url
        page.locator("nav.course-nav").first.get_by_role("link", name="Contents").click()
        page.wait_for_load_state()
        assert page.url.endswith("index.html"), page.url
    finally:
        context.close()


def test_the_index_keeps_names_with_underscores(built: Site) -> None:
    index = (built.html[0].parent / "index.html").read_text(encoding="utf-8")
    wanted = [name for path in NOTEBOOKS for name in re.findall(r"`(\w+_\w+)`", _summary_source(path))]
    for name in wanted:
        assert name in index, f"{name} lost its underscores in the index"
    assert site.summary_of(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "# T\n\nLoad with `copy_records_to_table`, **fast**, _then_ snake_case_names.")])) == \
        "Load with copy_records_to_table, fast, then snake_case_names."


def _summary_source(path: Path) -> str:
    cell = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    return next((p for p in cell.source.split("\n\n")[1:] if p.strip() and not p.startswith("#")), "")


def test_every_section_has_speaker_notes() -> None:
    for path in NOTEBOOKS:
        headings = slide_layout.section_headings(nbformat.read(path, as_version=4))
        notes = slide_layout.read_notes(site.NOTES_DIR / f"{path.stem}.md")
        assert [h for h in headings if h not in notes] == [], f"{path.stem}: sections without speaker notes"
        assert [n for n in notes if n not in headings] == [], f"{path.stem}: notes for sections it does not have"
        assert all(len(text) > 40 for text in notes.values()), f"{path.stem}: empty notes"


def test_decks_carry_the_speaker_notes(built: Site) -> None:
    for deck, path in zip(built.slides, NOTEBOOKS, strict=True):
        sections = len(slide_layout.section_headings(nbformat.read(path, as_version=4)))
        assert deck.read_text(encoding="utf-8").count('<aside class="notes">') == sections, deck.name


# --- the slide layout, without a browser ---------------------------------------------------

def _types(deck: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(c.metadata["slideshow"]["slide_type"], c.source.split("\n", 1)[0]) for c in deck.cells]


def test_every_heading_starts_a_slide_also_inside_a_cell() -> None:
    from nbformat.v4 import new_markdown_cell, new_notebook

    notebook = new_notebook(cells=[new_markdown_cell(
        "# Title\n\nIntro.\n\n## One\n\nText.\n\n```bash\n# a comment, not a heading\nls\n```\n\n"
        "### Detail\n\nMore.\n\n## Two\n\nEnd.")])
    original = json.dumps(notebook, sort_keys=True)
    deck = slide_layout.lay_out(notebook, {"One": "Say one thing."})
    assert _types(deck) == [
        ("slide", "# Title"), ("-", "Intro."),
        ("slide", "## One"), ("notes", "Say one thing."), ("-", "Text."), ("-", "```bash"),
        ("subslide", "### Detail"), ("-", "More."),
        ("slide", "## Two"), ("-", "End."),
    ]
    assert json.dumps(notebook, sort_keys=True) == original, "the notebook itself is left alone"
    assert len({c.id for c in deck.cells}) == len(deck.cells), "every piece has an id of its own"


def test_a_long_output_goes_on_in_continued_sub_slides() -> None:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    lines = [f"line {n}" for n in range(100)]
    cell = new_code_cell("print(lines)", outputs=[new_output("stream", name="stdout", text="\n".join(lines) + "\n")])
    deck = slide_layout.lay_out(new_notebook(cells=[new_markdown_cell("## Long"), cell]))
    code = [c for c in deck.cells if c.cell_type == "code"]
    assert len(code) >= 4, "100 lines of output need several slides"
    assert "slide-continued" not in code[0].metadata.get("tags", [])
    assert all("slide-continued" in c.metadata["tags"] for c in code[1:])
    shown = "".join(c.outputs[0].text for c in code).splitlines()
    assert shown == lines, "every line once, in order"
    continued = [c for c in deck.cells if "slide-continued" in c.source]
    assert len(continued) == len(code) - 1 and "Long (continued)" in continued[0].source
    assert all(slide_layout.code_pieces(c)[0].height <= slide_layout.BUDGET for c in code)


def test_a_long_table_is_cut_between_rows_with_its_header() -> None:
    from nbformat.v4 import new_code_cell, new_output

    rows = "".join(f"    <tr>\n      <th>{n}</th>\n      <td>brand {n}</td>\n    </tr>\n" for n in range(60))
    table = ('<div>\n<table border="1" class="dataframe">\n  <thead>\n    <tr><th></th><th>name</th></tr>\n'
             f"  </thead>\n  <tbody>\n{rows}  </tbody>\n</table>\n</div>")
    cell = new_code_cell("frame", outputs=[new_output("execute_result", data={"text/html": table, "text/plain": "…"},
                                                      execution_count=1)])
    pieces = slide_layout.code_pieces(cell)
    assert len(pieces) > 1
    parts = [p.cell.outputs[0].data["text/html"] for p in pieces]
    assert all("<thead>" in part and "</table>" in part for part in parts)
    assert sum(part.count("<td>") for part in parts) == 60


@pytest.mark.browser
def test_the_speaker_view_shows_the_sections_notes(browser, built: Site) -> None:
    """S opens reveal.js's speaker view (a pop-up, from file:// too) with the notes of the slide."""
    deck, path = built.slides[0], NOTEBOOKS[0]
    heading = slide_layout.section_headings(nbformat.read(path, as_version=4))[0]
    first_line = slide_layout.read_notes(site.NOTES_DIR / f"{path.stem}.md")[heading].splitlines()[0]
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = context.new_page()
        page.goto(deck.as_uri())
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=15_000)
        page.evaluate("() => Reveal.slide(1, 0)")  # the title is slide 0; the first ## section is slide 1
        with page.expect_popup() as opened:
            page.keyboard.press("s")
        speaker = opened.value
        words = re.sub(r"[*`]", "", first_line).split()[:6]
        speaker.wait_for_function("words => words.every(w => document.body.innerText.includes(w))", arg=words,
                                  timeout=15_000)
    finally:
        context.close()
