"""Every response carries the Content-Security-Policy (crm/csp.py): scripts and styles from our own
files only, sockets to the page's own host, no framing. The API docs have their own, and media on
S3 is allowed where the media API sends the browser."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.request['PATH_INFO']} answered without a Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def test_every_kind_of_response_carries_the_policy(cast, api):
    owner = Client()
    owner.force_login(cast.owner)
    responses = [
        Client().get("/login/"),  # a signed-out page
        owner.get("/o/acme/contacts/"),  # a dashboard page
        owner.get("/o/acme/contacts/", HTTP_HX_REQUEST="true"),  # an htmx partial
        Client().get("/no-such-page/"),  # our 404 page
        api(cast.owner).get("/api/v1/contacts/"),  # JSON
    ]
    for response in responses:
        assert policy(response) == {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "img-src": ["'self'", "data:"],
            "media-src": ["'self'"],
            "connect-src": ["'self'", "ws://testserver", "wss://testserver"],
            "frame-ancestors": ["'none'"],
            "object-src": ["'none'"],
            "base-uri": ["'self'"],
            "form-action": ["'self'"],
        }


def test_a_page_served_under_another_host_name_opens_sockets_to_that_host(cast, settings):
    settings.ALLOWED_HOSTS = ["parley.example.com"]
    response = Client().get("/login/", HTTP_HOST="parley.example.com")
    assert policy(response)["connect-src"] == [
        "'self'",
        "ws://parley.example.com",
        "wss://parley.example.com",
    ]


def test_a_request_for_a_host_not_allowed_is_refused_with_a_policy_and_no_host_in_it(settings):
    settings.ALLOWED_HOSTS = ["parley.example.com"]
    response = Client().get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert policy(response)["connect-src"] == ["'self'"]


def test_the_api_docs_have_their_own_policy_and_run_no_inline_script(db):
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    docs = policy(response)
    assert docs["script-src"] == ["'self'"]
    assert docs["style-src"] == ["'self'", "'unsafe-inline'"]  # Swagger UI writes inline styles
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all("src=" in tag for tag in scripts), scripts

    # Swagger UI's init script is a file of its own, served from the same view
    init = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1)
    script = Client().get(init.replace("&amp;", "&"))
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_media_on_s3_may_be_shown_from_the_bucket_the_media_api_redirects_to(db, s3_storage):
    response = Client().get("/login/")
    directives = policy(response)
    assert s3_storage.endpoint_url in directives["img-src"]
    assert s3_storage.endpoint_url in directives["media-src"]
