"""Benchmark: signed Cloud API webhooks into the production ASGI server, then the drain rate.

    .venv/bin/python bench/webhook_receive.py [--rate 300] [--seconds 30] [--max-seconds 10]

Never part of ``make test``. Uses its own database (``parley_bench_webhooks``, created anew and
migrated here) and Redis database 13. The server is what ``docker/`` runs: uvicorn with a worker
per core and the psycopg pool on; no Celery worker runs, so the drainer is paused while it
receives (its kicks wait in the broker, purged at the end).

1. Open loop (after the server has answered its health check 20 times and a 3-second warm-up
   at the same rate, not counted): requests sent on a fixed schedule at ``--rate`` per second
   for ``--seconds``, 1% of them forged (they must get 401 and store nothing); latency is measured from each request's
   scheduled time, so a slow server cannot hide its queueing. Then the stored rows must equal
   the 2xx count.
2. Closed loop: ``wrk`` (Debian's package) with pre-signed, unique requests, as fast as the server
   goes; the ceiling is the same server and path (``sessions_app.webhooks.Receiver``, which serves
   webhooks without Django's browser middleware) answering a trivial view (``bench/urls.py``)
   under the same load; median of 3 alternating runs. ``django_trivial`` is a trivial view
   through Django's whole middleware stack, for comparison.
3. Drain: the open loop's rows (the closed loop's are deleted first), one message each, applied
   by ``sessions_app.queue.drain`` in this process (one drainer), with the inbox's live feed on:
   a member's inbox socket is open on the server (signed in by its session cookie) and
   subscribed, and every frame it receives is counted. Ceiling, same run: the same messages
   translated and applied as one history batch (``messaging.ingest.apply``) to a second session.

Prints ``RESULT webhook_receive value=<2xx/s> unit=req/s ceiling=<req/s> ratio=<r> p50_ms=<p>
p99_ms=<p> non2xx=<n> rate=<r> django_trivial=<req/s>`` and
``RESULT webhook_drain value=<events/s> unit=events/s ceiling=<events/s> ratio=<r> rows=<n>
frames=<n> goal=1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.servers import free_port, fresh_database, start_uvicorn, stop  # noqa: E402 - after the path

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "parley_bench_webhooks"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
APP_SECRET = "bench-app-secret"
WARMUP = 3  # seconds at the open loop's rate before it is measured (workers' first requests)
TRIVIAL = "/webhooks/bench-trivial/"  # served by the webhook receiver, as the webhooks are
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DATABASE_POOL": "true",
    "REDIS_URL": REDIS,
    "PARLEY_DATA_DIR": tempfile.mkdtemp(prefix="parley-bench-"),
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
    "DEBUG": "false",  # as in production (the embedded default logs every query)
    "CHANNEL_PREFIX": f"bench-webhooks-{uuid.uuid4().hex[:8]}",  # pub/sub spans databases
}
os.environ.update(ENV)


def make_session(name: str = "Bench", owner=None):
    """A Cloud API session of the bench's organization (made with its owner the first time)."""
    import django

    django.setup()
    from accounts import services as accounts
    from accounts.models import Organization, User
    from sessions_app import services

    organization = Organization.objects.filter(slug="bench").first()
    if organization is None:
        owner = User.objects.create_user("owner@bench.example", "bench-password", name="Owner")
        organization = accounts.organization_create(name="Bench", owner=owner, slug="bench")
    session = services.session_create(
        organization=organization,
        actor=None,
        data={
            "name": name,
            "provider": "cloud_api",
            "credentials": {
                "phone_number_id": "1234567890",
                "waba_id": "42",
                "access_token": "bench-token",
                "app_secret": APP_SECRET,
                "verify_token": "bench-verify",
            },
        },
    )
    return session


