"""The embedded mode (DESIGN §6): ``manage.py serve`` on SQLite with an in-process worker and beat,
and the in-memory channel layer delivering a worker thread's push at once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.layers import channel_layers
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from crm.asgi import application
from crm.live import org_group, push_now

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
THREAD_SAFE_LAYER = {"default": {"BACKEND": "crm.channel_layer.ThreadSafeInMemoryChannelLayer"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(data_dir: Path) -> dict[str, str]:
    """A clean environment: no DATABASE_URL, REDIS_URL, PARLEY_ENV, nor the test settings."""
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "PARLEY_DATA_DIR": str(data_dir),
        "PARLEY_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def poll(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


@pytest.mark.embedded
def test_it_serves_with_an_in_process_worker_and_beat_on_sqlite(tmp_path):
    # Given a fresh data directory and nothing else configured
    env = embedded_env(tmp_path)
    migrate = subprocess.run(
        [*MANAGE, "migrate", "-v", "0"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    secrets_file = tmp_path / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    first_secrets = secrets_file.read_text()
    first_inode = secrets_file.stat().st_ino

    # When `manage.py serve` runs
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*MANAGE, "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> dict | None:
            assert server.poll() is None, "serve exited:\n" + log_path.read_text()
            try:
                status, body = get_json(f"http://127.0.0.1:{port}/readyz")
            except OSError:
                return None
            return body if status == 200 else None

        # Then /readyz answers 200 in the embedded mode, every dependency ok
        body = poll(ready, timeout=60)
        assert body is not None, log_path.read_text()
        assert body["mode"] == "embedded"
        assert {name: check["status"] for name, check in body["checks"].items()} == {
            "database": "ok",
            "cache": "ok",
            "broker": "ok",
            "storage": "ok",
        }
        assert f"http://127.0.0.1:{port}/" in log_path.read_text()

        # And beat → the in-process worker ran the heartbeat task, which wrote to the database
        worker = poll(
            lambda: (
                (w := get_json(f"http://127.0.0.1:{port}/readyz")[1]["worker"])["status"] == "ok"
                and w
            ),
            timeout=20,
        )
        assert worker is not None, log_path.read_text()
        assert (tmp_path / "parley.sqlite3").is_file()

        # And the dev secrets were created once and reused by the later boots
        assert secrets_file.read_text() == first_secrets
        assert secrets_file.stat().st_ino == first_inode
        shell = subprocess.run(
            [
                *MANAGE,
                "shell",
                "-c",
                "from django.conf import settings; print(settings.SECRET_KEY)",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert shell.stdout.strip().splitlines()[-1] == json.loads(first_secrets)["SECRET_KEY"], (
            shell.stderr
        )
    finally:
        # SIGTERM stops uvicorn, then the worker and beat; SIGKILL only if that hangs
        server.send_signal(signal.SIGTERM)
        try:
            returncode = server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
            returncode = None
    output = log_path.read_text()
    assert returncode == 0, output
    assert "Stopping the worker and beat" in output
    # And the in-memory broker's connections raised no kombu warning (the URL names its host)
    assert "No hostname was supplied" not in output


# --- the channel layer: a push from a worker thread reaches an open socket at once ---------------


@pytest.fixture
def embedded_layer(settings):
    """The embedded channel layer for this test (channels drops cached layers on setting_changed)."""
    settings.CHANNEL_LAYERS = THREAD_SAFE_LAYER
    assert channel_layers.backends == {}
    yield
    channel_layers.backends = {}


def session_cookie(client, user) -> str:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def open_socket(server, path: str, cookie: str | None):
    headers = {"Cookie": cookie} if cookie else {}
    return await connect(f"{server.ws_url}{path}", origin=server.url, additional_headers=headers)


def test_it_delivers_a_push_from_a_worker_thread_within_a_second(
    embedded_layer, asgi_server, cast, client
):
    cookie = session_cookie(client, cast.owner)
    group = org_group(cast.org_a.id)

    async def scenario() -> dict:
        ws = await open_socket(asgi_server, "/ws/o/acme/events/", cookie)
        try:
            # When a worker thread (not the server's loop) pushes to the organization
            pusher = threading.Thread(target=push_now, args=(group, "ping", {"text": "hi"}))
            pusher.start()
            # Then the frame arrives within a second (a deadline, not a sleep)
            frame = await asyncio.wait_for(ws.recv(), 1.0)
            pusher.join(5)
            return json.loads(frame)
        finally:
            await ws.close()

    assert asyncio.run(scenario()) == {"event": "ping", "data": {"text": "hi"}}


async def pushes_delivered_before(
    server, cookie: str, group: str, count: int, deadline: float
) -> int:
    """Push ``count`` times from worker threads, one after the other arrived; how many arrived
    before ``deadline`` seconds passed."""
    ws = await open_socket(server, "/ws/o/acme/events/", cookie)
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + deadline
    delivered = 0
    try:
        for n in range(count):
            threading.Thread(target=push_now, args=(group, "ping", {"n": n})).start()
            frame = await asyncio.wait_for(ws.recv(), max(0.0, ends_at - loop.time()))
            assert json.loads(frame)["data"] == {"n": n}
            delivered += 1
    except TimeoutError:
        pass
    finally:
        await ws.close()
    return delivered


def test_it_delivers_a_burst_of_worker_pushes_within_a_second(
    embedded_layer, asgi_server, cast, client
):
    # The stock InMemoryChannelLayer wakes the server's loop only when something else does
    # (uvicorn ticks every 0.1 s), so each push waits for a tick: ~2.5 s for 30 of them.
    cookie = session_cookie(client, cast.owner)

    delivered = asyncio.run(
        pushes_delivered_before(asgi_server, cookie, org_group(cast.org_a.id), 30, deadline=1.0)
    )

    assert delivered == 30, f"{delivered} of 30 pushes within 1 s"


def test_it_rejects_a_member_of_another_organization(embedded_layer, asgi_server, cast, client):
    cookie = session_cookie(client, cast.b_member)

    # Over the wire a close before accept is an HTTP 403 on the handshake (uvicorn): no socket
    async def over_the_wire() -> int:
        with pytest.raises(InvalidStatus) as rejected:
            await open_socket(asgi_server, "/ws/o/acme/events/", cookie)
        return rejected.value.response.status_code

    assert asyncio.run(over_the_wire()) == 403

    # And the consumer's own close code says why: not a member
    assert asyncio.run(consumer_close_code("/ws/o/acme/events/", cookie)) == 4404


def test_it_rejects_an_anonymous_socket(embedded_layer, asgi_server, cast):
    async def over_the_wire() -> int:
        with pytest.raises(InvalidStatus) as rejected:
            await open_socket(asgi_server, "/ws/o/acme/events/", None)
        return rejected.value.response.status_code

    assert asyncio.run(over_the_wire()) == 403
    assert asyncio.run(consumer_close_code("/ws/o/acme/events/", None)) == 4401


def test_it_accepts_the_owner_as_a_positive_control(embedded_layer, asgi_server, cast, client):
    cookie = session_cookie(client, cast.owner)
    assert asyncio.run(consumer_close_code("/ws/o/acme/events/", cookie)) is None


async def consumer_close_code(path: str, cookie: str | None) -> int | None:
    """The close code the consumer chose (``None`` if it accepted), via the ASGI app in-process.

    (``channels.testing`` cannot be imported without daphne, so this speaks ASGI directly.)
    """
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "websocket",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "subprotocols": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "websocket.connect"})
    answer = await communicator.receive_output(5)
    await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
    await communicator.wait(5)
    if answer["type"] == "websocket.accept":
        return None
    assert answer["type"] == "websocket.close", answer
    return answer.get("code")
