"""Benchmark: a 100k-message history sync through the real ingest path, against PostgreSQL.

    .venv/bin/python bench/ingest_history.py [--messages 100000] [--people 5000] [--runs 3]
                                             [--order chats|time]

Never part of ``make test``. Uses its own database (``parley_bench_ingest`` on the test server,
created anew and migrated here). Timed: ``messaging.ingest.handle`` (the drainer's subscriber)
applying the history as webhook-sized ``HistoryBatch`` events of 10k messages, each in its own
transaction as the drainer delivers them, until the last one is committed; every run is a new
organization and session, so every person, chat and message is new, into an emptied message
table. Ceiling, same rows, same run: the message rows that path produced (read out with
``COPY … TO``, then the table truncated) written back by one ``COPY`` into the same
``messaging_message`` table, with all its indexes and constraints, on the same connection, and
committed. Peer: 10k of those rows saved one by one with ``Message.save()`` (one transaction).
Runs alternate (real, ceiling, ORM, ...); medians are reported; counts are checked. Prints:

    RESULT ingest_history value=<msg/s> unit=msg/s ceiling=<msg/s> ratio=<r> orm_rows_per_s=<n>
        order=<chats|time>
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "parley_bench_ingest")
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
os.environ["TEST_DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ["DEBUG"] = "false"  # as in production: no query log kept
os.environ.setdefault("PARLEY_DATA_DIR", tempfile.mkdtemp(prefix="parley-bench-"))

WEBHOOK = 10_000  # messages per HistoryBatch: what one history-sync webhook carries
ORM_ROWS = 10_000
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
WORDS = [
    "ok",
    "thanks",
    "order",
    "price",
    "when",
    "tomorrow",
    "delivery",
    "invoice",
    "好的",
    "謝謝",
    "✅",
]


def ensure_database() -> None:
    """A new, empty database for every invocation."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def history(messages: int, people: int, label: str, order: str) -> list:
    """Deterministic history-sync events, split into webhook-sized ``HistoryBatch``es: ``people``
    people, each with a direct chat, and one group per 100 people (at most 50) holding one
    message in 20; in a direct chat a third of the messages are ours; one message in 10 quotes
    an earlier one of its chat. ``order="chats"``: conversation by conversation, each oldest
    first, as WhatsApp's history sync sends them; ``"time"``: all chats interleaved by time (the
    worst case for the per-chat work)."""
    from sessions_app.providers import events as ev

    rng = random.Random(20260301)
    groups = max(1, min(50, people // 100))
    in_groups = messages // 20
    sizes = [in_groups // groups] * groups
    sizes[0] += in_groups - sum(sizes)
    direct = [(messages - in_groups) // people] * people
    for n in range((messages - in_groups) - sum(direct)):
        direct[n] += 1
    party = [
        ev.Party(phone=f"4477{p:08d}", jid=f"4477{p:08d}@s.whatsapp.net", name=f"Person {p}")
        for p in range(people)
    ]
    year = 365 * 24 * 3600
    out = []
    serial = 0
    chats = [("direct", p, size) for p, size in enumerate(direct)]
    chats += [("group", g, size) for g, size in enumerate(sizes)]
    for kind, ref, size in chats:
        times = sorted(rng.randrange(year) for _ in range(size))
        first = serial
        for i, second in enumerate(times):
            if kind == "group":
                jid, who, from_me = f"120363{ref:012d}@g.us", party[rng.randrange(people)], False
            else:
                who = party[ref]
                jid, from_me = who.jid, i > 0 and rng.random() < 1 / 3
            out.append(
                ev.MessageUpserted(
                    provider_message_id=f"3EB0{label}{serial:010d}",
                    chat_jid=jid,
                    chat_is_group=kind == "group",
                    from_me=from_me,
                    sender=None if from_me else who,
                    timestamp=T0 + dt.timedelta(seconds=second),
                    body=" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 16))),
                    quoted_id=(
                        f"3EB0{label}{rng.randrange(first, serial):010d}"
                        if i and rng.random() < 0.1
                        else None
                    ),
                    history=True,
                )
            )
            serial += 1
    if order == "time":
        out.sort(key=lambda m: m.timestamp)
    return [
        ev.HistoryBatch(
            messages=out[start : start + WEBHOOK], progress=(start + WEBHOOK) * 100 // messages
        )
        for start in range(0, messages, WEBHOOK)
    ]


def new_session(label: str):
    from accounts.models import Organization
    from sessions_app import services

    slug = f"bench-{label}-{time.time_ns()}"
    organization = Organization.objects.create(name=slug, slug=slug, default_country="GB")
    return services.session_create(
        organization=organization, actor=None, data={"name": "Bench", "provider": "simulator"}
    )


def empty_messages() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE messaging_message CASCADE")


def run_real(args, run: int):
    """Returns (seconds, session)."""
    from django.db import transaction

    from messaging import ingest
    from messaging.models import Chat, Contact, Message

    batches = history(args.messages, args.people, f"R{run}", args.order)
    session = new_session(f"real{run}")
    empty_messages()
    started = time.perf_counter()
    for number, batch in enumerate(batches):
        with transaction.atomic():
            ingest.handle(
                organization_id=session.organization_id,
                session_id=session.pk,
                webhook_event_id=number,
                events=[batch],
            )
    elapsed = time.perf_counter() - started
    count = Message.objects.filter(session=session).count()
    assert count == args.messages, f"real path stored {count} of {args.messages}"
    people = Contact.objects.filter(organization_id=session.organization_id).count()
    assert people == args.people, f"{people} contacts for {args.people} people"
    direct = Chat.objects.filter(session=session, kind="direct").count()
    assert direct == args.people, f"{direct} direct chats for {args.people} people"
    groups = Chat.objects.filter(session=session, kind="group").count()
    assert groups == max(1, min(50, args.people // 100)), f"{groups} group chats"
    return elapsed, session


def run_ceiling(session, expected: int) -> float:
    """The rows the real path produced, COPYed back into the emptied message table."""
    from django.db import connection, transaction

    from messaging.models import Message

    buffer = io.BytesIO()
    out = "COPY (SELECT * FROM messaging_message WHERE session_id = %s ORDER BY id) TO STDOUT"
    with connection.cursor() as cursor, cursor.cursor.copy(out, [session.pk]) as copy:
        for data in copy:
            buffer.write(data)
    data = buffer.getvalue()
    empty_messages()
    started = time.perf_counter()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy("COPY messaging_message FROM STDIN") as copy,
    ):
        for start in range(0, len(data), 1 << 20):
            copy.write(data[start : start + (1 << 20)])
    elapsed = time.perf_counter() - started
    count = Message.objects.filter(session=session).count()
    assert count == expected, f"ceiling copied {count} of {expected}"
    return elapsed


def run_orm(session, run: int) -> float:
    """``ORM_ROWS`` of the session's rows, saved one by one into a new session."""
    from django.db import transaction

    from messaging.models import Message

    target = new_session(f"orm{run}")
    template = list(Message.objects.filter(session=session).order_by("id")[:ORM_ROWS])
    started = time.perf_counter()
    with transaction.atomic():
        for message in template:
            Message(
                organization_id=target.organization_id,
                session=target,
                chat_id=message.chat_id,
                provider_message_id=message.provider_message_id,
                direction=message.direction,
                sender_id=message.sender_id,
                sender_jid=message.sender_jid,
                push_name=message.push_name,
                type=message.type,
                body=message.body,
                data=message.data,
                media=message.media,
                quoted_provider_id=message.quoted_provider_id,
                status=message.status,
                sent_at=message.sent_at,
                timestamp=message.timestamp,
                history=True,
            ).save()
    elapsed = time.perf_counter() - started
    count = Message.objects.filter(session=target).count()
    assert count == len(template) == ORM_ROWS, f"ORM saved {count} of {ORM_ROWS}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--order", choices=["chats", "time"], default="chats")
    args = parser.parse_args()

    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)

    real, ceiling, orm = [], [], []
    for run in range(args.runs):
        seconds, session = run_real(args, run)
        real.append(seconds)
        ceiling.append(run_ceiling(session, args.messages))
        orm.append(run_orm(session, run))
        print(
            f"run {run + 1}: real {real[-1]:.2f}s ({args.messages / real[-1]:.0f} msg/s), "
            f"ceiling {ceiling[-1]:.2f}s ({args.messages / ceiling[-1]:.0f} msg/s), "
            f"ORM {orm[-1]:.2f}s ({ORM_ROWS / orm[-1]:.0f} rows/s)",
            file=sys.stderr,
        )
    value = args.messages / statistics.median(real)
    top = args.messages / statistics.median(ceiling)
    peer = ORM_ROWS / statistics.median(orm)
    print(
        f"RESULT ingest_history value={value:.0f} unit=msg/s ceiling={top:.0f} "
        f"ratio={value / top:.2f} orm_rows_per_s={peer:.0f} order={args.order}"
    )


if __name__ == "__main__":
    main()
