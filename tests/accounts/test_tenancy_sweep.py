"""The cross-tenant sweep: nothing of organization A reaches organization B, by any route.

Routes are discovered (tests/support/sweep.py), never listed here: a later issue's new endpoint,
htmx partial or websocket route is swept automatically, and one whose object the sweep cannot build
fails ``test_every_route_with_an_object_can_be_swept``. Each 404 has a positive control: the same
request by A's owner finds the object, so a sweep that 404s everything fails.
"""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from openpyxl import load_workbook
from rest_framework.test import APIClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import tests.support.factories  # noqa: F401 - registers the factories
from messaging.services.exports import XLSX_CONTENT_TYPE
from tests.support.people import key_for
from tests.support.sweep import FACTORIES, api_routes, dashboard_routes, socket_routes

VERBS = ["get", "post", "put", "patch", "delete"]
INVALID_BODY = {"bogus": [1, {"x": None}], "organization": 999999, "role": "owner"}
A_CANARIES = ("a.example", "acme")
# GET routes that answer totals only (no canary can show): checked by their numbers instead.
COUNTS = {"/api/v1/chats/unread/"}

DASHBOARD, UNEXPLAINED = dashboard_routes()
API = api_routes()
SOCKETS = socket_routes()


def _ids(routes, attr):
    return [getattr(r, attr) for r in routes]


def readable_text(response) -> str:
    """What a person reads in a response: a workbook's cells (its bytes are compressed, where no
    canary could be seen), else the body."""
    if response.get("Content-Type") == XLSX_CONTENT_TYPE:
        workbook = load_workbook(io.BytesIO(response.content), read_only=True)
        return "\n".join(
            str(value)
            for sheet in workbook.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        )
    return response.content.decode()


def make_a_objects(cast) -> dict:
    return {model: factory(cast) for model, factory in FACTORIES.items()}


