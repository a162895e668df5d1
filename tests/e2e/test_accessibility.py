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
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import tests.support.factories  # noqa: F401 - registers the factories
from accounts import services as account_services
from messaging.models import ImportJob, JobState
from messaging.services.imports import import_run
from tests.support.browser import elsewhere, severe_axe_violations, sign_in, watch_csp
from tests.support.sweep import EXCLUDED_PREFIXES, FACTORIES, _walk, dashboard_routes

pytestmark = pytest.mark.browser

WIDTHS = [1280, 390]

# The sweep's exclusions that are not pages of ours, and why. The two token routes among its
# exclusions are pages: they are audited below with real tokens (TOKEN_ROUTES).
LEFT_OUT = {
    "admin/": "Django admin's own templates, for staff superusers only",
    "api/v1/": "JSON; its docs page is drf-spectacular's Swagger UI, third-party markup",
    "media/<str:token>/": "answers a media file, not a page",
    "static/": "static files",
    "webhooks/": "providers' webhook endpoints: JSON, no page",
}
TOKEN_ROUTES = {"invitations/<str:token>/", "password-reset/<uidb64>/<token>/"}


def finished_import(cast) -> ImportJob:
    """The import job page redirects a draft to its mapping: this one has run to the end."""
    job = FACTORIES[ImportJob](cast)
    ImportJob.objects.filter(pk=job.pk).update(state=JobState.QUEUED)
    import_run(job.pk)
    return ImportJob.objects.get(pk=job.pk)


# Pages that show only in a later state than the object the sweep's factory builds.
LATER_STATE = {"o/<slug:org_slug>/contacts/import/<int:pk>/job/": finished_import}


def is_page(response) -> bool:
    return (
        response.status_code == 200
        and not getattr(response, "streaming", False)
        and response.content.lstrip()[:15].lower() == b"<!doctype html>"
    )


def signed_out_pages(cast) -> list[tuple[str, int]]:
    """``[(path, expected status)]`` seen by a visitor who is not signed in."""
    visitor = Client()
    pages = [
        ("/" + pattern, 200)
        for pattern, _view in _walk(get_resolver().url_patterns)
        if not pattern.startswith("o/")
        and "<" not in pattern
        and not any(pattern.startswith(prefix) for prefix in EXCLUDED_PREFIXES)
        and is_page(visitor.get("/" + pattern))
    ]
    _invitation, token = account_services.invitation_create(
        organization=cast.org_a, email="newcomer@a.example", role="agent", actor=cast.owner
    )
    uid = urlsafe_base64_encode(force_bytes(cast.admin.pk))
    reset_token = default_token_generator.make_token(cast.admin)
    return [
        *pages,
        (f"/invitations/{token}/", 200),  # sign up to join
        ("/invitations/not-a-real-token/", 404),  # the invitation is gone
        (f"/password-reset/{uid}/{reset_token}/", 200),  # choose a new password
        ("/no-such-page/", 404),
    ]


def owner_pages(cast) -> list[tuple[str, int]]:
    """Every route whose GET by the owner answers a full HTML document with 200."""
    objects = {model: factory(cast) for model, factory in FACTORIES.items()}
    owner = Client()
    owner.force_login(cast.owner)
    paths = [
        "/" + pattern
        for pattern, _view in _walk(get_resolver().url_patterns)
        if not pattern.startswith("o/")
        and "<" not in pattern
        and not any(pattern.startswith(prefix) for prefix in EXCLUDED_PREFIXES)
    ]
    routes, _unexplained = dashboard_routes()
    for route in routes:
        obj = None
        if route.object_param:
            later = LATER_STATE.get(route.pattern)
            obj = later(cast) if later else objects[route.model]
        paths.append(route.path(cast.org_a.slug, route.object_value(obj) if obj else None))
    return [(path, 200) for path in paths if is_page(owner.get(path))]


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
