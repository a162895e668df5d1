"""Benchmark: a customer's message from its webhook to an open inbox's websocket frame.

    .venv/bin/python bench/inbox_latency.py [--messages 200] [--warmup 10] [--burst 1]
                                            [--pause-ms 50 100] [--seed 1]
    .venv/bin/python bench/inbox_latency.py --burst 20      # bursts, 1-1.5 s apart

Never part of ``make test``. The goal (the issue's): a message reaches an open inbox within a
second of its webhook. Uses its own database (``parley_bench_latency``, created anew and
migrated here) and Redis database 12 (``BENCH_LATENCY_REDIS_URL``; broker, cache and channel
layer, with a channel prefix of this run's own: pub/sub ignores database numbers). The servers
are what ``docker/`` runs: uvicorn (``crm.asgi`` with ``bench.settings``, 2 workers, the psycopg
pool on) and one real Celery worker process (``celery -A crm worker --pool threads
--concurrency 2``, no beat), which drains the webhook queue when the receiver kicks it.

One member of the organization has the inbox socket open (``/ws/o/bench/inbox/``, signed in by
its session cookie, ``Origin`` the server's URL); the run starts once it is subscribed (probes
pushed with ``crm.live.push_now`` from this process until one arrives).

Timed, per message: from just before the POST of a simulator webhook
(``/webhooks/simulator/<session>/``, ``X-Parley-Secret``; a new message id and text each time, from
one customer) until the socket receives the ``message.received`` frame whose ``data.messages``
carries that text. Messages are sent one at a time, a random ``--pause-ms`` (50-100 ms) between
the starts of consecutive POSTs, without waiting for the frames; with ``--burst K``, K POSTs at
once on K connections, 1-1.5 s between the starts of bursts (unless ``--pause-ms`` says
otherwise). The first ``--warmup`` (10) messages are not counted. A
message whose frame has not arrived 10 s after its POST is lost: counted, listed, and the run
fails (exit status 1).

Ceiling, same run, interleaved (in each pause as many samples at once as the burst, topped up
afterwards to as many samples as messages; the first ``--warmup`` not counted): the same two hops
with none of Parley's work between them, one after the other: a POST round trip to the trivial
webhook route (``bench/urls.py``, served by the same ``sessions_app.webhooks.Receiver``), then a
probe pushed with ``crm.live.push_now`` from a thread of this process (as the worker pushes)
until it arrives at the same socket. Ratio: p95 / ceiling p95.

Breakdown (stderr, from each webhook row's ``received_at`` and ``processed_at``, one clock): the
POST's answer; POST to stored; stored to applied (waiting for a drain: the receiver's kick, the
broker, the worker); applied to the frame (the rest of the drain's batch, its commit, then each
frame serialized and pushed in turn, delivered); and the drain tasks the worker ran (its log).

Prints ``RESULT inbox_latency value=<p95 ms> unit=ms p50=<ms> max=<ms> ceiling=<ms> ratio=<r>
goal=1000 lost=<n> n=<counted> burst=<k>`` (``inbox_latency_burst`` with ``--burst`` above 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.servers import free_port, fresh_database, start_uvicorn, stop  # noqa: E402 - after the path

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "parley_bench_latency"
REDIS = os.environ.get("BENCH_LATENCY_REDIS_URL", "redis://127.0.0.1:6379/12")
TRIVIAL = "/webhooks/bench-trivial/"  # served by the webhook receiver, as the webhooks are
SLUG = "bench"
LOST_AFTER = 10.0  # seconds: a frame not arrived by then is lost
RUN = uuid.uuid4().hex[:8]
ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DATABASE_POOL": "true",
    "REDIS_URL": REDIS,
    "CHANNEL_PREFIX": f"bench-latency-{RUN}",  # Redis pub/sub channels span all databases
    "CACHE_KEY_PREFIX": f"bench-latency-{RUN}",
    "PARLEY_DATA_DIR": tempfile.mkdtemp(prefix="parley-bench-"),  # one SECRET_KEY, Fernet key
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
    "DEBUG": "false",  # as in production (the embedded default logs every query)
    "CELERY_SKIP_CHECKS": "1",
    "PYTHONUNBUFFERED": "1",
}
os.environ.update(ENV)


class Worker:
    """``celery -A crm worker`` (threads pool), as tests/support/celery_worker.py starts it, on
    the bench's database and broker; its log is kept to count the drains it ran."""

    def __init__(self, concurrency: int) -> None:
        self.nodename = f"bench-latency-{RUN}@localhost"
        self.concurrency = concurrency
        self.lines: list[tuple[float, str]] = []  # (time.time() read, line)
        self.ready = threading.Event()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Worker:
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "crm",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(self.concurrency),
                "--hostname",
                self.nodename,
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            env=ENV,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(timeout) or self.process.poll() is not None:
            stop(self.process)
            raise SystemExit("the Celery worker did not start:\n" + self.log)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.time(), line))
            if f"{self.nodename} ready." in line:
                self.ready.set()
        self.ready.set()

    @property
    def log(self) -> str:
        return "".join(line for _t, line in self.lines)

    def drains_since(self, since: float) -> int:
        return sum(
            1
            for t, line in self.lines
            if t >= since and "drain_webhooks" in line and "succeeded" in line
        )


