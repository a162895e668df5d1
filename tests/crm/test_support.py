"""The test support servers themselves: the loopback provider server base and the moto S3 storage."""

from __future__ import annotations

import http.client
import json
import time
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from storages.backends.s3 import S3Storage

from tests.support.provider_server import ProviderServer


class EchoProvider(ProviderServer):
    routes = {
        ("POST", r"/v1/(?P<phone_id>\d+)/messages"): "send_message",
        ("GET", r"/v1/health"): lambda request: (200, {}, {"ok": True}),
    }

    def send_message(self, request):
        return 200, {"X-Provider": "echo"}, {"to": request.json["to"], "via": request.groups}


def call(server: ProviderServer, method: str, path: str, body=None, timeout: float = 5.0):
    """One request on a fresh connection → (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Authorization": "Bearer t0k"}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def provider():
    with EchoProvider() as server:
        yield server


def test_it_routes_a_request_to_its_handler_with_the_path_groups(provider):
    status, headers, body = call(provider, "POST", "/v1/123/messages", {"to": "+15550001"})

    assert status == 200
    assert headers["X-Provider"] == "echo"
    assert json.loads(body) == {"to": "+15550001", "via": {"phone_id": "123"}}


def test_it_answers_404_for_an_unknown_route_and_records_it(provider):
    status, _, _ = call(provider, "POST", "/v1/health")  # GET only

    assert status == 404
    assert [(r.method, r.path, r.route) for r in provider.requests] == [
        ("POST", "/v1/health", None)
    ]


def test_it_records_every_request_with_headers_and_body(provider):
    call(provider, "POST", "/v1/7/messages?debug=1", {"to": "a"})
    call(provider, "GET", "/v1/health")

    first, second = provider.requests
    assert first.method == "POST"
    assert first.path == "/v1/7/messages"
    assert first.query == {"debug": ["1"]}
    assert first.headers.get("authorization") == "Bearer t0k"
    assert first.json == {"to": "a"}
    assert first.body == b'{"to": "a"}'
    assert first.groups == {"phone_id": "7"}
    assert second.route == ("GET", r"/v1/health")
    assert provider.requests_to("POST", r"/v1/\d+/messages") == [first]


def test_it_injects_a_status_for_the_next_n_requests_only(provider):
    provider.fail("POST", r"/v1/\d+/messages", status=503, body={"error": "down"}, times=2)

    results = [call(provider, "POST", "/v1/1/messages", {"to": "x"}) for _ in range(3)]

    assert [status for status, _, _ in results] == [503, 503, 200]
    assert json.loads(results[0][2]) == {"error": "down"}
    assert call(provider, "GET", "/v1/health")[0] == 200  # other routes untouched


def test_it_injects_a_delay_that_a_client_timeout_notices(provider):
    provider.delay("GET", r"/v1/health", 2.0, times=1)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        call(provider, "GET", "/v1/health", timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert call(provider, "GET", "/v1/health")[0] == 200


def test_it_injects_a_malformed_body(provider):
    provider.malformed("POST", r"/v1/\d+/messages")

    status, headers, body = call(provider, "POST", "/v1/1/messages", {"to": "x"})

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(body)


def test_it_injects_an_oversized_body(provider):
    provider.oversized("GET", r"/v1/health", size=3 * 1024 * 1024)

    status, headers, body = call(provider, "GET", "/v1/health")

    assert status == 200
    assert int(headers["Content-Length"]) == len(body) >= 3 * 1024 * 1024 - 12


def test_it_closes_the_connection_without_an_answer(provider):
    provider.close_connection("POST", r"/v1/\d+/messages", times=1)

    with pytest.raises(http.client.RemoteDisconnected):
        call(provider, "POST", "/v1/1/messages", {"to": "x"})
    assert call(provider, "POST", "/v1/1/messages", {"to": "x"})[0] == 200
    assert len(provider.requests) == 2


def test_it_clears_faults(provider):
    provider.fail("GET", r"/v1/health", status=500)
    provider.clear_faults()

    assert call(provider, "GET", "/v1/health")[0] == 200


def test_it_stores_opens_and_deletes_a_file_through_the_s3_storage(s3_storage):
    name = f"media/{uuid.uuid4().hex}.txt"

    saved = default_storage.save(name, ContentFile(b"hello s3"))

    assert isinstance(default_storage._wrapped, S3Storage)
    assert s3_storage.keys("media/") == [saved]  # really in the moto bucket
    with default_storage.open(saved) as handle:
        assert handle.read() == b"hello s3"
    assert default_storage.exists(saved)
    default_storage.delete(saved)
    assert not default_storage.exists(saved)
    assert s3_storage.keys("media/") == []
