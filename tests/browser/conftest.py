"""Fixtures of the browser tests: Chromium (skipped with the reason when it is missing) and a
private JupyterLab server; see harness.py for what they set up and why."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, Lab, LabWindow, running_lab


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install chromium) "
                    "or point COURSE_CHROMIUM at a Chromium binary")
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed in this environment")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[object]:
    """One headless Chromium per test module (closed before the module's JupyterLab stops)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One `jupyter lab` for the whole module, on a copy of the notebooks, stopped through its API."""
    with running_lab(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def lab_context(browser, lab: Lab):
    """The browser profile of the JupyterLab page (a page that breaks is replaced in the same profile)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    yield context
    context.close()


@pytest.fixture(scope="module")
def lab_window(lab_context, lab: Lab) -> Iterator[LabWindow]:
    """One JupyterLab page for all notebooks: the app starts once, not once per notebook."""
    window = LabWindow(lab_context, lab)
    yield window
    window.quit()
