"""Starts the real app on a free local port and gives tests a headless Debian Chromium page."""

import os
import tempfile

import pytest

from benchmarks.harness import CHROMIUM, FLAGS, serve


@pytest.fixture(scope="session")
def app_url():
    with serve(tempfile.mkdtemp(prefix="archscope-e2e-")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(90_000)
    yield pg
    context.close()
