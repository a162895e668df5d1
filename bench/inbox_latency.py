"""Benchmark: a customer's message from its webhook to an open inbox's websocket frame.

    .venv/bin/python bench/inbox_latency.py [--messages 200] [--warmup 10]
                                            [--pause-ms 50 100] [--seed 1]      # trickle
    .venv/bin/python bench/inbox_latency.py --rate 300 --seconds 60             # sustained
    .venv/bin/python bench/inbox_latency.py --burst 100 [--bursts 5]            # bursts

Never part of ``make test``. Uses its own database (``parley_bench_latency``, created anew and
migrated here) and Redis database 12 (``BENCH_LATENCY_REDIS_URL``; broker, cache and channel
layer, with a channel prefix of this run's own: pub/sub ignores database numbers). The servers
are what ``docker/`` runs: uvicorn (``crm.asgi`` with ``bench.settings``, 2 workers, the psycopg
pool on) and one real Celery worker process (``celery -A crm worker --pool threads
--concurrency 2``, no beat), which drains the webhook queue when the receiver kicks it.

One member of the organization has the inbox socket open (``/ws/o/bench/inbox/``, signed in by
its session cookie, ``Origin`` the server's URL); the run starts once it is subscribed (probes
pushed with ``crm.live.push_now`` from this process until one arrives).

Each message is a simulator webhook (``/webhooks/simulator/<session>/``, ``X-Parley-Secret``; a
new provider message id and text each time, from one customer), POSTed by a small HTTP/1.1
client on keep-alive connections (a general-purpose async client spends CPU the servers need on
2 cores). The inbox gets one ``inbox.update`` frame per organization per drained batch; the
socket's reader records, for each Parley message id (``Message.uuid``) in a frame's
``data.received``, when it first arrived. After the run one query maps the uuids to the provider
ids the webhooks sent, so frames are matched to posts by id (a frame about more than 100
messages carries ids only). A message whose frame has not arrived 10 s after the last POST's
time is lost: counted, listed, and the run fails (exit status 1).

Modes, each timed per message from the moment its POST was due until its frame arrived:
- trickle (the default): one POST at a time, a random ``--pause-ms`` (50-100 ms) between the
  starts of consecutive POSTs, without waiting for the frames; the first ``--warmup`` (10)
  not counted. Goal: p95 < 1 s.
- sustained (``--rate R --seconds S``): an open loop, POSTs released on a fixed schedule at
  ``R`` a second to ``--connections`` (16) keep-alive connections, latency measured from each
  POST's scheduled time (as ``bench/webhook_receive.py`` does), so a slow server cannot hide
  its queueing; before the ``S`` seconds, ``--warmup`` messages trickled (their frames awaited:
  a fresh worker's first drains import and connect) and 3 s at the same rate, none of them
  counted. Goals at 300 a second: p95 < 250 ms, p99 < 1 s, 0 lost.
- burst (``--burst K``): ``--bursts`` (5) bursts of ``K`` POSTs at once on ``K`` connections,
  1-1.5 s between their starts (unless ``--pause-ms`` says otherwise), timed from the burst's
  start; the first burst is a warm-up, not counted. Goal: p95 < 1 s.

Ceiling, same run: the same two hops with none of Parley's work between them, one after the
other: a POST round trip to the trivial webhook route (``bench/urls.py``, served by the same
``sessions_app.webhooks.Receiver``), then a probe pushed with ``crm.live.push_now`` from a thread
of this process (as the worker pushes) until it arrives at the same socket. Trickle and burst
take them in each pause, as many at once as the burst, topped up afterwards to as many samples
as messages (warm-up's share not counted); sustained takes one every 100 ms during the
measured seconds, under the load. Ratio: p95 / ceiling p95.

Breakdown (stderr): from each webhook row's ``received_at`` and ``processed_at`` (one clock) the
POST's answer; POST to stored; stored to claimed (waiting for a drain: the receiver's kick, the
broker, the worker); claimed to the frame (the rest of the claim's batch, its commit, the frame
built, pushed and delivered); the drain tasks the worker ran (its log: count, rows, seconds);
the ``inbox.update`` frames (count, messages per frame, partial ones, size); the client's lag
behind its schedule; CPU seconds per process group over the measured window (2 cores shared
with anything else running); and, sustained, latency per 10-second window.

Prints, on stdout, one of:
``RESULT inbox_latency value=<p95 ms> unit=ms p50=<ms> max=<ms> ceiling=<ms> ratio=<r> goal=1000
lost=<n> n=<counted> burst=1`` (trickle);
``RESULT inbox_latency_sustained p95_ms=<p> p99_ms=<p> lost=<n> rate=<R> p50_ms=<p> max_ms=<ms>
ceiling_ms=<p95> non2xx=<n> n=<counted> seconds=<S> goal_p95_ms=250 goal_p99_ms=1000``;
``RESULT inbox_latency_burst p95_ms=<p> lost=<n> burst=<K> p50_ms=<p> max_ms=<ms>
ceiling_ms=<p95> n=<counted> bursts=<counted> goal_p95_ms=1000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
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
LOST_AFTER = 10.0  # seconds after the last POST: a frame not arrived by then is lost
SUSTAINED_WARMUP = 3  # seconds at the sustained rate before it is measured
CEILING_EVERY = 0.1  # seconds between ceiling samples under sustained load
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

    def __init__(self, concurrency: int, pool: str = "prefork") -> None:
        self.nodename = f"bench-latency-{RUN}@localhost"
        self.concurrency = concurrency
        self.pool = pool
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
                self.pool,
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

    def drains_since(self, since: float) -> list[tuple[float, int]]:
        """(seconds, rows handled) of each drain task that finished since ``since``."""
        done = re.compile(r"drain_webhooks\[[^\]]*\] succeeded in ([\d.]+)s: (\d+)")
        return [
            (float(m.group(1)), int(m.group(2)))
            for t, line in self.lines
            if t >= since and (m := done.search(line))
        ]


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


def summary(values: list[float], unit: str = "ms") -> str:
    if not values:
        return "none"
    return (
        f"p50={percentile(values, 50):.1f} p95={percentile(values, 95):.1f} "
        f"p99={percentile(values, 99):.1f} max={max(values):.1f} {unit}"
    )


class Http:
    """A small HTTP/1.1 client on keep-alive connections to one server: a connection is taken
    from the idle ones or opened, and given back after its answer. General-purpose async clients
    spend more CPU per request than the servers under test can spare on 2 cores."""

    IDLE = 2.0  # seconds a connection may wait unused (uvicorn closes idle ones after 5)

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The most recently used idle connection, unless the server may have closed it."""
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < self.IDLE and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` and read the whole answer; returns its status."""
        reader, writer = await self._connection()
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        try:
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("the server closed the connection")
            status = int(status_line.split()[1])
            length, chunked = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _sep, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            if chunked:
                while size := int((await reader.readline()).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readline()
            else:
                await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        self.idle.append((reader, writer, time.monotonic()))
        return status

    def close(self) -> None:
        for _reader, writer, _since in self.idle:
            writer.close()
        self.idle.clear()


class Inbox:
    """The open inbox: one reader recording when each received message id first arrived, and
    resolving a future per awaited probe token."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future] = {}
        self.arrivals: dict[str, tuple[float, float]] = {}  # uuid: (perf, wall)
        self.updates: list[tuple[int, int, bool, int]] = []  # received, messages, partial, bytes
        self.repeated = 0  # ids already seen in an earlier frame
        self.frames = 0
        self.other: dict[str, int] = {}

    def expect(self, token: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[token] = future
        return future

    async def read(self) -> None:
        async for raw in self.ws:
            now = (time.perf_counter(), time.time())
            frame = json.loads(raw)
            self.frames += 1
            event, data = frame.get("event"), frame.get("data") or {}
            if event == "inbox.update":
                received = data.get("received", [])
                self.updates.append(
                    (
                        len(received),
                        len(data.get("messages", [])),
                        bool(data.get("partial")),
                        len(raw),
                    )
                )
                for message_id in received:
                    if message_id in self.arrivals:
                        self.repeated += 1
                    else:
                        self.arrivals[message_id] = now
            elif event == "bench.probe":
                future = self.waiting.pop(str(data.get("token")), None)
                if future is not None and not future.done():
                    future.set_result(now)
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
        arrival = inbox.expect(token)
        await asyncio.to_thread(push_probe, group, token)
        try:
            await asyncio.wait_for(asyncio.shield(arrival), 0.1)
            return
        except TimeoutError:
            inbox.waiting.pop(token, None)
    raise SystemExit("the inbox socket never received a probe")


async def ceiling_sample(http: Http, inbox: Inbox, group: str) -> float:
    """POST round trip to the trivial route, then a probe's push-to-arrival: ms."""
    token = uuid.uuid4().hex
    start = time.perf_counter()
    status = await http.post(TRIVIAL, b'{"type":"bench"}', {"Content-Type": "application/json"})
    assert status == 200, status
    arrival = inbox.expect(token)
    await asyncio.to_thread(push_probe, group, token)
    arrived, _wall = await asyncio.wait_for(arrival, LOST_AFTER)
    return (arrived - start) * 1000


async def ceiling_burst(http: Http, inbox: Inbox, group: str, count: int) -> list[float]:
    return list(await asyncio.gather(*(ceiling_sample(http, inbox, group) for _ in range(count))))


class Poster:
    """The simulator webhooks: one record per message (its provider id, when it was due as
    (perf, wall), when its POST started and was answered, the status)."""

    def __init__(self, http: Http, session, secret: str) -> None:
        self.http = http
        self.path = f"/webhooks/simulator/{session.uuid}/"
        self.headers = {"Content-Type": "application/json", "X-Parley-Secret": secret}
        self.sent: list[dict] = []

    def record(self, n: int, due: tuple[float, float]) -> dict:
        record = {"n": n, "id": f"BENCH{RUN}{n:06d}", "due": due}
        self.sent.append(record)
        return record

    async def post(self, record: dict) -> None:
        n = record["n"]
        body = json.dumps(
            {
                "type": "message",
                "id": record["id"],
                "from": "85291234567",
                "name": "Bench Customer",
                "text": f"Bench {RUN} message {n}: is item {n} in stock?",
                "timestamp": time.time(),
            },
            separators=(",", ":"),
        ).encode()
        record["started"] = time.perf_counter()
        try:
            record["status"] = await self.http.post(self.path, body, self.headers)
        except (OSError, EOFError, ValueError) as error:  # counted as not answered 200
            record["status"] = f"{type(error).__name__}"
        record["answer"] = time.perf_counter()


def now_due() -> tuple[float, float]:
    return time.perf_counter(), time.time()


async def paced(args, poster: Poster, inbox: Inbox, group: str) -> tuple[list[float], int]:
    """Trickle and bursts: ``burst`` POSTs at once, a pause between the starts of rounds, ceiling
    samples in each pause. Returns (ceiling samples, rounds sent late)."""
    rng = random.Random(args.seed)
    ceilings: list[float] = []
    overruns = 0
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
        due = now_due()  # a burst is timed from its start: the client's own queueing counts
        await asyncio.gather(*(poster.post(poster.record(n + i, due)) for i in range(count)))
        n += count
        if n < total:  # ceiling samples in the pause, as many at once as the burst
            ceilings.extend(await ceiling_burst(poster.http, inbox, group, count))
    while len(ceilings) < total:  # topped up, same pauses
        await asyncio.sleep(rng.uniform(*args.pause_ms) / 1000)
        ceilings.extend(await ceiling_burst(poster.http, inbox, group, args.burst))
    return ceilings[args.warmup :], overruns


async def sustained(args, poster: Poster, inbox: Inbox, group: str) -> tuple[list[float], int]:
    """Open loop: POSTs released at ``rate`` a second to ``connections`` senders, each due at its
    scheduled time; ceiling samples every 100 ms while the counted seconds run. First
    ``warmup`` messages one at a time, their frames awaited (a fresh worker's first drains
    import and connect: not the load's cost), then 3 s at the rate, none of them counted.
    Returns (ceiling samples, POSTs started more than 100 ms after they were due)."""
    rng = random.Random(args.seed)
    for n in range(args.warmup):
        await poster.post(poster.record(n, now_due()))
        await asyncio.sleep(rng.uniform(*args.pause_ms) / 1000)
    deadline = time.perf_counter() + LOST_AFTER
    while len(inbox.arrivals) < args.warmup and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    queue: asyncio.Queue = asyncio.Queue()

    async def sender() -> None:
        while (record := await queue.get()) is not None:
            await poster.post(record)

    senders = [asyncio.create_task(sender()) for _ in range(args.connections)]
    ceilings: list[float] = []
    done = asyncio.Event()
    warm = args.rate * SUSTAINED_WARMUP
    total = warm + args.rate * args.seconds
    perf0, wall0 = time.perf_counter() + 0.2, time.time() + 0.2
    measured_from = perf0 + SUSTAINED_WARMUP

    async def ceiling_loop() -> None:
        while not done.is_set():
            if time.perf_counter() >= measured_from:
                try:
                    ceilings.append(await ceiling_sample(poster.http, inbox, group))
                except (OSError, EOFError, TimeoutError) as error:
                    print(f"a ceiling sample failed: {error!r}", file=sys.stderr)
            await asyncio.sleep(CEILING_EVERY)

    sampler = asyncio.create_task(ceiling_loop())
    for i in range(total):
        scheduled = perf0 + i / args.rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(poster.record(args.warmup + i, (scheduled, wall0 + (scheduled - perf0))))
    for _ in senders:
        queue.put_nowait(None)
    await asyncio.gather(*senders)
    done.set()
    await sampler
    late = sum(1 for r in poster.sent[args.warmup + warm :] if r["started"] - r["due"][0] > 0.1)
    return ceilings, late


async def measure(args, port: int, session, secret: str, cookie: str, organization_id: int):
    from django.conf import settings
    from websockets.asyncio.client import connect

    from messaging.live import inbox_group

    group = inbox_group(organization_id)
    # Pushes run in threads (as the worker's do): enough of them for a burst's probes.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max(8, 2 * args.burst)))
    base = f"http://127.0.0.1:{port}"
    http = Http("127.0.0.1", port)
    poster = Poster(http, session, secret)
    async with connect(
        f"ws://127.0.0.1:{port}/ws/o/{SLUG}/inbox/",
        additional_headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}", "Origin": base},
        open_timeout=10,
        max_size=None,
    ) as ws:
        inbox = Inbox(ws)
        reader = asyncio.create_task(inbox.read())
        await subscribed(inbox, group)
        window = [time.time(), cpu_times()]
        if args.rate:
            ceilings, late = await sustained(args, poster, inbox, group)
        else:
            ceilings, late = await paced(args, poster, inbox, group)
        # Every frame in, or 10 s after the last POST was due: the rest are lost.
        deadline = max(r["due"][0] for r in poster.sent) + LOST_AFTER
        while len(inbox.arrivals) < len(poster.sent) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        window += [time.time(), cpu_times()]
        reader.cancel()
    http.close()
    return poster.sent, ceilings, late, inbox, window


def cpu_times() -> dict[int, tuple[int, float, str]]:
    """Every process's (process group, CPU seconds, name) from /proc; Postgres backends are
    named by their database (their command line says it)."""
    tick = os.sysconf("SC_CLK_TCK")
    times = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            name = comm
            if comm.startswith("postgres"):
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    name = "postgres " + handle.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue  # gone meanwhile
        times[int(entry.name)] = (int(fields[2]), (int(fields[11]) + int(fields[12])) / tick, name)
    return times


def cpu_report(window: list, groups: dict[str, int]) -> None:
    """CPU seconds each part used over the measured window (processes that ended meanwhile are
    not counted), against the machine's cores."""
    start, before, end, after = window
    parts: dict[str, float] = {}
    owners = {pgid: label for label, pgid in groups.items()}
    for pid, (pgid, seconds, name) in after.items():
        used = seconds - (before[pid][1] if pid in before else 0.0)
        if pid == os.getpid():
            label = "this client"
        elif pgid in owners:
            label = owners[pgid]
        elif name.startswith("postgres"):
            label = "postgres (bench db)" if DB_NAME in name else "postgres (other)"
        elif name == "redis-server":
            label = "redis"
        else:
            label = "other processes"
        parts[label] = parts.get(label, 0.0) + used
    elapsed = end - start
    cores = os.cpu_count() or 1
    shares = ", ".join(
        f"{label} {used:.1f} s ({100 * used / (elapsed * cores):.0f}%)"
        for label, used in sorted(parts.items(), key=lambda item: -item[1])
        if used >= 0.05
    )
    print(f"  CPU over {elapsed:.0f} s x {cores} cores: {shares}", file=sys.stderr)


def match(session, sent: list[dict], inbox: Inbox) -> int:
    """Each post's frame arrival (``arrived``: (perf, wall) or None), by one query mapping
    Parley's message uuids to the provider ids the webhooks carried. Returns how many received
    ids in frames matched no post."""
    from messaging.models import Message

    uuids = dict(Message.objects.filter(session=session).values_list("provider_message_id", "uuid"))
    matched = 0
    for record in sent:
        message_uuid = uuids.get(record["id"])
        record["arrived"] = inbox.arrivals.get(str(message_uuid)) if message_uuid else None
        matched += record["arrived"] is not None
    return len(inbox.arrivals) - matched


def breakdown(session, counted: list[dict], inbox: Inbox, drains, late: int, mode: str) -> None:
    """Where the time went, per message, from the webhook rows (server clock = this clock)."""
    from sessions_app.models import WebhookEvent

    rows = {}
    for row in WebhookEvent.objects.filter(session=session).only(
        "body", "received_at", "processed_at", "state"
    ):
        rows[json.loads(row.body).get("id")] = row
    answer, lag, stored, queued, applied, states = [], [], [], [], [], {}
    for record in counted:
        due_perf, due_wall = record["due"]
        answer.append((record["answer"] - record["started"]) * 1000)
        lag.append((record["started"] - due_perf) * 1000)
        row = rows.get(record["id"])
        if row is None:
            states["missing"] = states.get("missing", 0) + 1
            continue
        states[row.state] = states.get(row.state, 0) + 1
        stored.append((row.received_at.timestamp() - due_wall) * 1000)
        if row.processed_at is None:
            continue
        queued.append((row.processed_at - row.received_at).total_seconds() * 1000)
        if record["arrived"] is not None:
            applied.append((record["arrived"][1] - row.processed_at.timestamp()) * 1000)
    print(f"  client: POST start late {summary(lag)} ({late} late)", file=sys.stderr)
    print(f"  POST answered        {summary(answer)}", file=sys.stderr)
    print(f"  due -> stored        {summary(stored)}", file=sys.stderr)
    print(f"  stored -> claimed    {summary(queued)}  (waiting for a drain)", file=sys.stderr)
    print(
        f"  claimed -> frame     {summary(applied)}  (batch applied, commit, frame, push)",
        file=sys.stderr,
    )
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
    if drains:
        seconds = [s * 1000 for s, _rows in drains]
        handled = [float(r) for _s, r in drains]
        print(
            f"  drain tasks          {len(drains)}, {sum(s for s, _r in drains):.1f} s in all; "
            f"rows {summary(handled, 'rows')}; time {summary(seconds)}",
            file=sys.stderr,
        )
    if inbox.updates:
        received = [float(r) for r, _m, _p, _b in inbox.updates]
        size = [b / 1024 for _r, _m, _p, b in inbox.updates]
        partial = sum(p for _r, _m, p, _b in inbox.updates)
        print(
            f"  inbox.update frames  {len(inbox.updates)} ({partial} partial, "
            f"{inbox.repeated} ids repeated); received ids {summary(received, 'ids')}; "
            f"size {summary(size, 'KiB')}",
            file=sys.stderr,
        )
    if mode == "sustained" and counted:
        start = counted[0]["due"][0]
        windows: dict[int, list[float]] = {}
        lost: dict[int, int] = {}
        for record in counted:
            slot = int((record["due"][0] - start) // 10)
            if record["arrived"] is None:
                lost[slot] = lost.get(slot, 0) + 1
            else:
                windows.setdefault(slot, []).append(
                    (record["arrived"][0] - record["due"][0]) * 1000
                )
        for slot in sorted(set(windows) | set(lost)):
            print(
                f"  {10 * slot:3d}-{10 * slot + 10:3d} s         "
                f"{summary(windows.get(slot, []))} lost={lost.get(slot, 0)}",
                file=sys.stderr,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200, help="counted messages (trickle)")
    parser.add_argument(
        "--warmup", type=int, default=10, help="messages not counted (trickle, sustained)"
    )
    parser.add_argument("--burst", type=int, default=1, help="POSTs sent at once")
    parser.add_argument("--bursts", type=int, default=5, help="bursts, the first not counted")
    parser.add_argument("--rate", type=int, default=0, help="sustained: POSTs a second")
    parser.add_argument("--seconds", type=int, default=60, help="sustained: counted seconds")
    parser.add_argument("--connections", type=int, default=16, help="sustained: keep-alives")
    parser.add_argument(
        "--pause-ms", type=float, nargs=2, help="between sends (default 50 100; bursts 1000 1500)"
    )
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument(
        "--pool",
        default="prefork",
        help="the worker's pool: prefork as docker/ runs it, or threads",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.rate and args.burst > 1:
        parser.error("--rate and --burst are separate modes")
    mode = "sustained" if args.rate else "burst" if args.burst > 1 else "trickle"
    if mode == "burst":
        args.warmup, args.messages = args.burst, args.burst * (args.bursts - 1)
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
        worker = Worker(args.worker_concurrency, args.pool).start()
        started = time.time()
        sent, ceilings, late, inbox, window = asyncio.run(
            measure(args, port, session, secret, cookie, organization.pk)
        )
        drains = worker.drains_since(started)
        groups = {"uvicorn": server.pid, "celery worker": worker.process.pid}
    finally:
        stop(worker.process if worker else None)
        stop(server)
    redis.Redis.from_url(REDIS).flushdb()

    unmatched = match(session, sent, inbox)
    warm = args.warmup + (args.rate * SUSTAINED_WARMUP if mode == "sustained" else 0)
    counted = sent[warm:]
    lost = [r for r in counted if r["arrived"] is None]
    non2xx = [r for r in counted if r.get("status") != 200]
    latencies = [(r["arrived"][0] - r["due"][0]) * 1000 for r in counted if r["arrived"]]
    if not latencies:
        raise SystemExit(f"every frame was lost ({len(lost)})")
    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    most = max(latencies)
    ceiling = percentile(ceilings, 95)
    shape = {
        "trickle": f"pause {args.pause_ms[0]:.0f}-{args.pause_ms[1]:.0f} ms",
        "burst": f"{args.bursts - 1} bursts of {args.burst} "
        f"(+1 warm-up), {args.pause_ms[0]:.0f}-{args.pause_ms[1]:.0f} ms apart",
        "sustained": f"{args.rate}/s for {args.seconds} s (after {args.warmup} trickled "
        f"and {SUSTAINED_WARMUP} s at the rate) "
        f"on {args.connections} connections",
    }[mode]
    print(
        f"inbox latency ({mode}): {len(counted)} messages (+{warm} warm-up), {shape}; "
        f"{summary(latencies)}; mean={statistics.fmean(latencies):.1f} ms; "
        f"under 250 ms: {sum(v < 250 for v in latencies)}, under 1 s: "
        f"{sum(v < 1000 for v in latencies)} of {len(counted)}",
        file=sys.stderr,
    )
    print(f"ceiling (trivial POST + probe): {summary(ceilings)}", file=sys.stderr)
    print(
        f"frames: {inbox.frames} on the socket, other events {inbox.other}; "
        f"{unmatched} received ids matched no post; {len(non2xx)} POSTs not answered 200",
        file=sys.stderr,
    )
    breakdown(session, counted, inbox, drains, late, mode)
    cpu_report(window, groups)
    if lost:
        print(f"LOST {len(lost)} frames: {[r['id'] for r in lost][:50]}", file=sys.stderr)
    goals = {
        "trickle": [("p95 < 1000 ms", p95 < 1000)],
        "burst": [("p95 < 1000 ms", p95 < 1000), ("0 lost", not lost)],
        "sustained": [
            ("p95 < 250 ms", p95 < 250),
            ("p99 < 1000 ms", p99 < 1000),
            ("0 lost", not lost),
        ],
    }[mode]
    print(
        "goals: " + ", ".join(f"{goal} {'met' if ok else 'MISSED'}" for goal, ok in goals),
        file=sys.stderr,
    )
    if mode == "trickle":
        print(
            f"RESULT inbox_latency value={p95:.1f} unit=ms p50={p50:.1f} max={most:.1f} "
            f"ceiling={ceiling:.1f} ratio={p95 / ceiling:.2f} goal=1000 lost={len(lost)} "
            f"n={len(counted)} burst=1"
        )
    elif mode == "burst":
        print(
            f"RESULT inbox_latency_burst p95_ms={p95:.1f} lost={len(lost)} burst={args.burst} "
            f"p50_ms={p50:.1f} max_ms={most:.1f} ceiling_ms={ceiling:.1f} n={len(counted)} "
            f"bursts={args.bursts - 1} goal_p95_ms=1000"
        )
    else:
        print(
            f"RESULT inbox_latency_sustained p95_ms={p95:.1f} p99_ms={p99:.1f} "
            f"lost={len(lost)} rate={args.rate} p50_ms={p50:.1f} max_ms={most:.1f} "
            f"ceiling_ms={ceiling:.1f} non2xx={len(non2xx)} n={len(counted)} "
            f"seconds={args.seconds} goal_p95_ms=250 goal_p99_ms=1000"
        )
    if lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