def make_world():
    """An organization, its owner (signed in: the session cookie) and a simulator session."""
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts import services as accounts
    from accounts.models import User
    from sessions_app import services

    owner = User.objects.create_user("owner@bench.example", "bench-password", name="Bench Owner")
    organization = accounts.organization_create(name="Bench", owner=owner, slug=SLUG)
    session = services.session_create(
        organization=organization, actor=None, data={"name": "Bench", "provider": "simulator"}
    )
    client = Client()
    client.force_login(owner)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return organization, session, services.webhook_secret_of(session), cookie


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50={percentile(values, 50):.1f} p95={percentile(values, 95):.1f} "
        f"max={max(values):.1f} ms"
    )


class Inbox:
    """The open inbox: one reader resolving a future per awaited text or probe token."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future] = {}
        self.frames = 0
        self.other: dict[str, int] = {}

    def expect(self, key: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    def _arrived(self, key: str, now: tuple[float, float]) -> None:
        future = self.waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(now)

    async def read(self) -> None:
        async for raw in self.ws:
            now = (time.perf_counter(), time.time())
            frame = json.loads(raw)
            self.frames += 1
            event, data = frame.get("event"), frame.get("data") or {}
            if event == "message.received":
                for message in data.get("messages", []):
                    self._arrived("m:" + str(message.get("body")), now)
            elif event == "bench.probe":
                self._arrived("p:" + str(data.get("token")), now)
            else:
                self.other[event] = self.other.get(event, 0) + 1


def push_probe(group: str, token: str) -> None:
    from crm.live import push_now

    push_now(group, "bench.probe", {"token": token})


async def subscribed(inbox: Inbox, group: str, timeout: float = 20.0) -> None:
    """Probes every 100 ms until one arrives (the consumer joined its groups)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = uuid.uuid4().hex
        arrival = inbox.expect("p:" + token)
        await asyncio.to_thread(push_probe, group, token)
        try:
            await asyncio.wait_for(asyncio.shield(arrival), 0.1)
            return
        except TimeoutError:
            inbox.waiting.pop("p:" + token, None)
    raise SystemExit("the inbox socket never received a probe")


async def ceiling_sample(client, inbox: Inbox, group: str) -> float:
    """POST round trip to the trivial route, then a probe's push-to-arrival: ms."""
    token = uuid.uuid4().hex
    start = time.perf_counter()
    answer = await client.post(TRIVIAL, content=b'{"type":"bench"}')
    assert answer.status_code == 200, answer.status_code
    arrival = inbox.expect("p:" + token)
    await asyncio.to_thread(push_probe, group, token)
    arrived, _wall = await asyncio.wait_for(arrival, LOST_AFTER)
    return (arrived - start) * 1000