def browser_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_as(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def session_api_as(user, org_slug: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    client.credentials(HTTP_X_ORGANIZATION=org_slug)
    return client


def call(client, verb: str, path: str, body=None):
    method = getattr(client, verb)
    if verb == "get":
        return method(path)
    return method(
        path, data=json.dumps(body if body is not None else {}), content_type="application/json"
    )


# --- Discovery ----------------------------------------------------------------------------------


def test_the_sweep_finds_the_routes_it_must_cover():
    patterns = {route.pattern for route in DASHBOARD}
    assert "o/<slug:org_slug>/members/<int:pk>/<slug:action>/" in patterns
    assert "/api/v1/members/{id}/" in {route.path for route in API}
    assert any(route.pattern.startswith("ws/o/") for route in SOCKETS)


def test_no_parameterised_route_escapes_the_sweep():
    assert UNEXPLAINED == [], "routes with parameters outside /o/<org_slug>/: sweep or explain them"


@pytest.mark.parametrize("route", [r for r in DASHBOARD if r.object_param], ids=lambda r: r.pattern)
def test_every_route_with_an_object_can_be_swept(route):
    assert route.model is not None, f"{route.pattern}: its view names no model"
    assert route.model in FACTORIES, (
        f"{route.pattern}: no @sweep_factory for {route.model.__name__}"
    )


@pytest.mark.parametrize("route", [r for r in API if r.params], ids=lambda r: r.path)
def test_every_api_route_with_an_object_can_be_swept(route):
    assert route.model is not None, f"{route.path}: its view names no queryset/model"
    assert route.model in FACTORIES, f"{route.path}: no @sweep_factory for {route.model.__name__}"


# --- Dashboard pages and htmx partials ----------------------------------------------------------


@pytest.mark.parametrize("route", DASHBOARD, ids=lambda r: r.pattern)
def test_a_dashboard_route_of_org_a_is_not_found_for_org_b(route, cast):
    objects = make_a_objects(cast)
    object_id = route.object_value(objects[route.model]) if route.object_param else None
    outsider_of_a = browser_as(cast.b_member)

    for verb in VERBS:
        assert call(outsider_of_a, verb, route.path("acme", object_id)).status_code == 404, verb
        if route.object_param:
            # B's own organization in the URL, A's object id: still not found.
            assert call(outsider_of_a, verb, route.path("bravo", object_id)).status_code == 404, (
                verb
            )

    owner = browser_as(cast.owner)
    positive = owner.get(route.path("acme", object_id))
    if positive.status_code == 405:  # a POST-only partial: the owner's POST reaches the view
        positive = owner.post(route.path("acme", object_id), {})
    assert positive.status_code < 400, f"positive control failed: {positive.status_code}"


def _renders_a_page(route) -> bool:
    view_class = getattr(route.view, "view_class", None)
    return view_class is None or hasattr(view_class, "get")


@pytest.mark.parametrize(
    "route",
    [r for r in DASHBOARD if not r.object_param and _renders_a_page(r)],
    ids=lambda r: r.pattern,
)
def test_a_dashboard_page_of_org_b_shows_nothing_of_org_a(route, cast):
    make_a_objects(cast)
    page = browser_as(cast.b_member).get(route.path("bravo"), follow=True)
    assert page.status_code == 200
    text = readable_text(page).lower()
    assert not [c for c in A_CANARIES if c in text]


def test_a_signed_out_visitor_is_sent_to_login(cast):
    response = Client().get("/o/acme/members/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- API ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", [r for r in API if r.params], ids=lambda r: r.path)
def test_an_api_object_of_org_a_is_not_found_for_org_b(route, cast):
    objects = make_a_objects(cast)
    path = route.concrete(route.object_value(objects[route.model]))
    b_key = api_as(key_for(cast.b_member, cast.org_b))
    b_session = session_api_as(cast.b_member, "bravo")

    for client in (b_key, b_session):
        for verb in VERBS:
            response = call(client, verb, path, INVALID_BODY)
            assert response.status_code == 404, (verb, response.status_code, response.content[:200])
            assert response.json()["error"]["code"] == "not_found"

    owner = api_as(key_for(cast.owner, cast.org_a))
    if "GET" in route.methods:
        positive = owner.get(path)
        assert positive.status_code == 200, positive.content[:300]
    else:
        positive = call(owner, route.methods[0].lower(), path, {})
        assert positive.status_code not in (403, 404) and positive.status_code < 500, (
            positive.content[:300]
        )


@pytest.mark.parametrize(
    "route", [r for r in API if not r.params and "GET" in r.methods], ids=lambda r: r.path
)
def test_an_api_list_of_org_b_never_includes_rows_of_org_a(route, cast):
    make_a_objects(cast)
    b_view = api_as(key_for(cast.b_member, cast.org_b)).get(route.path)
    assert b_view.status_code == 200, b_view.content[:300]
    text = b_view.content.decode().lower()
    assert not [c for c in A_CANARIES if c in text]

    a_view = api_as(key_for(cast.owner, cast.org_a)).get(route.path)
    if route.path in COUNTS:  # numbers, no names: B counts none of A's rows, A counts them
        assert set(b_view.json().values()) == {0}, b_view.json()
        assert any(a_view.json().values()), ("positive control: A counts its rows", a_view.json())
        return
    assert any(c in a_view.content.decode().lower() for c in A_CANARIES), (
        "positive control: A sees its rows"
    )


# --- Websockets ---------------------------------------------------------------------------------


def _socket(asgi_server, path: str, user):
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return connect(
        asgi_server.ws_url + path,
        additional_headers={"Cookie": cookie, "Origin": asgi_server.url},
        open_timeout=5,
    )


@pytest.mark.parametrize("route", SOCKETS, ids=lambda r: r.pattern)
def test_a_websocket_of_org_a_refuses_a_member_of_org_b(route, cast, asgi_server):
    obj = make_a_objects(cast)[route.model] if route.model else None
    with pytest.raises(InvalidStatus):
        _socket(asgi_server, route.path("acme", obj), cast.b_member)
    if obj is not None:  # B's own organization in the URL, A's object: refused too
        with pytest.raises(InvalidStatus):
            _socket(asgi_server, route.path("bravo", obj), cast.b_member)
    with _socket(asgi_server, route.path("acme", obj), cast.owner) as positive:
        positive.ping().wait(5)


def test_a_websocket_from_a_foreign_origin_is_refused(cast, asgi_server):
    client = Client()
    client.force_login(cast.owner)
    with pytest.raises(InvalidStatus):
        connect(
            asgi_server.ws_url + "/ws/o/acme/events/",
            additional_headers={
                "Cookie": f"sessionid={client.cookies['sessionid'].value}",
                "Origin": "https://evil.example",
            },
            open_timeout=5,
        )
