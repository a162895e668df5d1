"""Benchmark: inbound webhooks through the production topology, until every message is applied.

    .venv/bin/python bench/inbound_topology.py [--count 6000] [--rate 100] [--senders 300]
                                               [--timeout 600]
    .venv/bin/python bench/inbound_topology.py --count 600          # a quick run

Never part of ``make test``. The topology is the one ``docker/Dockerfile`` and
``docker/compose.yaml`` describe, started here without Docker, every part a process of its own
(in its own process group, all stopped on exit, Ctrl-C and SIGTERM included):

- web: uvicorn as the Dockerfile runs it (``crm.asgi``, ``--proxy-headers``, 2 workers, the
  psycopg pool on);
- worker: 2 ``celery -A crm worker`` processes, the default (prefork) pool, concurrency 2 each,
  distinct hostnames (compose runs one of concurrency 4: here a drain may race another
  process's, as it does with more than one worker container);
- beat: ``celery -A crm beat`` with its schedule file in a temporary directory;
- PostgreSQL and Redis on loopback: the bench's own database (``parley_bench_topology``,
  created anew and migrated here; ``BENCH_DATABASE_SERVER``) and Redis database 11
  (``BENCH_TOPOLOGY_REDIS_URL``; broker, cache and channel layer, flushed before and after, with
  cache and channel prefixes of this run's own: pub/sub ignores database numbers);
- S3: moto's server (``moto_server`` on a free loopback port, one bucket) instead of minio, the
  ``S3_*`` variables pointing at it.

Settings are ``bench.settings`` in the embedded mode with ``DEBUG=false``, as the other benches
run (``PARLEY_ENV=production`` would redirect plain-HTTP webhooks to HTTPS and want the
collected static files; neither changes the inbound path).

One organization, one Cloud API session. ``--count`` signed single-message webhooks (Meta's
envelope, a text message each, every one unique), from ``--senders`` customers picked at random
with a fixed seed, so that concurrent drains' batches share chats as a busy shared number's do,
are posted at ``--rate`` a second by a small open-loop client (64 keep-alive connections; requests
released on a fixed schedule, latency measured from each request's scheduled time). Then the bench
waits until every accepted message is applied (``messaging.Message`` rows of the session, polled
every 0.1 s), at most ``--timeout`` seconds after the last POST, and reports what it has then.

The POSTs start once a second of the machine's CPU was under 60% busy (15 s at most) after every
part is up. Sampled every 0.5 s while it runs: the Celery queue in the broker (the lengths of
``CELERY_TASK_DEFAULT_QUEUE``'s lists, priority lists included) plus the tasks delivered but not
acknowledged (kombu's ``unacked`` hash: running, prefetched, or held for a countdown), the pending
webhook rows, the applied messages and the CPU. Deadlocks: the change of
``pg_stat_database.deadlocks`` for the bench's database, read before the first POST and after the
processes stopped (a backend's counters reach the statistics when it ends at the latest).

Prints ``RESULT inbound_topology lag_s=<seconds from the last POST until every message is
applied> deadlocks=<n> max_queue=<largest queued + unacknowledged tasks> non2xx=<n>
applied=<n>`` with the goals beside it (lag_s <= 5, deadlocks 0, max_queue <= 20, non2xx 0,
applied = count), and on stderr the POST latency, drain rates, the peak backlog, the drain tasks
each worker ran and whether every chat's unread count matches its messages. If not every message
was applied by the timeout, ``lag_s`` is the time waited. The exit status is 0 whether or not the
goals are met (it is a measurement); it is not 0 when a part of the topology does not start.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.servers import free_port, fresh_database, start_uvicorn, stop  # noqa: E402 - after the path

SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "parley_bench_topology"
REDIS = os.environ.get("BENCH_TOPOLOGY_REDIS_URL", "redis://127.0.0.1:6379/11")
BIN = Path(sys.executable).parent  # celery and moto_server, beside this interpreter
APP_SECRET = "bench-topology-app-secret"
PHONE_NUMBER_ID = "1234567890"
S3_BUCKET = "parley-media"
S3_KEY, S3_SECRET = "bench-topology", "bench-topology-secret"
CONNECTIONS = 64
SAMPLE_EVERY = 0.5  # seconds
GOALS = "goals: lag_s<=5 deadlocks=0 max_queue<=20 non2xx=0 applied={count}"


def environment(run: str, data_dir: Path, s3_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": f"{SERVER}/{DB_NAME}",
        "DATABASE_POOL": "true",
        "REDIS_URL": REDIS,
        "CHANNEL_PREFIX": f"bench-topology-{run}",  # Redis pub/sub channels span all databases
        "CACHE_KEY_PREFIX": f"bench-topology-{run}",
        "PARLEY_DATA_DIR": str(data_dir),  # one SECRET_KEY and Fernet key for every process
        "S3_BUCKET": S3_BUCKET,
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": S3_KEY,
        "S3_SECRET_ACCESS_KEY": S3_SECRET,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "false",  # as in production (the embedded default logs every query)
        "PYTHONUNBUFFERED": "1",
    }


# --- The topology's processes -------------------------------------------------------------------


class Logged:
    """A process whose output is read by a thread (so it never blocks on a full pipe): the last
    lines kept for a failure's message, ``ready`` set when ``ready_line`` appears or it ends."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], ready_line: str) -> None:
        self.name = name
        self.ready_line = ready_line
        self.tail: collections.deque[str] = collections.deque(maxlen=60)
        self.drains = 0  # drain_webhooks tasks that succeeded (a worker's log)
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.tail.append(line)
            if self.ready_line in line:
                self.ready.set()
            if "drain_webhooks" in line and "succeeded" in line:
                self.drains += 1
        self.ready.set()

    def wait_ready(self, timeout: float = 90.0) -> Logged:
        if not self.ready.wait(timeout) or self.process.poll() is not None:
            raise SystemExit(f"{self.name} did not start:\n" + "".join(self.tail))
        return self