async def ceiling_burst(client, inbox: Inbox, group: str, count: int) -> list[float]:
    return list(await asyncio.gather(*(ceiling_sample(client, inbox, group) for _ in range(count))))


async def measure(args, port: int, session, secret: str, cookie: str, organization_id: int):
    import httpx
    from django.conf import settings
    from websockets.asyncio.client import connect

    from messaging.live import inbox_group

    group = inbox_group(organization_id)
    # Pushes run in threads (as the worker's do): enough of them for a burst's probes.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max(8, 2 * args.burst)))
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(args.seed)
    sent: list[dict] = []  # per message: text, id, send (perf, wall), answer (perf), arrival
    ceilings: list[float] = []
    overruns = 0
    async with (
        connect(
            f"ws://127.0.0.1:{port}/ws/o/{SLUG}/inbox/",
            additional_headers={
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}",
                "Origin": base,
            },
            open_timeout=10,
            max_size=None,
        ) as ws,
        httpx.AsyncClient(
            base_url=base,
            timeout=30,
            limits=httpx.Limits(max_connections=max(args.burst, 2) + 2),
        ) as client,
    ):
        inbox = Inbox(ws)
        reader = asyncio.create_task(inbox.read())
        await subscribed(inbox, group)
        path = f"/webhooks/simulator/{session.uuid}/"
        headers = {"Content-Type": "application/json", "X-Parley-Secret": secret}

        async def send_one(n: int) -> None:
            text = f"Bench {RUN} message {n}: is item {n} in stock?"
            record = {"n": n, "text": text, "id": f"BENCH{RUN}{n:06d}"}
            body = json.dumps(
                {
                    "type": "message",
                    "id": record["id"],
                    "from": "85291234567",
                    "name": "Bench Customer",
                    "text": text,
                    "timestamp": time.time(),
                },
                separators=(",", ":"),
            ).encode()
            record["arrival"] = inbox.expect("m:" + text)
            sent.append(record)
            record["send"] = (time.perf_counter(), time.time())
            answer = await client.post(path, content=body, headers=headers)
            record["answer"] = time.perf_counter()
            assert answer.status_code == 200, (answer.status_code, answer.text)

        total = args.warmup + args.messages
        next_at = time.perf_counter()
        n = 0
        while n < total:
            now = time.perf_counter()
            if next_at > now:
                await asyncio.sleep(next_at - now)
            else:
                overruns += n > 0
            next_at = time.perf_counter() + rng.uniform(*args.pause_ms) / 1000
            count = min(args.burst, total - n)
            await asyncio.gather(*(send_one(n + i) for i in range(count)))
            n += count
            if n < total:  # ceiling samples in the pause, as many at once as the burst
                ceilings.extend(await ceiling_burst(client, inbox, group, count))
        while len(ceilings) < total:  # topped up, same pauses
            await asyncio.sleep(rng.uniform(*args.pause_ms) / 1000)
            ceilings.extend(await ceiling_burst(client, inbox, group, args.burst))
        for record in sent:
            remaining = record["send"][0] + LOST_AFTER - time.perf_counter()
            try:
                record["arrived"] = await asyncio.wait_for(
                    asyncio.shield(record["arrival"]), max(0.0, remaining)
                )
            except TimeoutError:
                record["arrived"] = None
        reader.cancel()
    return sent, ceilings[args.warmup :], overruns, inbox


