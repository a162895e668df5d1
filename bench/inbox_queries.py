"""Benchmark: the inbox's read endpoints over HTTP, on an organization of 1M messages in 50k chats.

    .venv/bin/python bench/inbox_queries.py [--scale 1] [--reps 100] [--warmup 10] [--rebuild]
                                            [--explain]

Never part of ``make test``. ``--scale 0.01`` is a smoke run (10k messages, ~20 s).

Data, built once and kept as the template database ``parley_bench_inbox_template``
(``…_template_<scale>`` at another scale): organization A, 1M messages in 50k chats over two
sessions, and organization B at half its size holding the same words (a query that lost its
tenant filter would show it). Written by ``COPY`` (``crm.copying``) after ``migrate``, members,
sessions and tags made by their services, then ``VACUUM ANALYZE``. Chat sizes are log-normal
(most chats hold a handful of messages) beside one chat of 20k; 6% are groups; 30% of the
chats were busy in the last days, the others last heard from any time in the year. Bodies are
1 to 60 words of a Zipf-weighted word list; three words are planted in exactly 10, 1k and 100k
of A's messages, spread over the year, and one in 2k of them, all in its first month (half as
many of B's); 5% of the messages are media (image, document, voice; most with a caption), some
quote an earlier one, some have a reaction. Chats are open, resolved or snoozed, 63% assigned
among five members, some unread (their newest messages incoming; more often the busy ones),
some archived; a fifth of the contacts are tagged. What the API reads agrees with the messages
(``last_message_at``, ``last_incoming_at``, ``unread_count``; unique uuids). The template is
rebuilt only when missing, with ``--rebuild``, or when the migrations differ (the template's
``django_migrations`` against the code's, and a hash of the migration files and the data
version kept in its ``bench_inbox_meta`` table). Each run copies it into the working database
``parley_bench_inbox`` (``CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY``), left in place
afterwards for EXPLAIN; the run creates an API key there (``accounts.services.api_key_create``,
for A's owner, role agent).

Timed, over HTTP on loopback, one request at a time on a keep-alive connection, from sending it
to the last byte of the body: a server started here as production runs one (uvicorn,
``crm.asgi``, ``crm.settings``, DEBUG off, the psycopg pool on, no response cache; one worker).
Per endpoint, ``--warmup`` requests, then ``--reps`` timed, p50 and p95 in ms: the chat list;
the chat list with ``unread=true&assignee=me``; with ``status=open&session=<the smaller
session>``; a page of the 20k-message chat at a deep cursor (20 real cursors past its first
quarter, taken from its ``next`` links by walking it once, untimed; the requests go round them)
and the page ``before=`` 20 of its messages as deep (the keyset page); the search for each
planted word (``search_old_2k``: a tenth of the repetitions, each takes seconds). Default page
size (50) throughout. Ceiling, same run, same rows: the endpoint's main query (the page's
``LIMIT 51`` SQL, captured from the same request made in this process with
``CaptureQueriesContext``) executed on one open psycopg connection (never prepared, as Django
sends it: planned every time), its rows fetched, after
the planner settings (``SET LOCAL``) the request set for it if any, p95; requests and ceilings
alternate. ``sql_all``: p95 of every SELECT of the request (but a
first try at the page it gave up) back to back on that connection, and ``sql_all_p50`` its p50;
``outside_sql``: p50 of the request less ``sql_all_p50``, the time spent outside SQL (goal: 15 ms
at most). ``queries_10`` / ``queries_100``: statements per request at page sizes 10
and 100 (in this process, ``django.test.Client`` with the same key, each after a request that
warms it; not counting the key's last-use stamp, written at most once a minute). Prints, per
endpoint:

    RESULT inbox_<endpoint> value=<p95 ms> unit=ms p50=<ms> ceiling=<main query p95 ms>
        ratio=<value / ceiling> queries_10=<n> queries_100=<n> goal=<50 or 150> sql_all=<ms>
        sql_all_p50=<ms> outside_sql=<ms>

``ratio``: how many times its main query's p95 the request's is (1: nothing but that query;
as bench/inbox_latency.py reads its latencies). Goals: p95 under 50 ms for the lists and pages, 150 ms for the searches.
``--explain`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of each main query to stderr.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import http.client
import itertools
import json
import math
import os
import random
import sys
import tempfile
import time
import urllib.parse
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.servers import free_port, start_uvicorn, stop  # noqa: E402 - after the path

DB_NAME = os.environ.get("BENCH_DATABASE_NAME", "parley_bench_inbox")
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
os.environ["TEST_DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
os.environ["DEBUG"] = "false"  # as in production: no query log kept
os.environ.setdefault("PARLEY_DATA_DIR", tempfile.mkdtemp(prefix="parley-bench-"))
SERVER_ENV = {  # the HTTP server: production's settings module, pool on, DEBUG off
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "crm.settings",
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DATABASE_POOL": "true",
    "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
}

DATA_VERSION = 2  # bump when the generated data changes: the template is rebuilt
META = "bench_inbox_meta"
SEED = 20260401
T_END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
YEAR = 365 * 24 * 3600.0
DAY = 24 * 3600.0
# Search words planted in exactly this many of A's messages (half as many of B's), anywhere;
# the last only in messages of the first month (a word that was common once).
PLANTED = {"zanzibarite": 10, "quillwort": 1_000, "marmalade": 100_000, "wintersale": 2_000}
OLD = "wintersale"
SEARCHES = [
    ("search_10", "zanzibarite"),
    ("search_1k", "quillwort"),
    ("search_100k", "marmalade"),
    ("search_old_2k", OLD),
]
VOCABULARY = (  # Zipf-weighted in this order
    "ok thanks yes no hi hello please order price when tomorrow today delivery invoice payment "
    "send sent received address the a to and of is it for you we can will your this that on "
    "with be have are not at our my me what how much time here there now later soon week "
    "monday friday morning afternoon evening call number phone email receipt refund cancel "
    "change size colour color stock available shipping tracking package box store shop open "
    "closed hours discount offer new model product service booking appointment confirm "
    "confirmed waiting sorry problem issue help support question answer great good perfect "
    "sure fine done ready pickup pick up arrive arrived late early cash card transfer bank "
    "account total balance due paid unpaid quote estimate sample catalogue list menu lunch "
    "dinner table reservation people guests room check in out key wifi password photo picture "
    "video file document contract sign signed copy original thank merci gracias obrigado "
    "bitte danke hola bom dia buenas noches 好的 謝謝 明天 ✅ 👍 🙏"
)
WORDS = VOCABULARY.split()
FIRST = ["Ann", "Bo", "Chen", "Dana", "Eli", "Fatima", "Gus", "陳", "李", "José", "Zoë", "Omar"]
LAST = ["Smith", "Wong", "大文", "García", "O'Neil", "Müller", "Khan", "Lee", "Nair", "Brown"]
GROUPS = ["Suppliers", "Family", "Team", "Orders", "Drivers", "VIP customers", "Wholesale"]
TAGS = ["customer", "lead", "vip", "supplier", "wholesale", "follow-up"]
EMOJI = ["👍", "❤️", "😂", "🙏", "✅", "😮"]
MEMBERS = 5  # the owner and four agents, per organization
PASSWORD = "bench-inbox-Pa55word"
assert not any(w.startswith(p) for w in WORDS for p in PLANTED), "a word a planted one prefixes"


@dataclass(frozen=True)
class Shape:
    label: str  # "a", "b"
    messages: int
    chats: int
    big: int  # messages in the largest chat
    planted: dict[str, int]


def shapes(scale: float) -> list[Shape]:
    def n(x: float) -> int:
        return max(1, round(x * scale))

    return [
        Shape("a", n(1e6), n(5e4), n(2e4), {w: max(10, n(c)) for w, c in PLANTED.items()}),
        Shape("b", n(5e5), n(2.5e4), n(1e4), {w: max(5, n(c / 2)) for w, c in PLANTED.items()}),
    ]


def template_name(scale: float) -> str:
    base = f"{DB_NAME}_template"
    return base if scale == 1 else f"{base}_{format(scale, 'g').replace('.', '_')}"


def admin():
    import psycopg

    return psycopg.connect(f"{SERVER}/postgres", autocommit=True)


# --- The template ---------------------------------------------------------------------------------


def migration_state() -> tuple[set[tuple[str, str]], str]:
    """The migrations the code has ((app, name)) and a hash of their files."""
    from django.db.migrations.loader import MigrationLoader

    nodes = MigrationLoader(None, ignore_no_migrations=True).graph.nodes
    digest = hashlib.sha256()
    for key in sorted(nodes):
        digest.update(repr(key).encode())
        digest.update(Path(sys.modules[type(nodes[key]).__module__].__file__).read_bytes())
    return set(nodes), digest.hexdigest()


def read_meta(name: str) -> dict | None:
    """The template's metadata and applied migrations, or None if it does not exist."""
    import psycopg

    with admin() as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
        try:
            meta = dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())
        except psycopg.errors.UndefinedTable:
            return {}
        meta["applied"] = set(conn.execute("SELECT app, name FROM django_migrations").fetchall())
    return meta


