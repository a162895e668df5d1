"""Shared pytest fixtures (loaded from tests/conftest.py): live server, browser, login helpers."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.asgi_server import LiveASGIServer

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def _asgi_server(django_db_setup, django_db_blocker):
    server = LiveASGIServer().start()
    yield server
    server.stop()


@pytest.fixture
def asgi_server(_asgi_server, transactional_db) -> LiveASGIServer:
    """The live ASGI server; the test's data is committed so the server's threads see it."""
    return _asgi_server


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM) or shutil.which("chromium") is not None


@pytest.fixture(scope="session")
def _browser():
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI and was not found at {CHROMIUM}")
        pytest.skip(
            f"browser test skipped: Chromium not found at {CHROMIUM} (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def browser(_browser):
    return _browser


@pytest.fixture
def new_page(browser, asgi_server):
    """``new_page()`` → a page in a fresh browser context (its own cookies), on the live server."""
    contexts = []

    def make():
        context = browser.new_context(
            base_url=asgi_server.url, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
