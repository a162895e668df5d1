"""The dashboard's pages, discovered, not listed: what the browser checks visit (the accessibility
audit, tests/e2e/test_accessibility.py; the rendered-form check, tests/e2e/test_forms.py).

Every route of the URL conf (as the tenancy sweep finds them, tests/support/sweep.py) whose GET by
an owner answers a full HTML document with 200, its objects built by the sweep's factories, plus
the signed-out pages (login, sign-up, password reset, invitations, the 404 page). A route that
answers anything else (a redirect after an action, a 405 for POST-only, an htmx partial, a CSV) is
left out by that answer.
"""

from __future__ import annotations

from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.urls import get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import tests.support.factories  # noqa: F401 - registers the factories
from accounts import services as account_services
from messaging.models import ImportJob, JobState
from messaging.services.imports import import_run
from tests.support.sweep import EXCLUDED_PREFIXES, FACTORIES, _walk, dashboard_routes


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