def stale_reason(meta: dict | None, scale: float) -> str | None:
    """Why the template must be rebuilt, or None."""
    if meta is None:
        return "missing"
    if not meta:
        return "no metadata (an interrupted build?)"
    applied, digest = migration_state()
    if meta["applied"] != applied:
        return f"migrations differ: {sorted(applied ^ meta['applied'])}"
    if meta.get("migrations_sha256") != digest:
        return "a migration file changed"
    if meta.get("data_version") != str(DATA_VERSION) or float(meta.get("scale", -1)) != scale:
        return "generator changed"
    return None


def build_template(name: str, scale: float) -> float:
    """Migrate a new database, fill it, VACUUM ANALYZE it, then make it ``name``. Seconds."""
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    building = f"{name}_build"
    started = time.perf_counter()
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{building}"')
    connection.close()
    connection.settings_dict["NAME"] = building
    try:
        call_command("migrate", verbosity=0, interactive=False)
        print(f"  migrated in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        rng = random.Random(SEED)
        big = {}
        for shape in shapes(scale):
            big[shape.label] = str(fill(shape, rng))
    finally:
        connection.close()
        connection.settings_dict["NAME"] = DB_NAME
    with psycopg.connect(f"{SERVER}/{building}", autocommit=True) as conn:
        mark = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")  # as autovacuum leaves a table: statistics, visibility
        print(f"  VACUUM ANALYZE in {time.perf_counter() - mark:.1f}s", file=sys.stderr)
        _applied, digest = migration_state()
        seconds = time.perf_counter() - started
        conn.execute(f"CREATE TABLE {META} (key text PRIMARY KEY, value text NOT NULL)")
        meta = {
            "data_version": str(DATA_VERSION),
            "scale": repr(scale),
            "migrations_sha256": digest,
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "build_seconds": f"{seconds:.1f}",
            "shapes": json.dumps([vars(s) for s in shapes(scale)]),
            "big_chats": json.dumps(big),
        }
        with conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {META} VALUES (%s, %s)", list(meta.items()))
    with admin() as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
    return seconds


def restore(template: str) -> float:
    """The working database, a copy of the template. Seconds."""
    from django.db import connection

    connection.close()
    started = time.perf_counter()
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return time.perf_counter() - started


# --- The data -------------------------------------------------------------------------------------


@dataclass
class Plan:
    """One chat: everything its row and its messages' rows are made from."""

    kind: str
    session: int  # index into the organization's sessions
    contact: int | None  # index into its contacts (a direct chat's person)
    times: array  # epoch seconds, ascending
    incoming: bytearray  # 1 for a message from them
    status: str = "open"
    assignee: int | None = None  # index into its members
    unread: int = 0
    archived: bool = False
    needs_human: bool = False
    snoozed_until: float | None = None
    participants: list[int] = field(default_factory=list)  # a group's contacts


def chat_sizes(rng: random.Random, shape: Shape) -> list[int]:
    """The big chat first, then ``chats - 1`` log-normal sizes (>= 1) summing to the rest."""
    rest, n = shape.messages - shape.big, shape.chats - 1
    assert rest >= n, "fewer messages than chats"
    weights = [rng.lognormvariate(0, 1.3) for _ in range(n)]
    total = sum(weights)
    cap = max(1, shape.big // 2)
    sizes = [min(cap, max(1, int(w / total * rest))) for w in weights]
    diff = rest - sum(sizes)
    while diff:
        i = rng.randrange(n)
        if diff > 0 and sizes[i] < cap:
            sizes[i] += 1
            diff -= 1
        elif diff < 0 and sizes[i] > 1:
            sizes[i] -= 1
            diff += 1
    return [shape.big, *sizes]


def plan_chats(rng: random.Random, shape: Shape) -> tuple[list[Plan], int]:
    """The chats, and how many contacts they need."""
    plans = []
    contacts = 0
    for number, size in enumerate(chat_sizes(rng, shape)):
        big = number == 0
        group = not big and rng.random() < 0.06
        if big:
            last, first = T_END - 60.0, T_END - YEAR
        else:
            # 30% of the chats busy lately, the others last heard from any time this year
            age = rng.expovariate(1 / (3 * DAY)) if rng.random() < 0.3 else rng.uniform(0, YEAR)
            last = T_END - min(YEAR * 0.98, age)
            first = max(T_END - YEAR, last - size * rng.expovariate(1 / (6 * 3600.0)))
        times = array("d", sorted(rng.uniform(first, last) for _ in range(size - 1)))
        times.append(last)
        out_share = 0.1 if group else 0.4
        incoming = bytearray(
            1 if (i == 0 and not group and rng.random() < 0.8) or rng.random() > out_share else 0
            for i in range(size)
        )
        plan = Plan(
            kind="group" if group else "direct",
            session=0 if big or rng.random() < 0.7 else 1,
            contact=None if group else contacts,
            times=times,
            incoming=incoming,
        )
        contacts += not group
        recent = last > T_END - 2 * DAY
        if not big and rng.random() < 0.03:
            plan.archived = True
        elif big or rng.random() < (0.5 if recent else 0.1):
            plan.unread = min(size, rng.randint(1, 6))
            for i in range(size - plan.unread, size):  # unread: the newest are from them
                incoming[i] = 1
        draw = rng.random()
        if plan.unread or draw < 0.55:
            plan.status = "open"
        elif draw < 0.9:
            plan.status = "resolved"
        else:
            plan.status, plan.snoozed_until = "snoozed", T_END + rng.uniform(3600, 7 * DAY)
        draw = rng.random()
        plan.assignee = 0 if big or draw < 0.15 else None if draw > 0.63 else rng.randint(1, 4)
        plan.needs_human = rng.random() < 0.03
        plans.append(plan)
    extra = max(1, contacts // 20)  # people seen only in groups
    for plan in plans:
        if plan.kind == "group":
            plan.participants = rng.sample(range(contacts + extra), min(contacts, 25))[
                : rng.randint(3, 25)
            ]
    return plans, contacts + extra


def fill(shape: Shape, rng: random.Random) -> uuid.UUID:
    """One organization: members, sessions, tags (by their services), then contacts, chats,
    messages and reactions (by COPY). Returns the big chat's uuid."""
    from accounts import services as accounts
    from crm import copying
    from messaging.models import Chat, Contact, ContactIdentity, ContactTag, Message, Reaction
    from messaging.services import contacts as contact_services
    from messaging.services.contacts import contact_search_terms
    from messaging.text import search_text
    from sessions_app import services as sessions

    started = time.perf_counter()
    now = dt.datetime.fromtimestamp(T_END, dt.UTC)
    owner = accounts.user_create(email=f"owner-{shape.label}@bench.parley.test", password=PASSWORD)
    organization = accounts.organization_create(
        name=f"Bench inbox {shape.label.upper()}",
        owner=owner,
        slug=f"bench-inbox-{shape.label}",
        default_country="GB",
    )
    members = [owner]
    for n in range(1, MEMBERS):
        agent = accounts.user_create(
            email=f"agent{n}-{shape.label}@bench.parley.test", password=PASSWORD
        )
        accounts.member_add_as_operator(organization=organization, user=agent, role="agent")
        members.append(agent)
    session_rows = [
        sessions.session_create(
            organization=organization, actor=owner, data={"name": name, "provider": "simulator"}
        )
        for name in ("Sales", "Support")
    ]
    tags = [contact_services.tag_create(organization=organization, name=t) for t in TAGS]
    org = organization.pk
    digit = "1" if shape.label == "a" else "2"

    plans, people = plan_chats(rng, shape)
    # Contacts, their identities and tags.
    contact_ids = copying.take_ids(Contact, people)
    contact_fields = copying.fields_of(Contact, pk=True)
    jids, names = [], []
    contact_rows, identity_rows, tag_rows = [], [], []
    for n, pk in enumerate(contact_ids):
        phone = f"447{digit}{n:08d}"
        jid = f"{phone}@s.whatsapp.net"
        named = rng.random() < 0.85
        push = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        contact = Contact(
            id=pk,
            organization_id=org,
            name=push if named else "",
            notify_name=push,
            phone=phone,
            created_at=now,
            updated_at=now,
        )
        pairs = [("phone", phone), ("jid", jid)]
        contact.display_name = contact.compute_display_name()
        contact.search_text = search_text(contact_search_terms(contact, (), pairs))
        contact_rows.append({f.attname: getattr(contact, f.attname) for f in contact_fields})
        identity_rows += [
            {"organization_id": org, "contact_id": pk, "kind": k, "value": v} for k, v in pairs
        ]
        if rng.random() < 0.2:
            for tag in rng.sample(tags, rng.randint(1, 2)):
                tag_rows.append({"organization_id": org, "contact_id": pk, "tag_id": tag.pk})
        jids.append(jid)
        names.append(push)
    copying.copy(Contact._meta.db_table, contact_fields, contact_rows)
    copying.insert(ContactIdentity, identity_rows, now, ids=False)
    copying.insert(ContactTag, tag_rows, now, ids=False)
    del contact_rows, identity_rows, tag_rows

    # Chats.
    chat_ids = copying.take_ids(Chat, len(plans))
    chat_uuids = [uuid.uuid4() for _ in plans]
    chat_fields = copying.fields_of(Chat, pk=True)
    chat_rows = []
    for plan, pk, chat_uuid in zip(plans, chat_ids, chat_uuids, strict=True):
        incoming = [t for t, i in zip(plan.times, plan.incoming, strict=True) if i]
        first = dt.datetime.fromtimestamp(plan.times[0], dt.UTC)
        group = plan.kind == "group"
        chat_rows.append(
            {
                "id": pk,
                "organization_id": org,
                "uuid": chat_uuid,
                "session_id": session_rows[plan.session].pk,
                "kind": plan.kind,
                "contact_id": None if group else contact_ids[plan.contact],
                "jid": f"120363{digit}{pk:011d}@g.us" if group else jids[plan.contact],
                "name": f"{rng.choice(GROUPS)} {pk}" if group else "",
                "participants": [jids[p] for p in plan.participants],
                "status": plan.status,
                "snoozed_until": _time(plan.snoozed_until),
                "assignee_id": None if plan.assignee is None else members[plan.assignee].pk,
                "needs_human": plan.needs_human,
                "unread_count": plan.unread,
                "last_message_at": _time(plan.times[-1]),
                "last_incoming_at": _time(incoming[-1] if incoming else None),
                "archived": plan.archived,
                "created_at": first,
                "updated_at": _time(plan.times[-1]),
            }
        )
    copying.copy(Chat._meta.db_table, chat_fields, chat_rows)
    del chat_rows
    print(
        f"  {shape.label}: {people} contacts, {len(plans)} chats in "
        f"{time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )

    # Messages, in slices of whole chats (one COPY, one transaction, each), and reactions.
    spread = {w: n for w, n in shape.planted.items() if w != OLD}
    chosen = rng.sample(range(shape.messages), sum(spread.values()))
    planted: dict[int, str] = {}
    for word, count in spread.items():
        planted.update((serial, word) for serial in chosen[:count])
        chosen = chosen[count:]
    first_month = T_END - YEAR + 31 * DAY
    old = [
        serial
        for serial, at in enumerate(itertools.chain.from_iterable(p.times for p in plans))
        if at < first_month and serial not in planted
    ]
    planted.update((serial, OLD) for serial in rng.sample(old, shape.planted[OLD]))
    message_fields = copying.fields_of(Message, pk=True)
    made = Made(
        org=org,
        label=shape.label.upper(),
        sessions=[s.pk for s in session_rows],
        contacts=contact_ids,
        jids=jids,
        names=names,
        ids=copying.take_ids(Message, shape.messages),
        planted=planted,
        base={f.attname: f.get_default() for f in message_fields},
    )
    start = 0
    while start < len(plans):
        stop, size = start, 0
        while stop < len(plans) and size < 100_000:
            size += len(plans[stop].times)
            stop += 1
        rows = made.messages(plans[start:stop], chat_ids[start:stop], rng)
        copying.copy(Message._meta.db_table, message_fields, rows)
        start = stop
    assert made.serial == shape.messages
    copying.insert(Reaction, made.reactions, now, ids=False)
    print(
        f"  {shape.label}: {made.serial} messages, {len(made.reactions)} reactions, in all "
        f"{time.perf_counter() - started:.1f}s",
        file=sys.stderr,
    )
    return chat_uuids[0]


def _time(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(WORDS))))


@dataclass
class Made:
    """What an organization's message rows are made of, and what making them adds up."""

    org: int
    label: str
    sessions: list[int]
    contacts: list[int]  # ids, by contact index
    jids: list[str]
    names: list[str]
    ids: list[int]  # message ids, by serial
    planted: dict[int, str]  # serial → planted word
    base: dict  # every column at its default
    serial: int = 0  # messages made so far
    reactions: list[dict] = field(default_factory=list)

    def messages(self, plans: list[Plan], chat_ids: list[int], rng: random.Random):
        """The message rows of these chats, each made as it is asked for (COPY streams)."""
        choices, expo, draw = rng.choices, rng.expovariate, rng.random
        for plan, chat_id in zip(plans, chat_ids, strict=True):
            first = self.serial
            session_id = self.sessions[plan.session]
            for at, incoming in zip(plan.times, plan.incoming, strict=True):
                serial, when = self.serial, dt.datetime.fromtimestamp(at, dt.UTC)
                row = dict(self.base)
                length = 1 + min(59, int(expo(1 / 8)))
                text = " ".join(choices(WORDS, cum_weights=CUMULATIVE, k=length))
                word = self.planted.get(serial)
                kind, body, caption = "text", text, ""
                roll = draw()
                if roll < 0.05:  # media: an image, a document or a voice note
                    kind = (
                        "image" if roll < 0.03 or word else "document" if roll < 0.045 else "audio"
                    )
                    body = ""
                    caption = text if kind != "audio" and (word or draw() < 0.7) else ""
                    mime = {"image": "image/jpeg", "document": "application/pdf"}.get(
                        kind, "audio/ogg"
                    )
                    row["media"] = {"mime_type": mime, "filename": f"file-{serial}"}
                    row["media_state"], row["media_key"] = "stored", f"media/{self.org}/{serial}"
                    row["media_mime"], row["media_size"] = mime, rng.randint(10_000, 4_000_000)
                if word and caption:
                    caption = f"{caption} {word}"
                elif word:
                    body = f"{word} {body}" if draw() < 0.5 else f"{body} {word}"
                if incoming:
                    person = rng.choice(plan.participants) if plan.kind == "group" else plan.contact
                    row["direction"], row["status"] = "in", "received"
                    row["sender_id"] = self.contacts[person]
                    row["sender_jid"], row["push_name"] = self.jids[person], self.names[person]
                else:
                    row["direction"], row["sent_at"] = "out", when
                    roll = draw()
                    if roll < 0.03:
                        row["status"], row["failed_at"] = "failed", when
                        row["error_code"], row["error_text"] = "131026", "Message undeliverable"
                    elif roll < 0.18:
                        row["status"] = "sent"
                    else:
                        row["status"] = "delivered" if roll < 0.43 else "read"
                        row["delivered_at"] = when + dt.timedelta(seconds=2)
                        if roll >= 0.43:
                            row["read_at"] = when + dt.timedelta(seconds=rng.randint(5, 3600))
                if serial > first and draw() < 0.03:
                    quoted = rng.randrange(first, serial)
                    row["quoted_id"] = self.ids[quoted]
                    row["quoted_provider_id"] = f"3EB0{self.label}{quoted:012d}"
                if draw() < 0.015:
                    someone = plan.contact if plan.contact is not None else plan.participants[0]
                    self.reactions.append(
                        {
                            "organization_id": self.org,
                            "message_id": self.ids[serial],
                            "actor": "me" if incoming else self.jids[someone],
                            "sender_id": None if incoming else self.contacts[someone],
                            "emoji": rng.choice(EMOJI),
                            "timestamp": when + dt.timedelta(seconds=30),
                        }
                    )
                row.update(
                    id=self.ids[serial],
                    organization_id=self.org,
                    uuid=uuid.uuid4(),
                    session_id=session_id,
                    chat_id=chat_id,
                    provider_message_id=f"3EB0{self.label}{serial:012d}",
                    type=kind,
                    body=body,
                    caption=caption,
                    timestamp=when,
                    created_at=when,
                    history=at < T_END - 60 * DAY,
                )
                self.serial += 1
                yield row


# --- Measuring ------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    name: str
    path: str
    variants: list[dict]  # query parameters; the timed requests cycle through them
    goal: int  # ms, p95
    expect: int  # results on the first page
    slow: bool = False  # a tenth of the repetitions (at least 10), 2 warm-ups
    # Per variant: the page's SQL; every SELECT of the request; the planner settings the
    # request set before its page (``SET LOCAL``, as a search retrying its page might).
    main: list[str] = field(default_factory=list)
    selects: list[list[str]] = field(default_factory=list)
    settings: list[list[str]] = field(default_factory=list)


class Http:
    """One keep-alive connection to the server, with the API key."""

    def __init__(self, port: int, key: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def get(self, url: str) -> tuple[float, bytes]:
        try:
            return self._get(url)
        except (http.client.RemoteDisconnected, ConnectionError):  # idle past keep-alive
            self.conn.close()
            return self._get(url)

    def _get(self, url: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        self.conn.request("GET", url, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"GET {url}: {response.status} {body[:300]!r}")
        return elapsed * 1000, body


def url(path: str, params: dict) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def walk(client: Http, chat: str, size: int, rng: random.Random) -> tuple[list, list]:
    """Walk the chat's pages once by their ``next`` links. Returns 20 of the cursors past its
    first quarter with a full page of 50 after them, and 20 such messages (their ids)."""
    step = max(10, min(200, size // 40))
    link = url(f"/api/v1/chats/{chat}/messages/", {"page_size": step})
    cursors, anchors, seen = [], [], 0
    while link:
        page = json.loads(client.get(link)[1])
        seen += len(page["results"])
        link = None
        if size // 4 <= seen <= size - 50:
            anchors.append(page["results"][-1]["id"])
        if page["next"]:
            parts = urllib.parse.urlsplit(page["next"])
            link = f"{parts.path}?{parts.query}"
            if size // 4 <= seen <= size - 50:
                cursors.append(urllib.parse.parse_qs(parts.query)["cursor"][0])
    assert seen == size, f"walked {seen} of the big chat's {size} messages"
    assert "p=" in base64.b64decode(cursors[0]).decode(), "a cursor without a position"
    return rng.sample(cursors, min(20, len(cursors))), rng.sample(anchors, min(20, len(anchors)))


STAMP = 'UPDATE "accounts_apikey" SET "last_used_at"'  # at most once a minute, not per page


def count_and_capture(endpoint: Endpoint, client) -> tuple[int, int]:
    """Statements per request at page sizes 10 and 100 (each after a warming request; the API
    key's last-use stamp, written at most once a minute, not counted); and each variant's SQL
    at the default page size, kept on the endpoint."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def run(params: dict) -> list[str]:
        client.get(endpoint.path, params)  # warms it (and records the key's use, at most 1/min)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(endpoint.path, params)
        assert response.status_code == 200, (endpoint.name, response.status_code, response.content)
        return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(STAMP)]

    counts = [len(run({**endpoint.variants[0], "page_size": n})) for n in (10, 100)]
    for params in endpoint.variants:
        sqls = run(params)
        pages = [n for n, sql in enumerate(sqls) if sql.rstrip().endswith("LIMIT 51")]
        assert pages, (endpoint.name, sqls)
        last = pages[-1]  # an earlier try was given up (cancelled)
        endpoint.main.append(sqls[last])
        endpoint.settings.append(
            [
                sql
                for sql in sqls[pages[-2] + 1 if len(pages) > 1 else 0 : last]
                if sql.startswith("SET LOCAL") and "statement_timeout" not in sql
            ]
        )
        endpoint.selects.append(
            [
                sql
                for n, sql in enumerate(sqls)
                if sql.lstrip().upper().startswith("SELECT") and (n not in pages or n == last)
            ]
        )
    return counts[0], counts[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def sql_ms(conn, sqls: list[str], settings: list[str]) -> float:
    """``sqls`` run and their rows fetched; after ``settings``, in one transaction, if any."""
    started = time.perf_counter()
    with conn.transaction() if settings else contextlib.nullcontext():
        for sql in settings:
            conn.execute(sql)
        for sql in sqls:
            conn.execute(sql).fetchall()
    return (time.perf_counter() - started) * 1000


def measure(endpoint: Endpoint, client: Http, conn, args) -> dict:
    """Requests, the main query and all the request's SELECTs, alternating."""
    http_ms, main_ms, all_ms = [], [], []
    first = json.loads(client.get(url(endpoint.path, endpoint.variants[0]))[1])
    assert len(first["results"]) == endpoint.expect, (
        endpoint.name,
        len(first["results"]),
        endpoint.expect,
    )
    warmup, reps = (2, max(10, args.reps // 10)) if endpoint.slow else (args.warmup, args.reps)
    for n in range(warmup + reps):
        v = n % len(endpoint.variants)
        request = client.get(url(endpoint.path, endpoint.variants[v]))[0]
        main = sql_ms(conn, [endpoint.main[v]], endpoint.settings[v])
        every = sql_ms(conn, endpoint.selects[v], endpoint.settings[v])
        if n >= warmup:
            http_ms.append(request)
            main_ms.append(main)
            all_ms.append(every)
    return {
        "p50": percentile(http_ms, 0.5),
        "p95": percentile(http_ms, 0.95),
        "ceiling": percentile(main_ms, 0.95),
        "ceiling_p50": percentile(main_ms, 0.5),
        "sql_all": percentile(all_ms, 0.95),
        "sql_all_p50": percentile(all_ms, 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0, help="0.01: a smoke run")
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rebuild", action="store_true", help="build the template anew")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the main queries")
    args = parser.parse_args()

    import django

    django.setup()
    import psycopg

    template = template_name(args.scale)
    reason = "--rebuild" if args.rebuild else stale_reason(read_meta(template), args.scale)
    if reason:
        print(f"building {template} ({reason})", file=sys.stderr)
        build_template(template, args.scale)
    meta = read_meta(template)
    print(
        f"template {template}: built {meta['built_at']} in {meta['build_seconds']}s"
        f"{' (this run)' if reason else ' (cached)'}",
        file=sys.stderr,
    )
    restored = restore(template)
    print(f"working database {DB_NAME} made from it in {restored:.1f}s", file=sys.stderr)

    from django.db.models import Count, Max
    from django.test import Client

    from accounts import services as accounts
    from accounts.models import Organization, User
    from messaging.models import Chat, Message
    from sessions_app.models import WhatsAppSession

    shape = shapes(args.scale)[0]
    organization = Organization.objects.get(slug="bench-inbox-a")
    owner = User.objects.get(email="owner-a@bench.parley.test")
    _key, raw = accounts.api_key_create(
        organization=organization, name="bench", role="agent", actor=owner
    )
    support = WhatsAppSession.objects.get(organization=organization, name="Support")
    big = json.loads(meta["big_chats"])["a"]
    counts = dict(
        Chat.objects.filter(organization=organization)
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )
    assert sum(counts.values()) == shape.chats, counts
    assert Message.objects.filter(chat__uuid=big).count() == shape.big
    listed = Chat.objects.filter(organization=organization, archived=False)
    mine = listed.filter(unread_count__gt=0, assignee=owner).count()
    open_support = listed.filter(status="open", session=support).count()
    print(
        f"organization A: {shape.messages} messages, {shape.chats} chats {counts}; "
        f"unread and mine {mine}, open in Support {open_support}",
        file=sys.stderr,
    )

    port = free_port()
    server = start_uvicorn(port, env=SERVER_ENV, workers=1, options=("--lifespan", "off"))
    try:
        client = Http(port, raw)
        rng = random.Random(SEED)
        cursors, anchors = walk(client, big, shape.big, rng)
        endpoints = [
            Endpoint("chats", "/api/v1/chats/", [{}], 50, 50),
            Endpoint(
                "chats_unread_mine",
                "/api/v1/chats/",
                [{"unread": "true", "assignee": "me"}],
                50,
                min(50, mine),
            ),
            Endpoint(
                "chats_open_session",
                "/api/v1/chats/",
                [{"status": "open", "session": str(support.uuid)}],
                50,
                min(50, open_support),
            ),
            Endpoint(
                "messages_page",
                f"/api/v1/chats/{big}/messages/",
                [{"cursor": c} for c in cursors],
                50,
                50,
            ),
            Endpoint(
                "messages_before",
                f"/api/v1/chats/{big}/messages/",
                [{"before": a} for a in anchors],
                50,
                50,
            ),
        ]
        for name, word in SEARCHES:
            matches = Message.objects.filter(organization=organization, body__contains=word)
            matches = (
                matches.count()
                + Message.objects.filter(organization=organization, caption__contains=word).count()
            )
            assert matches == shape.planted[word], (word, matches, shape.planted[word])
            if word == OLD:
                newest = Message.objects.filter(organization=organization, body__contains=word)
                newest = newest.aggregate(at=Max("timestamp"))["at"].timestamp()
                assert newest < T_END - YEAR + 31 * DAY, "the old word in a later message"
            others = Message.objects.exclude(organization=organization).filter(body__contains=word)
            assert others.exists(), f"no other organization holds {word}"
            endpoints.append(
                Endpoint(
                    name,
                    "/api/v1/messages/search/",
                    [{"q": word}],
                    150,
                    min(50, matches),
                    slow=word == OLD,
                )
            )
        django_client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        # Never prepared, as Django sends them (client-side binding): psycopg's default would
        # prepare a statement run five times, and the ceilings would leave out the planning
        # every request pays.
        with psycopg.connect(
            f"{SERVER}/{DB_NAME}", autocommit=True, prepare_threshold=None
        ) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            for endpoint in endpoints:
                q10, q100 = count_and_capture(endpoint, django_client)
                got = measure(endpoint, client, conn, args)
                print(
                    f"RESULT inbox_{endpoint.name} value={got['p95']:.1f} unit=ms "
                    f"p50={got['p50']:.1f} ceiling={got['ceiling']:.1f} "
                    f"ratio={got['p95'] / got['ceiling']:.1f} queries_10={q10} "
                    f"queries_100={q100} goal={endpoint.goal} sql_all={got['sql_all']:.1f} "
                    f"sql_all_p50={got['sql_all_p50']:.1f} "
                    f"outside_sql={got['p50'] - got['sql_all_p50']:.1f}",
                    flush=True,
                )
                print(
                    f"  {endpoint.name}: main query p50 {got['ceiling_p50']:.1f} ms; "
                    f"{len(endpoint.selects[0])} SELECTs; p95 "
                    f"{'within' if got['p95'] < endpoint.goal else 'OVER'} its goal",
                    file=sys.stderr,
                )
            if args.explain:
                for endpoint in endpoints:
                    with conn.transaction():
                        for sql in endpoint.settings[0]:
                            conn.execute(sql)
                        explain = f"EXPLAIN (ANALYZE, BUFFERS) {endpoint.main[0]}"
                        plan = conn.execute(explain).fetchall()
                    sql = "; ".join([*endpoint.settings[0], endpoint.main[0]])
                    print(f"\n--- {endpoint.name}\n{sql}", file=sys.stderr)
                    print("\n".join(line for (line,) in plan), file=sys.stderr)
    finally:
        stop(server)


if __name__ == "__main__":
    main()
