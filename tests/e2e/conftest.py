"""Browser tests: Playwright's sync API runs an asyncio loop on the main thread while it lives.

Django's async guard sees that loop and refuses every ORM call made from the test thread
(fixtures, assertions, the transactional flush) with ``SynchronousOnlyOperation``. So in this
package the browser lives for one module at a time, and the guard is relaxed only while it does:
the test thread never runs Django code inside that loop, it only shares the thread with it.
A session-long browser would leave the loop running under every test collected after this package.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.fixtures import CHROMIUM, CHROMIUM_ARGS, chromium_available


@pytest.fixture(scope="module")
def _browser(django_db_setup):
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
    """Failed-login counters live in the cache (Redis db 14): give each test its own, empty key space.

    A new key prefix instead of ``cache.clear()``: flushing the shared Redis database would wipe the
    keys of other test processes running at the same time (pytest-xdist, other checkouts).
    """
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}-{uuid.uuid4().hex[:8]}"}
        for name, config in settings.CACHES.items()
    }
