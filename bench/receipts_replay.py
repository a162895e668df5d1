"""Benchmark: 100k delivery receipts through the real ingest path, then the same 100k again.

    .venv/bin/python bench/receipts_replay.py [--receipts 100000] [--runs 3]

Never part of ``make test``. Uses its own database (``parley_bench_receipts`` on the test server,
created anew and migrated here). Each run: a new organization and session holding 100k of our
own messages (stored untimed through the bulk history path, status ``sent``, then ANALYZEd as
autovacuum would); then 100k
``MessageStatusChanged`` receipts, shuffled (a ``read`` often before its ``delivered``): 90% a
``delivered`` and a ``read`` for 45k of those messages, 10% the same for 5k ids never stored,
which wait in ``WaitingEvent``. Timed: ``messaging.ingest.apply`` on batches of 1000, each in its
own transaction, until the last is committed. Then the same 100k receipts again (the replay: a
provider redelivering): it must insert and update nothing (``pg_stat_user_tables``
``n_tup_ins + n_tup_upd`` over all tables, flushed with ``pg_stat_force_next_flush()``) and
grow no table written (``pg_total_relation_size`` of ``messaging_message`` and
``messaging_waitingevent`` before and after, no VACUUM in between).

Ceiling, same run, same receipts: a multi-row INSERT (1000 rows a statement and a transaction,
as the real path) of the 100k receipts as rows (session, provider id, status, time, error code
and text) into a scratch table of that shape with a primary key and a unique (session,
provider id, status) index: what storing each receipt once costs at the least. Runs alternate
(real, ceiling, ...); medians are reported. Prints:

    RESULT receipts_replay value=<receipts/s> unit=receipts/s ceiling=<rows/s> ratio=<r>
        replay_tuples=<n> growth_pct=<max %> replay_per_s=<receipts/s>
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "parley_bench_receipts")
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
os.environ["TEST_DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ["DEBUG"] = "false"  # as in production: no query log kept
os.environ.setdefault("PARLEY_DATA_DIR", tempfile.mkdtemp(prefix="parley-bench-"))

BATCH = 1000  # receipts per apply and transaction
WEBHOOK = 10_000  # messages per HistoryBatch when storing the messages
CHATS = 1000
T0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
WRITTEN = ("messaging_message", "messaging_waitingevent")
SCRATCH = "bench_receipt"


def ensure_database() -> None:
    """A new, empty database for every invocation."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def message_id(run: int, n: int) -> str:
    return f"3EB0{run:02d}{n:012d}"


def store_messages(session, run: int, count: int) -> None:
    """``count`` of our messages to ``CHATS`` people, chat by chat, through the bulk path."""
    from django.db import connection, transaction

    from messaging import ingest
    from messaging.models import Message
    from sessions_app.providers import events as ev

    per_chat = count // CHATS
    messages = []
    for n in range(count):
        person = min(n // per_chat, CHATS - 1)
        messages.append(
            ev.MessageUpserted(
                provider_message_id=message_id(run, n),
                chat_jid=f"4479{person:08d}@s.whatsapp.net",
                from_me=True,
                timestamp=T0 + dt.timedelta(seconds=n),
                body=f"Your order {n} is on its way.",
                history=True,
            )
        )
    for start in range(0, count, WEBHOOK):
        with transaction.atomic():
            ingest.apply(session, [ev.HistoryBatch(messages=messages[start : start + WEBHOOK])])
    stored = Message.objects.filter(session=session, status="sent").count()
    assert stored == count, f"{stored} of {count} messages stored"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_message")  # as autovacuum would: a table of 100k rows


def receipts(run: int, count: int, messages: int) -> list:
    """``count`` receipts, shuffled: a delivered and a read each for ``count * 0.45`` stored
    messages and for ``count * 0.05`` ids never stored."""
    from sessions_app.providers import events as ev

    rng = random.Random(run)
    pairs = count // 2
    unknown = pairs // 10
    known = rng.sample(range(messages), pairs - unknown)
    ids = [message_id(run, n) for n in known]
    ids += [f"3EB0{run:02d}UNKNOWN{n:08d}" for n in range(unknown)]
    out = []
    for i, pid in enumerate(ids):
        at = T0 + dt.timedelta(days=1, seconds=i)
        out.append(
            ev.MessageStatusChanged(provider_message_id=pid, status="delivered", timestamp=at)
        )
        out.append(
            ev.MessageStatusChanged(
                provider_message_id=pid, status="read", timestamp=at + dt.timedelta(minutes=5)
            )
        )
    rng.shuffle(out)
    return out


def new_session(label: str):
    from accounts.models import Organization
    from sessions_app import services

    slug = f"bench-{label}-{time.time_ns()}"
    organization = Organization.objects.create(name=slug, slug=slug, default_country="GB")
    return services.session_create(
        organization=organization, actor=None, data={"name": "Bench", "provider": "simulator"}
    )


def apply_all(session, events: list) -> float:
    from django.db import transaction

    from messaging import ingest

    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        with transaction.atomic():
            ingest.apply(session, events[start : start + BATCH])
    return time.perf_counter() - started


def tuples() -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated, deleted per table, as the statistics hold them once this
    backend's pending counts are flushed (read on another connection, fresh snapshot)."""
    import psycopg
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # flushed when it goes idle
    time.sleep(0.2)
    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
            "WHERE relname <> %s",
            [SCRATCH],
        ).fetchall()
    return {name: (ins, upd, dele) for name, ins, upd, dele in rows}