class InboxSocket:
    """The owner's inbox socket, open in a thread of its own, counting the frames it receives."""

    def __init__(self, port: int, organization) -> None:
        from django.conf import settings
        from django.test import Client

        from accounts.models import User

        client = Client()
        client.force_login(User.objects.get(email="owner@bench.example"))
        self.cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        self.port, self.organization = port, organization
        self.frames = 0
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> InboxSocket:
        self.thread.start()
        if not self.ready.wait(30):
            raise SystemExit("the inbox socket never subscribed")
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)

    async def _run(self) -> None:
        from django.conf import settings
        from websockets.asyncio.client import connect

        from crm.live import push_now
        from messaging.live import inbox_group

        cookie = self.cookie
        base = f"http://127.0.0.1:{self.port}"
        async with connect(
            f"ws://127.0.0.1:{self.port}/ws/o/bench/inbox/",
            additional_headers={
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}",
                "Origin": base,
            },
            max_size=None,
        ) as ws:
            group = inbox_group(self.organization.pk)
            while not self.ready.is_set():  # probes until one comes back: subscribed
                await asyncio.to_thread(push_now, group, "bench.probe", {})
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                    if frame["event"] == "bench.probe":
                        self.ready.set()
                except TimeoutError:
                    continue
            while not self.stop.is_set():
                try:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except TimeoutError:
                    continue
                self.frames += frame["event"] == "inbox.update"


def history_ceiling(rows: list[str]) -> float:
    """The same messages translated and applied as one history batch to a second session, in
    one transaction: events a second."""
    from django.db import transaction

    from messaging import ingest
    from sessions_app.providers import events as ev
    from sessions_app.services import provider_for

    session = make_session("Ceiling")
    provider = provider_for(session)
    started = time.perf_counter()
    messages = []
    for raw in rows:
        messages.extend(provider.translate(json.loads(raw)))
    with transaction.atomic():
        ingest.apply(session, [ev.HistoryBatch(messages=messages, progress=100)])
    return len(rows) / (time.perf_counter() - started)


def body(n: int) -> bytes:
    """A realistic inbound text message (Meta's envelope), unique per ``n``."""
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "42",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550100199",
                                "phone_number_id": "1234567890",
                            },
                            "contacts": [
                                {"profile": {"name": f"Person {n}"}, "wa_id": f"8529{n:07d}"}
                            ],
                            "messages": [
                                {
                                    "from": f"8529{n:07d}",
                                    "id": f"wamid.BENCH{n:012d}",
                                    "timestamp": str(1_700_000_000 + n),
                                    "type": "text",
                                    "text": {"body": f"Hello, I would like to order item {n}."},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(data: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), data, hashlib.sha256).hexdigest()


async def open_loop(url: str, rate: int, seconds: int, first: int) -> tuple[list, list]:
    """Requests released on a fixed schedule to 64 keep-alive connections (a small raw HTTP/1.1
    client: general-purpose async clients spend more CPU than the server under test). Latency is
    measured from each request's scheduled time. Returns (latencies of accepted requests in ms,
    outcome per request: 200 for an expected answer, the status otherwise)."""
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()
    total = rate * seconds
    work: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    outcomes: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while True:
            item = await work.get()
            if item is None:
                writer.close()
                return
            i, scheduled = item
            data = body(first + i)
            forged = i % 100 == 99
            sig = "sha256=" + "0" * 64 if forged else signature(data)
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"X-Hub-Signature-256: {sig}\r\nContent-Length: {len(data)}\r\n\r\n"
                ).encode()
                + data
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _sep, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            expected = 401 if forged else 200
            outcomes.append(200 if status == expected else status)
            if status == 200 and not forged:
                latencies.append((time.perf_counter() - scheduled) * 1000)

    workers = [asyncio.create_task(connection()) for _ in range(64)]
    start = time.perf_counter() + 0.5
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        work.put_nowait((i, scheduled))
    for _ in workers:
        work.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, outcomes


LUA = r"""
local reqs, n = {}, 0
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("part", counter)
end
function init(args)
  local parts, file = tonumber(args[2]), args[1]
  local i = 0
  for line in io.lines(file) do
    i = i + 1
    if (i % parts) == ((part or 1) - 1) then
      local sig, path, body = line:match("([^\t]*)\t([^\t]*)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", path,
        {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig}, body)
    end
  end
end
function request()
  n = n + 1
  if n > #reqs then n = 1 end
  return reqs[n]
end
"""


