"""Message rows stored in bulk, for ingest (``messaging.ingest``): new rows inserted once each
(``ON CONFLICT DO NOTHING``; COPY for a batch of more than ``COPY_ABOVE``), each quote linked to
the message it quotes, and each chat's last activity and unread count moved forward, in a constant
number of statements whatever the batch's size."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest

from crm import copying
from messaging.models import Chat, ChatStatus, Direction, Message
from sessions_app.models import WhatsAppSession

COLUMNS = (
    "organization_id",
    "uuid",
    "session_id",
    "chat_id",
    "provider_message_id",
    "direction",
    "sender_id",
    "sender_jid",
    "push_name",
    "type",
    "body",
    "caption",
    "data",
    "media",
    "media_state",
    "quoted_provider_id",
    "status",
    "sent_at",
    "timestamp",
    "history",
    "created_at",
)
# Columns a new message holds at their defaults, in every row ``_row`` makes (COPY writes all).
DEFAULTS = {
    "media_key": "",
    "media_mime": "",
    "edits": [],
    "error_code": "",
    "error_text": "",
    "attempts": 0,
}


def insert_made(items: list, make, keys) -> list[dict]:
    """Insert the message rows ``make`` makes of ``items`` (messages, or rows; of one session)
    that are new; returns those rows, each with its ``id``. ``keys`` tells an item's (session
    id, provider id, quoted provider id) as its row will hold them.

    On PostgreSQL a batch of more than ``COPY_ABOVE`` is COPYed (``insert_copied``), each row
    made as the one before is on its way; smaller batches, and SQLite, use multi-row VALUES
    (``insert_values``). Both store the same values, as the ORM would (``crm.copying`` writes
    each as ``get_db_prep_save`` prepares it)."""
    if not items:
        return []
    if connection.vendor == "postgresql" and len(items) > COPY_ABOVE:
        return insert_copied(items, make, keys, FIELDS)
    rows = [make(item) for item in items]
    new = insert_values(rows, FIELDS)
    stored = [row for row in _first_of_each(rows) if row["provider_message_id"] in new]
    for row in stored:
        row["id"] = new[row["provider_message_id"]]
    return stored


COPY_ABOVE = 20  # rows; below that a COPY's extra statements cost more than they save (above
# it, a multi-row VALUES costs more: psycopg parses a long query anew each time, ~9 ms for 150 rows)
STAGE = "parley_message_stage"
ON_CONFLICT = "ON CONFLICT (session_id, provider_message_id) DO NOTHING"


def insert_values(rows: list[dict], fields: list) -> dict[str, int]:
    """Multi-row ``INSERT … VALUES … ON CONFLICT DO NOTHING``, 200 rows a statement."""
    ops = connection.ops
    table = ops.quote_name(Message._meta.db_table)
    names = ", ".join(ops.quote_name(f.column) for f in fields)
    new: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            params = []
            for row in chunk:
                params.extend(_prepared(row, fields))
            placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES {placeholders} "  # noqa: S608 - names from the model
                f"{ON_CONFLICT} RETURNING id, provider_message_id",
                params,
            )
            new.update((pid, pk) for pk, pid in cursor.fetchall())
    return new


def _prepared(row: dict, fields: list) -> list:
    """The row's values as the ORM saves them, in ``fields`` order (``DEFAULTS`` filled in)."""
    values = {**DEFAULTS, **row}
    return [f.get_db_prep_save(values[f.attname], connection) for f in fields]


def insert_copied(items: list, make, keys, fields: list) -> list[dict]:
    """PostgreSQL, a large batch: the rows not stored yet, with ids taken from the table's
    sequence and each quote of a message stored before or earlier in the batch linked, COPYed
    straight into the table in a savepoint, each made (``make``) while the server stores the
    slice before. Should another transaction store one of them meanwhile (the unique index
    refuses the COPY), the savepoint is rolled back and ``insert_staged`` does it with
    ``ON CONFLICT``."""
    unique = {}  # provider id → (item, quoted provider id), the first of each
    session = None
    for item in items:
        session, pid, quoted = keys(item)
        if pid not in unique:
            unique[pid] = (item, quoted)
    wanted = list(unique.keys() | {q for _item, q in unique.values() if q})
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT provider_message_id, id FROM {table} "  # noqa: S608 - the name from the model
            "WHERE session_id = %s AND provider_message_id = ANY(%s)",
            [session, wanted],
        )
        known = dict(cursor.fetchall())
    fresh = [(pid, item, quoted) for pid, (item, quoted) in unique.items() if pid not in known]
    if not fresh:
        return []
    ids = copying.take_ids(Message, len(fresh))
    known.update((pid, pk) for pk, (pid, _item, _quoted) in zip(ids, fresh, strict=True))
    made: list[dict] = []

    def rows():
        for pk, (_pid, item, quoted) in zip(ids, fresh, strict=True):
            row = make(item)
            row["id"], row["quoted_id"] = pk, known.get(quoted) if quoted else None
            made.append(row)
            yield row

    try:
        with transaction.atomic():
            copying.copy(Message._meta.db_table, [Message._meta.pk, _QUOTED, *fields], rows())
    except IntegrityError:
        made.extend(make(item) for _pid, item, _quoted in fresh[len(made) :])
        for row in made:
            row.pop("id", None), row.pop("quoted_id", None)  # the stage numbers and links anew
        new = insert_staged(made, fields)
        stored = [row for row in made if row["provider_message_id"] in new]
        for row in stored:
            row["id"] = new[row["provider_message_id"]]
        return stored
    return made