def sizes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s)",
            [list(WRITTEN)],
        )
        return dict(cursor.fetchall())


def run_real(args, run: int) -> dict:
    from messaging.models import Message, WaitingEvent

    session = new_session(f"real{run}")
    messages = args.receipts  # as many messages stored as receipts arrive
    store_messages(session, run, messages)
    events = receipts(run, args.receipts, messages)
    stored = sizes()
    first = apply_all(session, events)
    waiting = WaitingEvent.objects.filter(session=session).count()
    assert waiting == args.receipts // 10, f"{waiting} receipts waiting"
    read = Message.objects.filter(session=session, status="read").count()
    expected = args.receipts // 2 - args.receipts // 20
    assert read == expected, f"{read} of {expected} messages read"
    before_tuples, before_sizes = tuples(), sizes()
    replay = apply_all(session, events)
    after_tuples, after_sizes = tuples(), sizes()
    assert WaitingEvent.objects.filter(session=session).count() == waiting
    assert Message.objects.filter(session=session, status="read").count() == read
    touched = {
        name: tuple(a - b for a, b in zip(n, before_tuples.get(name, (0, 0, 0)), strict=True))
        for name, n in after_tuples.items()
    }
    touched = {name: n for name, n in touched.items() if any(n)}
    growth = {
        name: 100 * (after_sizes[name] - before_sizes[name]) / before_sizes[name]
        for name in WRITTEN
    }
    first_growth = {
        name: 100 * (before_sizes[name] - stored[name]) / max(stored[name], 1) for name in WRITTEN
    }
    return {
        "first": first,
        "replay": replay,
        "tuples": sum(ins + upd for ins, upd, _dele in touched.values()),
        "touched": touched,
        "growth": growth,
        "first_growth": first_growth,
        "sizes": after_sizes,
        "events": events,
        "session": session,
    }


def run_ceiling(session, events: list) -> float:
    """The same receipts as rows, multi-row INSERTed 1000 a statement and a transaction."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cursor.execute(
            f"CREATE TABLE {SCRATCH} (id bigserial PRIMARY KEY, session_id bigint NOT NULL, "
            "provider_message_id varchar(128) NOT NULL, status varchar(10) NOT NULL, "
            "at timestamptz NOT NULL, error_code varchar(40) NOT NULL, "
            "error_text varchar(500) NOT NULL, "
            "UNIQUE (session_id, provider_message_id, status))"
        )
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        params: list = []
        for e in chunk:
            params += [session.pk, e.provider_message_id, e.status, e.timestamp, "", ""]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {SCRATCH} (session_id, provider_message_id, status, at, "
                f"error_code, error_text) VALUES {values}",
                params,
            )
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {SCRATCH}")
        count = cursor.fetchone()[0]
    assert count == len(events), f"ceiling stored {count} of {len(events)}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receipts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    first, replay, ceiling, tuples_, growth = [], [], [], [], []
    for run in range(args.runs):
        real = run_real(args, run)
        first.append(real["first"])
        replay.append(real["replay"])
        tuples_.append(real["tuples"])
        growth.append(max(real["growth"].values()))
        ceiling.append(run_ceiling(real["session"], real["events"]))
        n = args.receipts
        print(
            f"run {run + 1}: first pass {first[-1]:.2f}s ({n / first[-1]:.0f}/s), "
            f"replay {replay[-1]:.2f}s ({n / replay[-1]:.0f}/s), "
            f"ceiling {ceiling[-1]:.2f}s ({n / ceiling[-1]:.0f} rows/s); "
            f"replay touched {real['touched'] or 'nothing'}; "
            f"growth in the replay { ({k: round(v, 2) for k, v in real['growth'].items()}) }%, "
            f"in the first pass { ({k: round(v, 1) for k, v in real['first_growth'].items()}) }%, "
            f"sizes {real['sizes']}",
            file=sys.stderr,
        )
    value = args.receipts / statistics.median(first)
    top = args.receipts / statistics.median(ceiling)
    print(
        f"RESULT receipts_replay value={value:.0f} unit=receipts/s ceiling={top:.0f} "
        f"ratio={value / top:.2f} replay_tuples={max(tuples_)} growth_pct={max(growth):.2f} "
        f"replay_per_s={args.receipts / statistics.median(replay):.0f}"
    )


if __name__ == "__main__":
    main()
