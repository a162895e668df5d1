"""Ingest's bulk path: a history sync of thousands of messages costs a constant number of
statements per thousand, stores each message once, and COPY and VALUES store the same rows."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from crm import copying
from messaging import ingest, message_store, parties
from messaging.models import (
    Chat,
    Contact,
    ContactIdentity,
    Direction,
    MediaState,
    Message,
    MessageStatus,
)
from sessions_app import services
from sessions_app.providers import events as ev

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
PEOPLE = 300
GROUPS = 3


def make_session(cast, name="History"):
    return services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": name, "provider": "simulator"}
    )


def history(size: int) -> ev.HistoryBatch:
    """``size`` messages with ``PEOPLE`` people, each writing in their direct chat first (so the
    first thousand names everyone), then every third round ours; every 47th message is in one of
    ``GROUPS`` groups, every 10th quotes the one before."""
    messages = []
    for n in range(size):
        person = n % PEOPLE
        phone = f"8529{person:07d}"
        who = ev.Party(phone=phone, jid=f"{phone}@s.whatsapp.net", name=f"Person {person}")
        in_group = n % 47 == 0
        from_me = not in_group and (n // PEOPLE) % 3 == 1
        messages.append(
            ev.MessageUpserted(
                provider_message_id=f"H{n}",
                chat_jid=f"1203630{n % GROUPS}@g.us" if in_group else who.jid,
                chat_is_group=in_group,
                from_me=from_me,
                sender=None if from_me else who,
                timestamp=T0 + dt.timedelta(seconds=n),
                body=f"message {n}",
                quoted_id=f"H{n - 1}" if n % 10 == 0 and n else None,
                history=True,
            )
        )
    return ev.HistoryBatch(messages=messages, progress=100)


def apply(session, *events):
    with transaction.atomic():
        return ingest.apply(session, events)


def stored(session) -> list[tuple]:
    """Every column of the session's messages."""
    columns = [f.attname for f in Message._meta.concrete_fields]
    return list(Message.objects.filter(session=session).order_by("id").values_list(*columns))


def written() -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated and deleted so far in this transaction, per table but temporary
    ones (PostgreSQL's ``pg_stat_xact_user_tables`` counts the current transaction, its
    savepoints included)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE schemaname NOT LIKE 'pg\\_temp\\_%'"
        )
        return {name: (ins, upd, dele) for name, ins, upd, dele in cursor.fetchall()}


def test_it_stores_a_history_of_ten_thousand_with_its_people_and_chats(cast):
    session = make_session(cast)

    apply(session, history(10_000))

    assert Message.objects.filter(session=session, history=True).count() == 10_000
    contacts = Contact.objects.filter(organization=cast.org_a)
    assert contacts.count() == PEOPLE
    assert set(contacts.values_list("phone", flat=True)) == {f"8529{p:07d}" for p in range(PEOPLE)}
    assert ContactIdentity.objects.filter(organization=cast.org_a).count() == PEOPLE
    chats = Chat.objects.filter(session=session)
    assert chats.filter(kind="direct").count() == PEOPLE
    assert chats.filter(kind="group").count() == GROUPS
    assert not chats.filter(unread_count__gt=0).exists()
    last = Message.objects.filter(session=session).order_by("-timestamp").first()
    assert last.chat.last_message_at == last.timestamp
    quoting = Message.objects.get(session=session, provider_message_id="H20")
    assert quoting.quoted.provider_message_id == "H19"
    ours = Message.objects.get(session=session, provider_message_id="H303")
    assert ours.direction == "out" and ours.sender_id is None
    assert ours.chat.contact.phone == "85290000003"
    assert ours.chat.contact.display_name == "Person 3"


def test_the_same_history_again_changes_nothing(cast):
    session = make_session(cast)
    batch = history(10_000)
    apply(session, batch)
    before = stored(session)
    chats = list(Chat.objects.filter(session=session).order_by("id").values())
    contacts = list(Contact.objects.filter(organization=cast.org_a).order_by("id").values())
    postgres = connection.vendor == "postgresql"
    counted = written() if postgres else {}

    applied = apply(session, batch)

    assert applied.stored == [] and applied.received == []
    assert stored(session) == before
    assert list(Chat.objects.filter(session=session).order_by("id").values()) == chats
    assert list(Contact.objects.filter(organization=cast.org_a).order_by("id").values()) == (
        contacts
    )
    if postgres:
        assert counted["messaging_message"][0] >= 10_000  # the counter counts this transaction
        after = written()
        changed = {t: (counted.get(t), n) for t, n in after.items() if counted.get(t) != n}
        assert changed == {}


# The bound: ceil(N/1000) + K statements for N messages, the same K at 1k and 10k. A
# batch (up to ``ingest.BATCH`` = 10k messages) costs a constant number: the savepoint (2), the
# session lock (1), people found, locked, found again, created (contacts, identities) and named
# (6), chats found, created, read back (direct and group: 5), stored ids checked, ids taken, the
# COPY's savepoint (4; the COPY itself is not a statement Django sees), quotes linked (1), chats
# touched (1), events waiting (1). Measured: 21 at 1k and at 10k, so K = 20.
K = 20


