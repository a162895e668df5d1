"""Shared pytest fixtures (loaded from tests/conftest.py): live server, browser, login helpers,
a real Celery worker process, an S3 server."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.support.asgi_server import LiveASGIServer
from tests.support.celery_worker import CeleryWorkerProcess
from tests.support.s3 import S3Server

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


@pytest.fixture(scope="module")
def _browser(django_db_setup):
    """Chromium for one test module at a time.

    Playwright's sync API keeps an asyncio loop running on the main thread while it lives, and
    Django's async guard then refuses every ORM call from the test thread. The guard is relaxed
    only while the browser is open (the test thread never runs Django code *inside* that loop), and
    the browser lives per module so the loop never outlasts the browser tests.
    """
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI and was not found at {CHROMIUM}")
        pytest.skip(
            f"browser test skipped: Chromium not found at {CHROMIUM} (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture(autouse=True)
def _fresh_cache(settings):
    """Each test gets its own, empty cache key space (failed-login counters live there).

    A new key prefix instead of ``cache.clear()``: flushing the shared Redis database would wipe the
    keys of other test processes running at the same time.
    """
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}-{uuid.uuid4().hex[:8]}"}
        for name, config in settings.CACHES.items()
    }


@pytest.fixture
def browser(_browser):
    return _browser


@pytest.fixture
def new_page(browser, asgi_server):
    """``new_page()`` → a page in a fresh browser context (its own cookies), on the live server."""
    contexts = []

    def make():
        # bypass_csp: Playwright's wait_for_function runs its predicate through eval(), which the
        # app's Content-Security-Policy refuses. The tests of the policy itself (tests/e2e/test_csp.py,
        # the accessibility audit) open contexts of their own, with the policy enforced.
        context = browser.new_context(
            base_url=asgi_server.url, viewport={"width": 1280, "height": 800}, bypass_csp=True
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def celery_worker(transactional_db):
    """A real ``celery worker`` process on the test queue and database (tests/support/celery_worker.py).

    ``transactional_db``: the test's rows are committed, so the worker sees them, and the worker's
    rows are visible to the test.
    """
    worker = CeleryWorkerProcess().start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def _s3_server():
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_storage(settings, _s3_server) -> S3Server:
    """``default_storage`` is S3 (moto on loopback) for this test; Django resets its storage cache
    when the ``settings`` fixture changes ``STORAGES`` (django.test.signals.storages_changed)."""
    settings.STORAGES = {**settings.STORAGES, "default": _s3_server.storage_setting()}
    return _s3_server


@pytest.fixture
def no_subscribers():
    """Nobody subscribed to what sessions_app publishes (as before messaging existed): the
    drainer records those events as waiting. Restored afterwards."""
    from crm import events as bus
    from sessions_app.queue import TOPIC

    handlers = bus.subscribers(TOPIC)
    for handler in handlers:
        bus.unsubscribe(TOPIC, handler)
    yield
    for handler in handlers:
        bus.subscribe(TOPIC, handler)
