"""Error pages: the project's own 404 page in both modes (``make run`` has DEBUG on, which must not
list the site's routes), its own 500 page in production, and the site's icon at /favicon.ico."""

from __future__ import annotations

import httpx
import pytest
from django.db import connection
from django.urls import path

import crm.urls
from messaging.services.contacts import contact_create

ROUTE_LISTING = "Using the URLconf defined in"  # Django's technical 404 lists every route after it


def boom(request):
    raise RuntimeError("a bug")


# A URL conf with a view that fails, and the project's handlers (Django reads them from it).
urlpatterns = [*crm.urls.urlpatterns, path("boom/", boom)]
handler404 = crm.urls.handler404
handler500 = crm.urls.handler500


def is_project_page(response, status: int) -> bool:
    body = response.content.decode()
    return (
        response.status_code == status
        and 'data-testid="error-page"' in body
        and f'<p class="error-status">{status}</p>' in body
        and "Back to Parley" in body
    )


@pytest.mark.parametrize("debug", [True, False], ids=["make run (DEBUG)", "production"])
def test_an_unknown_address_shows_the_projects_404_page_not_the_routes(client, db, settings, debug):
    settings.DEBUG = debug

    response = client.get("/no/such/page/")

    assert is_project_page(response, 404), response.content[:500]
    body = response.content.decode()
    assert ROUTE_LISTING not in body and "o/&lt;slug:org_slug&gt;/" not in body
    assert "admin/" not in body and "webhooks/" not in body


def test_a_page_a_view_does_not_find_is_the_projects_404_with_debug_on(cast, client, settings):
    settings.DEBUG = True
    client.force_login(cast.owner)

    response = client.get("/o/no-such-organization/contacts/")

    assert is_project_page(response, 404), response.content[:500]
    assert "Raised by" not in response.content.decode()


def test_an_unknown_api_address_is_the_api_error_body_with_debug_on(client, db, settings):
    settings.DEBUG = True

    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_missing_trailing_slash_still_redirects_with_debug_on(client, db, settings):
    settings.DEBUG = True

    response = client.get("/login")

    assert response.status_code == 301 and response["Location"] == "/login/"


def test_a_bug_shows_the_projects_500_page_in_production(client, db, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False

    response = client.get("/boom/")

    assert is_project_page(response, 500), response.content[:500]
    assert "a bug" not in response.content.decode()


def test_a_bug_keeps_djangos_traceback_page_with_debug_on(client, db, settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = True
    client.raise_request_exception = False

    response = client.get("/boom/")

    assert response.status_code == 500 and "RuntimeError" in response.content.decode()


def test_the_site_icon_is_served_at_favicon_ico_and_named_by_each_page(client, db):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])
    login = client.get("/login/").content.decode()
    assert f'<link rel="icon" href="{response["Location"]}" type="image/svg+xml">' in login


@pytest.mark.django_db(transaction=True)
def test_error_pages_under_asgi_give_back_the_connections_they_open(asgi_server, cast, client):
    """Django renders these pages in executor threads of their own; the signed-in user's menu
    reads the database there. However many are served, no connection is left behind."""
    client.force_login(cast.agent)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    other = contact_create(organization=cast.org_b, data={"name": "Theirs"})

    def open_connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = open_connections()
    with httpx.Client(base_url=asgi_server.url, headers={"Cookie": cookie}) as browser:
        for n in range(12):
            missing = browser.get(f"/no-such-page-{n}/")
            theirs = browser.get(f"/o/acme/contacts/{other.pk}/")
            assert missing.status_code == theirs.status_code == 404
            assert "Agent" in missing.text  # the signed-in menu: the page read the user
    assert open_connections() <= before + 1