def row_keys(row: dict) -> tuple[int, str, str]:
    return row["session_id"], row["provider_message_id"], row["quoted_provider_id"]


_QUOTED = Message._meta.get_field("quoted")
FIELDS = [Message._meta.get_field(name) for name in (*COLUMNS, *DEFAULTS)]


def _first_of_each(rows: list[dict]) -> list[dict]:
    """The rows without a provider id repeated earlier in ``rows`` (NULLs never conflict)."""
    seen: set[str] = set()
    unique = []
    for row in rows:
        pid = row["provider_message_id"]
        if pid is None or pid not in seen:
            seen.add(pid)
            unique.append(row)
    return unique


def insert_staged(rows: list[dict], fields: list) -> dict[str, int]:
    """PostgreSQL: COPY the rows into ``STAGE`` (a temporary table: no WAL, no index), then one
    ``INSERT … SELECT … ON CONFLICT DO NOTHING`` that also empties the stage, so the next call
    in the same transaction starts from an empty one."""
    ops = connection.ops
    table = ops.quote_name(Message._meta.db_table)
    names = ", ".join(ops.quote_name(f.column) for f in fields)
    unique = [{**DEFAULTS, **row} for row in _first_of_each(rows)]
    # Autocommit would empty the stage (ON COMMIT DELETE ROWS) between COPY and INSERT.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        columns = ", ".join(f"{ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields)
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({columns}) ON COMMIT DELETE ROWS"
        )
        copying.copy(STAGE, fields, unique)
        cursor.execute(
            f"WITH staged AS (DELETE FROM {STAGE} RETURNING {names}) "  # noqa: S608 - names from the model
            f"INSERT INTO {table} ({names}) SELECT {names} FROM staged "
            f"{ON_CONFLICT} RETURNING id, provider_message_id"
        )
        return {pid: pk for pk, pid in cursor.fetchall()}


def link_quotes(session: WhatsAppSession, ids: list[int]) -> None:
    """Each of these messages points to the one it quotes, where that is stored and the link
    not made yet (the COPY path links most as it inserts); others are not written to."""
    if not ids:
        return
    table = connection.ops.quote_name(Message._meta.db_table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} m SET quoted_id = q.id FROM {table} q "  # noqa: S608 - the name from the model
                "WHERE m.id IN (SELECT unnest(%s::bigint[])) AND m.quoted_id IS NULL "
                "AND q.session_id = m.session_id AND q.provider_message_id = m.quoted_provider_id",
                [ids],
            )
        return
    quoted = (
        f"FROM {table} q WHERE q.session_id = {table}.session_id "
        f"AND q.provider_message_id = {table}.quoted_provider_id"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cursor.execute(
                f"UPDATE {table} SET quoted_id = (SELECT q.id {quoted}) "  # noqa: S608 - names from the model
                f"WHERE id IN ({', '.join(['%s'] * len(chunk))}) AND quoted_id IS NULL "
                f"AND EXISTS (SELECT 1 {quoted})",
                chunk,
            )


def touch_chats(rows: list[dict]) -> None:
    """Each chat's last activity moves forward; live incoming messages count as unread, and
    reopen a snoozed or resolved chat (the contact wrote again)."""
    latest: dict[int, dt.datetime] = {}
    incoming: dict[int, dt.datetime] = {}
    unread: dict[int, int] = {}
    for row in rows:
        chat_id, when = row["chat_id"], row["timestamp"]
        latest[chat_id] = max(latest.get(chat_id, when), when)
        if row["direction"] == Direction.IN:
            incoming[chat_id] = max(incoming.get(chat_id, when), when)
            if not row["history"]:
                unread[chat_id] = unread.get(chat_id, 0) + 1
    if connection.vendor == "postgresql":
        # One statement for any number of chats (bulk_update's CASE costs ~0.1 ms a chat).
        # In id order: chats are locked in one order by every writer, so two never deadlock.
        table = connection.ops.quote_name(Chat._meta.db_table)
        ids = sorted(latest)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} c SET "  # noqa: S608 - the name from the model
                "last_message_at = GREATEST(c.last_message_at, v.latest), "
                "last_incoming_at = GREATEST(c.last_incoming_at, v.incoming), "
                "unread_count = c.unread_count + v.unread "
                "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[], %s::int[]) "
                "AS v(id, latest, incoming, unread) WHERE c.id = v.id",
                [
                    ids,
                    [latest[i] for i in ids],
                    [incoming.get(i) for i in ids],
                    [unread.get(i, 0) for i in ids],
                ],
            )
    else:
        _touch_chats_portably(latest, incoming, unread)
    if unread:
        Chat.objects.filter(
            pk__in=list(unread), status__in=[ChatStatus.SNOOZED, ChatStatus.RESOLVED]
        ).update(status=ChatStatus.OPEN, snoozed_until=None)


def _touch_chats_portably(latest: dict, incoming: dict, unread: dict) -> None:
    chats = []
    for chat_id, when in latest.items():
        chat = Chat(pk=chat_id)
        chat.last_message_at = Greatest(Coalesce(F("last_message_at"), Value(when)), Value(when))
        seen = incoming.get(chat_id)
        chat.last_incoming_at = (
            Greatest(Coalesce(F("last_incoming_at"), Value(seen)), Value(seen))
            if seen
            else F("last_incoming_at")
        )
        chat.unread_count = F("unread_count") + unread.get(chat_id, 0)
        chats.append(chat)
    Chat.objects.bulk_update(
        chats, ["last_message_at", "last_incoming_at", "unread_count"], batch_size=500
    )