def closed_loop(base: str, path: str, seconds: int, first: int, count: int, tmp: Path) -> float:
    """wrk, 2 threads × 64 connections, unique signed requests: requests/s."""
    lines = tmp / "requests.tsv"
    with lines.open("w") as handle:
        for n in range(first, first + count):
            data = body(n)
            handle.write(f"{signature(data)}\t{path}\t{data.decode()}\n")
    script = tmp / "signed.lua"
    script.write_text(LUA)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c64",
            f"-d{seconds}s",
            "-s",
            str(script),
            base,
            "--",
            str(lines),
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"closed loop on {path}: {non2xx.group(1)} non-2xx", file=sys.stderr)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--max-seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    fresh_database(SERVER, DB_NAME, ENV)
    session = make_session()
    from django.db import connection

    from sessions_app.models import WebhookEvent

    connection.close()
    port = free_port()
    server = start_uvicorn(port, env=ENV, workers=os.cpu_count() or 2)
    base = f"http://127.0.0.1:{port}"
    path = f"/webhooks/cloud_api/{session.uuid}/"
    socket = None
    try:
        asyncio.run(open_loop(base + path, args.rate, WARMUP, 10_000_000))  # not counted
        before = WebhookEvent.objects.filter(session=session).count()
        latencies, statuses = asyncio.run(open_loop(base + path, args.rate, args.seconds, 0))
        ok = sum(1 for s in statuses if s == 200)
        non2xx = len(statuses) - ok  # answers other than 200 (401 for the forged ones)
        forged = args.rate * args.seconds // 100
        rows = WebhookEvent.objects.filter(session=session).count() - before
        assert rows == len(latencies), f"{rows} rows stored for {len(latencies)} 200 answers"
        p50 = statistics.median(latencies)
        p99 = statistics.quantiles(latencies, n=100)[98]
        print(
            f"open loop: {len(statuses)} requests at {args.rate}/s, {non2xx} non-2xx, "
            f"{forged} forged refused, rows={rows}, p50={p50:.1f} ms, p99={p99:.1f} ms",
            file=sys.stderr,
        )
        last_open = WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first()
        with tempfile.TemporaryDirectory() as tmp:
            maxima, ceilings = [], []
            for round_ in range(3):  # alternating, median of 3
                first = 1_000_000 * (round_ + 1)
                maxima.append(closed_loop(base, path, args.max_seconds, first, 60_000, Path(tmp)))
                ceilings.append(
                    closed_loop(base, TRIVIAL, args.max_seconds, first, 60_000, Path(tmp))
                )
            django_trivial = closed_loop(
                base, "/bench/trivial/", args.max_seconds, 9_000_000, 60_000, Path(tmp)
            )
        maximum, ceiling = statistics.median(maxima), statistics.median(ceilings)
        print(f"closed loop: webhooks {maxima}, trivial {ceilings} req/s", file=sys.stderr)

        WebhookEvent.objects.filter(id__gt=last_open).delete()  # the closed loop's
        pending = WebhookEvent.objects.filter(state="pending").count()
        bodies = list(WebhookEvent.objects.filter(state="pending").values_list("body", flat=True))
        from sessions_app.queue import drain

        socket = InboxSocket(port, session.organization).__enter__()
        started = time.perf_counter()
        drained = 0
        while True:
            batch = drain(limit=1000, now=None)
            if not batch:
                break
            drained += batch
        elapsed = time.perf_counter() - started
        assert drained == pending, (drained, pending)
        from messaging.models import Message

        applied = Message.objects.filter(session=session).count()
        assert applied == pending, (applied, pending)
        time.sleep(1)  # the last frames on their way
    finally:
        if socket is not None:
            socket.__exit__()
        stop(server)
    drain_ceiling = history_ceiling(bodies)
    import redis

    redis.Redis.from_url(REDIS).flushdb()  # the paused drainer's kicks
    print(
        f"RESULT webhook_receive value={maximum:.0f} unit=req/s ceiling={ceiling:.0f} "
        f"ratio={maximum / ceiling:.2f} p50_ms={p50:.1f} p99_ms={p99:.1f} non2xx={non2xx} "
        f"rate={args.rate} django_trivial={django_trivial:.0f}"
    )
    rate = drained / elapsed
    print(
        f"RESULT webhook_drain value={rate:.0f} unit=events/s ceiling={drain_ceiling:.0f} "
        f"ratio={rate / drain_ceiling:.2f} rows={drained} frames={socket.frames} goal=1000"
    )


if __name__ == "__main__":
    main()