def celery_worker(index: int, run: str, env: dict[str, str]) -> Logged:
    """compose's ``worker`` command, at concurrency 2, with a hostname of its own."""
    nodename = f"bench-topology-{run}-{index}@localhost"
    command = [str(BIN / "celery"), "-A", "crm", "worker", "--loglevel", "INFO"]
    command += ["--concurrency", "2", "--hostname", nodename]
    return Logged(f"celery worker {index}", command, env, f"{nodename} ready.")


def celery_beat(schedule: Path, env: dict[str, str]) -> Logged:
    """compose's ``beat`` command, its schedule file in this run's temporary directory."""
    command = [str(BIN / "celery"), "-A", "crm", "beat", "--loglevel", "INFO"]
    command += ["--schedule", str(schedule)]
    return Logged("celery beat", command, env, "beat: Starting")


def start_s3(port: int, env: dict[str, str]) -> subprocess.Popen:
    """moto's server (as minio stands in compose), then the bucket compose's ``s3-bucket`` makes."""
    import boto3

    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            break
        except urllib.error.HTTPError:  # it answers
            break
        except OSError:
            time.sleep(0.2)
    else:
        stop(process)
        raise SystemExit("the S3 server (moto) did not start")
    boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
    ).create_bucket(Bucket=S3_BUCKET)
    return process


# --- The world and the webhooks -----------------------------------------------------------------


def make_session():
    """One organization and its Cloud API session (as bench/webhook_receive.py makes them)."""
    import django

    django.setup()
    from accounts.models import Organization
    from sessions_app import services

    organization = Organization.objects.create(
        name="Bench topology", slug="bench-topology", default_country="GB"
    )
    return services.session_create(
        organization=organization,
        actor=None,
        data={
            "name": "Bench topology",
            "provider": "cloud_api",
            "credentials": {
                "phone_number_id": PHONE_NUMBER_ID,
                "waba_id": "42",
                "access_token": "bench-token",
                "app_secret": APP_SECRET,
                "verify_token": "bench-verify",
            },
        },
    )


