"""Pytest plugin: one Chromium (the system's) driven by Playwright, shared by every browser test.

Playwright's sync API runs one event loop per process, so the whole session shares one instance.
Chromium missing: skip locally, fail in CI (where `CI` is set).
"""

import os

import pytest

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="session")
def chromium_path():
    """The system Chromium; missing means skip locally, fail in CI."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` to run the browser tests"
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set, so a missing browser is a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser(chromium_path):
    """A headless Chromium for the whole test session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()