@pytest.mark.parametrize("size", [1_000, 10_000])
def test_a_history_costs_a_constant_number_of_statements_per_thousand(cast, size):
    session = make_session(cast)
    batch = history(size)

    with CaptureQueriesContext(connection) as queries:
        apply(session, batch)

    assert Message.objects.filter(session=session).count() == size
    assert len(queries) <= math.ceil(size / 1000) + K, [q["sql"][:120] for q in queries]


# --- COPY and VALUES store the same rows ---------------------------------------------------------

FIELDS = [
    Message._meta.get_field(name) for name in (*message_store.COLUMNS, *message_store.DEFAULTS)
]
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="COPY is PostgreSQL's; SQLite always uses VALUES"
)


HK = dt.timezone(dt.timedelta(hours=8))
TRICKY = [
    "plain",
    "",
    "tab\there, line\nbreak, crlf\r\n",
    "back\\slash and \\N and \\.",
    "\\N",
    "NULL",
    "emoji 😀 陳大文 Zoë",
    "quotes ' \" ; commas, pipes |",
    "  spaces  ",
]
DATA = [
    {},
    {"location": {"latitude": 22.2783, "longitude": 114.1747, "name": 'Central \\ "HK" 中環'}},
    {"contacts": [{"name": "A\tB", "phones": ["+852 9123 4567"]}], "forwarded": True},
    {"n": None, "big": 12345678901234567890, "small": 1e-7, "nested": [[], {}, [None, False]]},
    "a JSON string",  # not a dict: prepared by the field
    [1, "two", None],
]


def raw_rows(session, chat, contact_id, size=250) -> list[dict]:
    """``size`` message rows as ``ingest._row`` makes them, with awkward values in every column,
    plus a repeat of one provider id (the first must win)."""
    rows = []
    for n in range(size):
        out = n % 2 == 1
        at = (T0 + dt.timedelta(seconds=n, microseconds=n * 7)).astimezone(HK if n % 3 else dt.UTC)
        media = {"url": f"https://files.example/{n}.jpg", "size": n, "mime_type": "image/jpeg"}
        row = {
            "organization_id": session.organization_id,
            "uuid": uuid.uuid4() if n % 50 != 3 else str(uuid.uuid4()),  # a str: to the field
            "session_id": session.pk,
            "chat_id": chat.pk,
            "provider_message_id": f"P{n:04d}",
            "direction": Direction.OUT if out else Direction.IN,
            "sender_id": None if out else contact_id,
            "sender_jid": "" if out else "85291234567@s.whatsapp.net",
            "push_name": "" if out else "Zoë 陳",
            "type": "image" if n % 11 == 0 else "text",
            "body": TRICKY[n % len(TRICKY)],
            "caption": TRICKY[(n + 3) % len(TRICKY)],
            "data": DATA[n % len(DATA)],
            "media": media if n % 11 == 0 else {},
            "media_state": MediaState.PENDING if n % 11 == 0 else MediaState.NONE,
            "quoted_provider_id": f"P{n - 1:04d}" if n % 7 == 0 and n else "",
            "status": MessageStatus.SENT if out else MessageStatus.RECEIVED,
            "sent_at": at if out else None,
            "timestamp": at,
            "history": n % 4 == 0,
            "created_at": T0,
        }
        if n % 10 == 5:
            row.update(
                edits=[{"body": "before\tthe edit", "at": at.isoformat()}],
                attempts=True,  # a bool for a number: to the field, stored as 1
                error_code="E\\1",
                media_key=f"1/2/{n}.jpg",
            )
        rows.append(
            {**message_store.DEFAULTS, **row}
        )  # every column, as ``ingest._row`` gives them
    rows.append({**rows[5], "uuid": uuid.uuid4(), "body": "a repeat: never stored"})
    return rows