def body(n: int, sender: int) -> bytes:
    """Meta's envelope around one inbound text message, unique per ``n``, from customer
    ``sender``."""
    wa_id = f"8529{sender:07d}"
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100199", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": f"Customer {sender}"}, "wa_id": wa_id}],
        "messages": [
            {
                "from": wa_id,
                "id": f"wamid.TOPOLOGY{n:012d}",
                "timestamp": str(1_700_000_000 + n),
                "type": "text",
                "text": {"body": f"Message {n}: is item {n % 997} in stock?"},
            }
        ],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "42", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def signature(data: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), data, hashlib.sha256).hexdigest()


class Posted:
    """What the client saw: latencies of 2xx answers (ms, from the scheduled time), the status
    of each answer (0: the connection failed), and when the first and last POSTs were written."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.first = self.last = 0.0  # time.perf_counter()


async def open_loop(url: str, bodies: list[bytes], rate: int) -> Posted:
    """``bodies`` POSTed on a fixed schedule (``rate`` a second) over keep-alive connections, each
    taking the next request when it has its answer (a small raw HTTP/1.1 client: a
    general-purpose async client spends more CPU than the servers under test)."""
    host, port, path = re.match(r"http://([^:/]+):(\d+)(/.*)", url).groups()
    work: asyncio.Queue = asyncio.Queue()
    posted = Posted()

    async def exchange(reader, writer, data: bytes) -> int:
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"X-Hub-Signature-256: {signature(data)}\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
        posted.last = time.perf_counter()
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _sep, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return status

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while (item := await work.get()) is not None:
            data, scheduled = item
            status = 0  # the connection failed twice
            for _attempt in range(2):
                try:
                    status = await exchange(reader, writer, data)
                    break
                except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                    # The server closed an idle keep-alive connection (a low --rate): again on
                    # a new one. Safe: the same body is stored once (its dedupe key).
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
            posted.statuses.append(status)
            if 200 <= status < 300:
                posted.latencies.append((time.perf_counter() - scheduled) * 1000)
        writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    start = time.perf_counter() + 0.5
    posted.first = start
    for i, data in enumerate(bodies):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        work.put_nowait((data, scheduled))
    for _ in workers:
        work.put_nowait(None)
    await asyncio.gather(*workers)
    return posted


# --- Watching the drain -------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Every ``SAMPLE_EVERY`` seconds: queued and unacknowledged Celery tasks (one Redis round
    trip), pending webhook rows and applied messages of the session (one query), CPU busy."""

    def __init__(self, *, session_id: int) -> None:
        super().__init__(daemon=True)
        import psycopg
        import redis
        from django.conf import settings
        from kombu.transport.redis import Channel

        from messaging.models import Message
        from sessions_app.models import WebhookEvent

        # Key names as kombu's Redis transport builds them (its defaults, unless the transport
        # options say otherwise).
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        prefix = options.get("global_keyprefix", Channel.global_keyprefix)
        sep = options.get("sep", Channel.sep)
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        steps = options.get("priority_steps", Channel.priority_steps)
        self.queue_keys = sorted({prefix + (f"{queue}{sep}{p}" if p else queue) for p in steps})
        self.unacked_key = prefix + options.get("unacked_key", Channel.unacked_key)
        self.redis = redis.Redis.from_url(REDIS)
        self.db = psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True)
        self.count_sql = (
            f"SELECT (SELECT count(*) FROM {WebhookEvent._meta.db_table}"
            f" WHERE session_id = %(s)s AND state = 'pending'),"
            f" (SELECT count(*) FROM {Message._meta.db_table} WHERE session_id = %(s)s)"
        )
        self.session_id = session_id
        self.halt = threading.Event()
        # (perf_counter, queued, unacked, pending rows, applied messages, cpu busy fraction)
        self.samples: list[tuple[float, int, int, int, int, float]] = []

    def counts(self) -> tuple[int, int]:
        """(pending webhook rows, applied messages) of the session, now."""
        return self.db.execute(self.count_sql, {"s": self.session_id}).fetchone()

    def run(self) -> None:
        cpu = cpu_times()
        while not self.halt.wait(SAMPLE_EVERY):
            pipe = self.redis.pipeline(transaction=False)
            for key in self.queue_keys:
                pipe.llen(key)
            pipe.hlen(self.unacked_key)
            *lengths, unacked = pipe.execute()
            pending, applied = self.counts()
            now = cpu_times()
            busy, cpu = busy_between(cpu, now), now
            self.samples.append(
                (time.perf_counter(), sum(lengths), unacked, pending, applied, busy)
            )

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def settle(*, quiet: float = 0.6, most: float = 15.0) -> float:
    """Waits until a second of the machine's CPU is less than ``quiet`` busy (the workers' pool
    processes and beat's first tasks have started), ``most`` seconds at most: the POSTs' latency
    is not the processes' boot. Returns the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < most:
        before = cpu_times()
        time.sleep(1)
        if busy_between(before, cpu_times()) < quiet:
            break
    return time.perf_counter() - started


def wait_applied(
    sampler: Sampler, *, expected: int, last_post: float, timeout: float
) -> tuple[float, bool]:
    """Polls every 0.1 s until ``expected`` messages are applied, nothing of the session is pending
    any more with fewer applied (5 s without change), or ``timeout`` after ``last_post``. Returns
    (when it stopped, whether every message was applied)."""
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as db:
        settled, seen = time.perf_counter(), -1
        while True:
            now = time.perf_counter()
            pending, applied = db.execute(sampler.count_sql, {"s": sampler.session_id}).fetchone()
            if applied >= expected:
                return now, True
            if applied != seen or pending:
                settled, seen = now, applied
            if now - settled > 5 or now - last_post > timeout:
                return now, False
            time.sleep(0.1)


def deadlocks() -> int:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as db:
        db.execute("SELECT pg_stat_clear_snapshot()")
        row = db.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (DB_NAME,)
        ).fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def unread_mismatches(session_id: int) -> int:
    """Chats of the session whose unread count is not their number of incoming messages (none of
    them was read): a drain that lost or doubled a counter update."""
    from django.db.models import Count, F, Q

    from messaging.models import Chat

    return (
        Chat.objects.filter(session_id=session_id)
        .annotate(incoming=Count("messages", filter=Q(messages__direction="in")))
        .exclude(unread_count=F("incoming"))
        .count()
    )


# --- The run ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=6000, help="webhooks posted")
    parser.add_argument("--rate", type=int, default=100, help="webhooks a second")
    parser.add_argument("--senders", type=int, default=300, help="customers they come from")
    parser.add_argument("--timeout", type=float, default=600, help="seconds after the last POST")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleaned up as on Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even where started in background
    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-topology-"))
    s3_port = free_port()
    env = environment(run, tmp / "data", s3_port)
    os.environ.update(env)
    import redis

    broker = redis.Redis.from_url(REDIS)
    rng = random.Random(args.seed)
    bodies = [body(n, rng.randrange(args.senders)) for n in range(args.count)]
    processes: list[subprocess.Popen] = []
    workers: list[Logged] = []
    try:
        processes.append(start_s3(s3_port, env))
        fresh_database(SERVER, DB_NAME, env)
        broker.flushdb()
        session = make_session()
        from django.db import connection

        connection.close()
        port = free_port()
        processes.append(start_uvicorn(port, env=env, workers=2, options=("--proxy-headers",)))
        workers = [celery_worker(i, run, env) for i in (1, 2)]
        processes += [w.process for w in workers]
        beat = celery_beat(tmp / "celerybeat-schedule", env)
        processes.append(beat.process)
        for part in (*workers, beat):
            part.wait_ready()
        settled = settle()
        print(
            f"topology up: uvicorn x2 on :{port}, 2 celery workers (prefork, concurrency 2), "
            f"beat, moto S3 on :{s3_port}; settled in {settled:.0f} s, load average "
            f"{os.getloadavg()[0]:.2f}; {args.count} webhooks at {args.rate}/s from "
            f"{args.senders} customers",
            file=sys.stderr,
        )

        deadlocks_before = deadlocks()
        sampler = Sampler(session_id=session.pk)
        sampler.start()
        url = f"http://127.0.0.1:{port}/webhooks/cloud_api/{session.uuid}/"
        posted = asyncio.run(open_loop(url, bodies, args.rate))
        accepted = sum(1 for s in posted.statuses if 200 <= s < 300)
        print(
            f"posted: {len(posted.statuses)} in {posted.last - posted.first:.1f} s; waiting for "
            f"{accepted} messages to be applied (at most {args.timeout:.0f} s)",
            file=sys.stderr,
        )
        done, complete = wait_applied(
            sampler, expected=accepted, last_post=posted.last, timeout=args.timeout
        )
        sampler.stop()
        died = [p.name for p in (*workers, beat) if p.process.poll() is not None]
    finally:
        for name in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut this short
            signal.signal(name, signal.SIG_IGN)
        for process in reversed(processes):  # beat first: nothing new is queued while they stop
            stop(process)
        broker.flushdb()
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    deadlock_count = deadlocks() - deadlocks_before  # after the backends ended: all counted
    pending, applied = sampler.counts()
    sampler.db.close()
    report(args, posted, sampler, workers, done=done, complete=complete, died=died)
    print(
        f"chats whose unread count is not their messages: {unread_mismatches(session.pk)}; "
        f"rows still pending: {pending}",
        file=sys.stderr,
    )
    lag = done - posted.last
    non2xx = len(posted.statuses) - sum(1 for s in posted.statuses if 200 <= s < 300)
    queue = max((s[1] + s[2] for s in sampler.samples), default=0)
    print(
        f"RESULT inbound_topology lag_s={lag:.1f} deadlocks={deadlock_count} max_queue={queue} "
        f"non2xx={non2xx} applied={applied}"
    )
    print(GOALS.format(count=args.count), file=sys.stderr)


def report(args, posted: Posted, sampler: Sampler, workers, *, done, complete, died) -> None:
    """The explanatory lines, on stderr."""
    out = sys.stderr
    latencies = posted.latencies
    print(
        f"POST latency (from the schedule): p50={percentile(latencies, 50):.1f} ms "
        f"p99={percentile(latencies, 99):.1f} ms max={max(latencies, default=0):.1f} ms; "
        f"statuses {dict(collections.Counter(posted.statuses))}",
        file=out,
    )
    samples = sampler.samples
    if not samples:
        return
    at_last = [s for s in samples if s[0] <= posted.last] or samples[:1]
    applied_at_last, applied_end = at_last[-1][4], samples[-1][4]
    rates = [
        (b[4] - a[4]) / (b[0] - a[0])
        for a, b in zip(samples, samples[10:], strict=False)  # 5-s windows
    ]
    during = [s[5] for s in samples if s[0] <= posted.last]
    after = [s[5] for s in samples if s[0] > posted.last]
    print(
        f"drain: {applied_end / max(done - posted.first, 1e-9):.1f} messages/s from the first "
        f"POST to the end, {(applied_end - applied_at_last) / max(done - posted.last, 1e-9):.1f}"
        f"/s after the last POST ({applied_at_last} applied by then), best 5 s "
        f"{max(rates, default=0):.1f}/s; "
        + ("every message applied" if complete else "NOT every message applied (timed out)"),
        file=out,
    )
    peak_pending = max(samples, key=lambda s: s[3])
    print(
        f"backlog: peak {peak_pending[3]} pending rows "
        f"({peak_pending[0] - posted.first:.0f} s after the first POST); queue: max "
        f"{max(s[1] for s in samples)} queued, {max(s[2] for s in samples)} unacknowledged, "
        f"max sum {max(s[1] + s[2] for s in samples)}",
        file=out,
    )
    print(
        f"cpu busy: {100 * statistics.fmean(during or [0]):.0f}% while posting, "
        f"{100 * statistics.fmean(after or [0]):.0f}% after; drain tasks succeeded per worker: "
        f"{[w.drains for w in workers]}" + (f"; DIED during the run: {died}" if died else ""),
        file=out,
    )


if __name__ == "__main__":
    main()