def breakdown(session, counted: list[dict]) -> None:
    """Where the time went, per message, from the webhook rows (server clock = this clock)."""
    from sessions_app.models import WebhookEvent

    rows = {}
    for row in WebhookEvent.objects.filter(session=session).only(
        "body", "received_at", "processed_at", "state"
    ):
        rows[json.loads(row.body).get("id")] = row
    answer, stored, queued, applied, states = [], [], [], [], {}
    for record in counted:
        send_perf, send_wall = record["send"]
        answer.append((record["answer"] - send_perf) * 1000)
        row = rows.get(record["id"])
        if row is None:
            states["missing"] = states.get("missing", 0) + 1
            continue
        states[row.state] = states.get(row.state, 0) + 1
        stored.append((row.received_at.timestamp() - send_wall) * 1000)
        if row.processed_at is None:
            continue
        queued.append((row.processed_at - row.received_at).total_seconds() * 1000)
        if record["arrived"] is not None:
            applied.append((record["arrived"][1] - row.processed_at.timestamp()) * 1000)
    print(f"  POST answered        {summary(answer)}", file=sys.stderr)
    print(f"  POST -> stored       {summary(stored)}", file=sys.stderr)
    print(f"  stored -> applied    {summary(queued)}  (waiting for a drain)", file=sys.stderr)
    print(f"  applied -> frame     {summary(applied)}", file=sys.stderr)
    waits = sorted(queued)
    if waits:
        buckets = [(0, 50), (50, 200), (200, 500), (500, 900), (900, 1100), (1100, 1e9)]
        shares = ", ".join(
            f"{lo:.0f}-{hi:.0f}: {sum(lo <= w < hi for w in waits)}"
            if hi < 1e9
            else f">{lo:.0f}: {sum(w >= lo for w in waits)}"
            for lo, hi in buckets
        )
        print(f"  drain waits (ms)     {shares}", file=sys.stderr)
    print(f"  webhook rows         {states}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200, help="counted messages")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--burst", type=int, default=1, help="POSTs sent at once")
    parser.add_argument(
        "--pause-ms", type=float, nargs=2, help="between sends (default 50 100; bursts 1000 1500)"
    )
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.pause_ms is None:
        args.pause_ms = (50.0, 100.0) if args.burst == 1 else (1000.0, 1500.0)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the servers stop, as on Ctrl-C
    fresh_database(SERVER, DB_NAME, ENV)
    redis.Redis.from_url(REDIS).flushdb()
    organization, session, secret, cookie = make_world()
    from django.db import connection

    connection.close()
    port = free_port()
    server = worker = None
    try:
        server = start_uvicorn(port, env=ENV, workers=args.server_workers)
        worker = Worker(args.worker_concurrency).start()
        started = time.time()
        sent, ceilings, overruns, inbox = asyncio.run(
            measure(args, port, session, secret, cookie, organization.pk)
        )
        drains = worker.drains_since(started)
    finally:
        stop(worker.process if worker else None)
        stop(server)
    redis.Redis.from_url(REDIS).flushdb()

    counted = sent[args.warmup :]
    lost = [r for r in counted if r["arrived"] is None]
    latencies = [(r["arrived"][0] - r["send"][0]) * 1000 for r in counted if r["arrived"]]
    if not latencies:
        raise SystemExit(f"every frame was lost ({len(lost)})")
    p50, p95, most = percentile(latencies, 50), percentile(latencies, 95), max(latencies)
    ceiling = percentile(ceilings, 95)
    print(
        f"inbox latency: {len(counted)} messages (+{args.warmup} warm-up), burst={args.burst}, "
        f"pause {args.pause_ms[0]:.0f}-{args.pause_ms[1]:.0f} ms, {overruns} late sends; "
        f"{summary(latencies)}; mean={statistics.fmean(latencies):.1f} ms; "
        f"under 1 s: {sum(v < 1000 for v in latencies)}/{len(counted)}",
        file=sys.stderr,
    )
    print(f"ceiling (trivial POST + probe): {summary(ceilings)}", file=sys.stderr)
    print(
        f"frames: {inbox.frames} on the socket, other events {inbox.other}; "
        f"drain tasks run by the worker: {drains}",
        file=sys.stderr,
    )
    breakdown(session, counted)
    if lost:
        print(f"LOST {len(lost)} frames: {[r['id'] for r in lost]}", file=sys.stderr)
    name = "inbox_latency" if args.burst == 1 else "inbox_latency_burst"
    print(
        f"RESULT {name} value={p95:.1f} unit=ms p50={p50:.1f} max={most:.1f} "
        f"ceiling={ceiling:.1f} ratio={p95 / ceiling:.2f} goal=1000 lost={len(lost)} "
        f"n={len(counted)} burst={args.burst}"
    )
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
