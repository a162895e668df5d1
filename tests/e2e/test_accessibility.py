"""An accessibility audit of every page: axe-core in Chromium, at desktop and phone width.

The pages are discovered, not listed: every route of the URL conf (as the tenancy sweep finds
them, tests/support/sweep.py) whose GET by an owner answers a full HTML document with 200, its
objects built by the sweep's factories, plus the signed-out pages (login, sign-up, password reset,
invitations, the 404 page). A route that answers anything else (a redirect after an action, a
405 for POST-only, an htmx partial, a CSV) is left out by that answer; the routes left out
by name are in ``LEFT_OUT`` with their reason. A page fails on any violation of serious or critical
impact, and on any Content-Security-Policy violation seen while it loaded.
"""

from __future__ import annotations

import pytest

from tests.support.browser import elsewhere, severe_axe_violations, sign_in, watch_csp
from tests.support.pages import owner_pages, signed_out_pages
from tests.support.sweep import EXCLUDED_PREFIXES

pytestmark = pytest.mark.browser

WIDTHS = [1280, 390]

# The sweep's exclusions that are not pages of ours, and why. The two token routes among its
# exclusions are pages: they are audited below with real tokens (tests/support/pages.py).
LEFT_OUT = {
    "admin/": "Django admin's own templates, for staff superusers only",
    "api/v1/": "JSON; its docs page is drf-spectacular's Swagger UI, third-party markup",
    "media/<str:token>/": "answers a media file, not a page",
    "static/": "static files",
    "webhooks/": "providers' webhook endpoints: JSON, no page",
}
TOKEN_ROUTES = {"invitations/<str:token>/", "password-reset/<uidb64>/<token>/"}


def test_every_route_the_sweep_leaves_out_is_audited_or_explained():
    assert set(EXCLUDED_PREFIXES) == set(LEFT_OUT) | TOKEN_ROUTES


@pytest.mark.parametrize("width", WIDTHS, ids=lambda width: f"{width}px")
def test_no_page_has_a_serious_accessibility_violation(
    width, browser, asgi_server, cast, password, record_property
):
    # Given every page a visitor and an owner can open, with one object of each kind behind them
    signed_out = elsewhere(signed_out_pages, cast)
    seen = {path for path, _status in signed_out}
    signed_in = [page for page in elsewhere(owner_pages, cast) if page[0] not in seen]
    context = browser.new_context(
        base_url=asgi_server.url, viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(10_000)
    csp_violations = watch_csp(context)
    page = context.new_page()
    problems: list[str] = []

    def audit(path: str, status: int) -> None:
        response = page.goto(path)
        if response is None or response.status != status:
            problems.append(f"{path} at {width}px: answered {response and response.status}")
            return
        for violation in severe_axe_violations(page):
            targets = "\n      ".join(violation["targets"])
            problems.append(
                f"{violation['rule']} ({violation['impact']}) on {path} at {width}px: "
                f"{violation['help']}\n      {targets}"
            )
        problems.extend(f"CSP on {path} at {width}px: {seen}" for seen in csp_violations)
        csp_violations.clear()

    # When axe audits each of them at this width, signed out and then signed in as the owner
    try:
        for path, status in signed_out:
            audit(path, status)
        sign_in(page, cast.owner, password)
        for path, status in signed_in:
            audit(path, status)
    finally:
        context.close()

    audited = len(signed_out) + len(signed_in)
    record_property("pages_audited", audited)
    print(f"axe audit at {width}px: {audited} pages ({len(signed_out)} signed out)")

    # Then none has a serious or critical violation, and none broke the Content-Security-Policy
    assert signed_in and signed_out, "the audit found no pages: discovery is broken"
    assert problems == [], f"{len(problems)} problem(s) on {audited} pages:\n" + "\n".join(problems)