def exactly_stored(session) -> list[dict]:
    """Every column as PostgreSQL holds it (JSON as jsonb, times as timestamptz text), but the
    ones that differ between two sessions by construction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_jsonb(m) - 'id' - 'uuid' - 'session_id' - 'chat_id' - 'quoted_id' "
            "FROM messaging_message m WHERE session_id = %s ORDER BY provider_message_id",
            [session.pk],
        )
        return [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in cursor]


def stage_for(cast, name):
    session = make_session(cast, name)
    contact = parties.contacts_for(cast.org_a, [ev.Party(phone="85291234567", name="Zoë")])
    contact_id = next(iter(contact.values()))
    chat = parties.chats_for(session, {("direct", contact_id): "85291234567@s.whatsapp.net"})
    rows = raw_rows(session, chat[("direct", contact_id)], contact_id)
    # One of them stored before, with another body: a conflict, skipped by both paths.
    before = {**rows[0], "uuid": uuid.uuid4(), "body": "stored before"}
    message_store.insert_values([before], FIELDS)
    return session, rows


@needs_postgres
def test_copy_stage_and_values_store_the_same_rows_and_return_the_same(cast):
    """The three ways a batch is written (COPY into the table, COPY through the stage, multi-row
    VALUES) store every column alike, and skip the same conflicts and repeats."""
    sessions, results = {}, {}

    def copied(rows, fields):
        made = message_store.insert_copied(rows, dict, message_store.row_keys, fields)
        return {row["provider_message_id"]: row["id"] for row in made}

    for name, insert in (
        ("direct", copied),
        ("staged", message_store.insert_staged),
        ("values", message_store.insert_values),
    ):
        session, rows = stage_for(cast, name)
        with transaction.atomic():
            results[name] = insert(rows, FIELDS)
        sessions[name] = (session, rows)

    for name, new in results.items():
        session, rows = sessions[name]
        assert sorted(new) == [f"P{n:04d}" for n in range(1, 250)], name
        ids = dict(Message.objects.filter(session=session).values_list("provider_message_id", "id"))
        assert new == {pid: ids[pid] for pid in new}, name
        uuids = dict(
            Message.objects.filter(session=session).values_list("provider_message_id", "uuid")
        )
        assert all(
            uuids[r["provider_message_id"]] == uuid.UUID(str(r["uuid"])) for r in rows[1:250]
        ), name
    direct = exactly_stored(sessions["direct"][0])
    assert len(direct) == 250
    assert direct == exactly_stored(sessions["staged"][0]) == exactly_stored(sessions["values"][0])
    session, rows = sessions["direct"]
    fifth = Message.objects.get(session=session, provider_message_id="P0005")
    assert fifth.body == TRICKY[5] and fifth.attempts == 1
    assert fifth.edits == rows[5]["edits"] and fifth.edits[0]["body"] == "before\tthe edit"
    assert Message.objects.get(session=session, provider_message_id="P0000").body == (
        "stored before"
    )
    # The COPY links each quote as it writes (the others leave that to ``link_quotes``).
    quoting = Message.objects.filter(session=session).exclude(quoted_provider_id="")
    assert quoting.count() == 35
    assert all(m.quoted.provider_message_id == m.quoted_provider_id for m in quoting)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_racing_another_writer_for_the_same_message_stores_each_once(cast):
    """Another transaction stores one of the batch's messages after the batch checked what is
    stored: the unique index refuses the COPY, and the batch goes through the stage with ON
    CONFLICT instead, every other message stored, that one not twice."""
    session, rows = stage_for(cast, "Race")
    holding, go = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def other_writer() -> None:
        try:
            with transaction.atomic():
                message_store.insert_values(
                    [{**rows[100], "uuid": uuid.uuid4(), "body": "theirs"}], FIELDS
                )
                holding.set()
                go.wait(30)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=other_writer)
    thread.start()
    assert holding.wait(30)
    original = copying.take_ids

    def take_ids_then_let_them_commit(*args, **kwargs):
        go.set()  # they commit after this batch looked for what is stored
        return original(*args, **kwargs)

    copying.take_ids = take_ids_then_let_them_commit
    try:
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            made = message_store.insert_made(rows, dict, message_store.row_keys)
            new = {row["provider_message_id"]: row["id"] for row in made}
    finally:
        copying.take_ids = original
        go.set()
        thread.join()

    assert not failures, failures
    assert any("ROLLBACK TO SAVEPOINT" in q["sql"] for q in queries)
    assert any(message_store.STAGE in q["sql"] and "INSERT" in q["sql"] for q in queries)
    assert sorted(new) == [f"P{n:04d}" for n in range(1, 250) if n != 100]
    assert Message.objects.filter(session=session).count() == 250
    assert Message.objects.get(session=session, provider_message_id="P0100").body == "theirs"


def hot_updates() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'messaging_message'"
        )
        return cursor.fetchone()


@needs_postgres
def test_receipts_update_a_message_in_place_touching_no_index(cast):
    """A receipt changes only unindexed columns (status and a time; the outbox's indexes are on
    columns of their own), so PostgreSQL updates the row in its page: a HOT update, nothing
    added to any index (the body's search index included). Between transactions PostgreSQL
    prunes the old versions, so later receipts find the room again (``bench/receipts_replay``:
    the table does not grow)."""
    session = make_session(cast)
    apply(
        session,
        ev.MessageUpserted(
            provider_message_id="OUT1",
            chat_jid="85291234567@s.whatsapp.net",
            from_me=True,
            timestamp=T0,
            body="our message about the delivery",
        ),
    )
    before = hot_updates()
    for status in ("delivered", "read"):
        receipt = ev.MessageStatusChanged(
            provider_message_id="OUT1", status=status, timestamp=T0 + dt.timedelta(minutes=1)
        )
        apply(session, receipt)
    updated, hot = (after - first for after, first in zip(hot_updates(), before, strict=True))

    # Both in place. (Had an update touched an indexed column, neither would be.)
    assert updated == 2 and hot == 2
    assert Message.objects.get(session=session).status == "read"
