"""The inbound queue: verified webhooks stored first, applied by a drainer.

``receive`` (called by the webhook views) verifies in constant time, then does one INSERT and
answers: a forged or tampered request stores nothing but a counter (401); a repeated delivery is
the same row (its body hash is unique per session) and changes nothing; a body that is not JSON is
kept for inspection (400). After the insert a kick asks a worker to drain
(``sessions_app.kicker``: single-flight).

``drain`` claims pending rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (two drainers never take
the same row; a drainer killed mid-batch rolls back and the rows stay pending for the beat sweep),
translates each through its provider, applies session events (``services.apply_session_events``)
and publishes the rest through ``crm/events.py`` as ``whatsapp.events``. If nothing subscribes
yet, the row is kept as ``waiting``, to be applied when a subscriber arrives (``replay_waiting``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from crm import events as bus
from crm.text import TooDeep, json_parsed
from sessions_app.kicker import kick
from sessions_app.models import WebhookEvent, WebhookState, WhatsAppSession
from sessions_app.providers import events as ev
from sessions_app.providers.base import Forged, InboundRequest

logger = logging.getLogger(__name__)

TOPIC = "whatsapp.events"
BATCH = 200
UPDATED = ["state", "attempts", "error", "processed_at", "available_at"]  # by a drain
KEPT_HEADERS = ("content-type", "user-agent", "x-request-id")  # never a signature or a secret


@dataclass(frozen=True)
class Answer:
    status: int
    body: str = ""


def dedupe_key(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _stored_body(provider: Any, payload: Any) -> str:
    return json.dumps(provider.scrub(payload), ensure_ascii=False, separators=(",", ":"))


def receive(
    *,
    session: WhatsAppSession | None,
    provider_name: str,
    request: InboundRequest,
    provider: Any = None,
    verified: bool = False,
) -> Answer:
    """Verify (unless ``verified``) and store one inbound request for ``session``
    (``provider_name`` must match it; ``provider`` is the session's, if already built)."""
    if session is None or session.provider != provider_name:
        return Answer(404)
    if provider is None:
        from sessions_app.services import provider_for

        provider = provider_for(session)
    if request.method == "GET":
        try:
            answer = provider.challenge(request)
        except Forged:
            _count_forged(session)
            return Answer(403)
        return Answer(200, answer) if answer is not None else Answer(405)
    if not verified:
        try:
            provider.verify(request)
        except Forged:
            _count_forged(session)
            return Answer(401)
    try:
        payload = json_parsed(request.body)
    except ValueError as exc:  # kept for inspection, with no secret in it
        reason = str(exc) if isinstance(exc, TooDeep) else "not JSON"
        store(
            session=session,
            request=request,
            body=provider.scrub_text(request.body.decode("utf-8", "replace")),
            state=WebhookState.INVALID,
            error=reason,
        )
        return Answer(400, reason)
    store(session=session, request=request, body=_stored_body(provider, payload))
    return Answer(200, "ok")


class _Receiving:
    """The sessions this process receives webhooks for, each with its provider (credentials
    decrypted), kept ``ttl`` seconds, so a delivery costs no SELECT and no decryption.

    Nothing stale is trusted: a request that fails verification against a kept session is
    verified again against a fresh read (credentials replaced meanwhile count at once), and a
    session deleted meanwhile fails the INSERT's foreign key and is answered 404. The ttl bounds
    how long a replaced secret is still accepted by a process that read it before."""

    ttl = 10.0
    most = 10_000

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], tuple[float, WhatsAppSession, Any]] = {}

    def get(self, provider_name: str, session_uuid, *, fresh: bool = False):
        """(session, provider, was kept) or (None, None, False) for no such session."""
        from sessions_app.services import provider_for

        key = (provider_name, str(session_uuid))
        now = time.monotonic()
        kept = None if fresh else self.kept.get(key)
        if kept is not None and kept[0] > now:
            return kept[1], kept[2], True
        session = WhatsAppSession.objects.filter(uuid=session_uuid, provider=provider_name).first()
        if session is None:
            self.kept.pop(key, None)
            return None, None, False
        provider = provider_for(session)
        if len(self.kept) >= self.most:
            self.kept.clear()
        self.kept[key] = (now + self.ttl, session, provider)
        return session, provider, False

    def forget(self, provider_name: str, session_uuid) -> None:
        self.kept.pop((provider_name, str(session_uuid)), None)

    def clear(self) -> None:
        self.kept.clear()


receiving = _Receiving()


def receive_at(provider_name: str, session_uuid, request: InboundRequest) -> Answer:
    """``receive`` for the session a webhook URL names (the views' entry)."""
    session, provider, kept = receiving.get(provider_name, session_uuid)
    if session is None:
        return Answer(404)
    verified = False
    if kept:
        if _genuine(provider, request):
            verified = request.method != "GET"
        else:
            session, provider, _kept = receiving.get(provider_name, session_uuid, fresh=True)
    try:
        return receive(
            session=session,
            provider_name=provider_name,
            request=request,
            provider=provider,
            verified=verified,
        )
    except IntegrityError:  # the session was deleted since it was read
        receiving.forget(provider_name, session_uuid)
        return Answer(404)


def _genuine(provider: Any, request: InboundRequest) -> bool:
    try:
        if request.method == "GET":
            provider.challenge(request)
        else:
            provider.verify(request)
    except Forged:
        return False
    return True


def _count_forged(session: WhatsAppSession) -> None:
    WhatsAppSession.objects.filter(pk=session.pk).update(forged_requests=F("forged_requests") + 1)
    logger.warning("webhook for session %s refused: bad signature", session.uuid)


def store(
    *,
    session: WhatsAppSession,
    request: InboundRequest | None,
    body: str,
    state: str = WebhookState.PENDING,
    available_at: dt.datetime | None = None,
    key: str | None = None,
    error: str = "",
) -> None:
    """One INSERT (a repeat of the same body for the same session is ignored)."""
    now = timezone.now()
    _insert(
        organization_id=session.organization_id,
        session_id=session.pk,
        provider=session.provider,
        headers={h: request.headers[h] for h in KEPT_HEADERS if request and h in request.headers},
        suffix=(request.suffix if request else "")[:100],
        body=body,
        dedupe_key=key or dedupe_key(body.encode() if request is None else request.body),
        state=state,
        attempts=0,
        error=error,
        received_at=now,
        available_at=available_at or now,
    )
    if state == WebhookState.PENDING:
        transaction.on_commit(kick)


def _insert(**values: Any) -> None:
    """``INSERT … ON CONFLICT DO NOTHING`` of one row, as one statement: no transaction of its
    own (``bulk_create`` wraps one around it, two more round trips) and no ORM compilation (a
    third of the receiver's time)."""
    fields = [WebhookEvent._meta.get_field(name) for name in values]
    ops = connection.ops
    sql = "{} {} ({}) VALUES ({}) {}".format(
        ops.insert_statement(on_conflict=OnConflict.IGNORE),
        ops.quote_name(WebhookEvent._meta.db_table),
        ", ".join(ops.quote_name(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
        ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None),
    )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def enqueue(*, session: WhatsAppSession, payload: dict, delay: float = 0.0) -> None:
    """Put a payload Parley produced itself (the simulator's) in the queue, ``delay`` seconds
    from now. Each is unique, so nothing is deduplicated away."""
    import secrets

    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    available = timezone.now() + dt.timedelta(seconds=delay) if delay else None
    store(
        session=session,
        request=None,
        body=body,
        available_at=available,
        key=hashlib.sha256(body.encode() + secrets.token_bytes(16)).hexdigest(),
    )
    if delay:  # due later than the kick's drain: one more drain when it is due
        transaction.on_commit(lambda: kick.at(delay))


CLAIM = 500  # rows one drain transaction claims at most


def drain(*, limit: int = BATCH, now: dt.datetime | None = None) -> int:
    """Apply up to ``limit`` due pending rows, oldest first, ``CLAIM`` at a time, each claim one
    transaction. Returns how many rows were handled.

    A claim takes the drain lock of each session it claims rows of (``_claim``), so several
    drainers work at once on different sessions and never on one session together: a session's
    rows are applied in the order received, and two drainers never write the same chats (no
    deadlock between them). A claim's rows are applied as a batch (``_apply_batch``) and what it
    announces goes out merged when it commits (``crm.events.coalesced``): one live frame per
    organization per claim, not one per message."""
    handled = 0
    while handled < limit:
        with bus.coalesced(), transaction.atomic():
            rows = _claim(min(CLAIM, limit - handled), now or timezone.now())
            if not rows:
                break
            touched = _apply_batch(rows)
            _save(rows)
            if touched:  # one write for the batch, not one per message
                WhatsAppSession.objects.filter(pk__in=sorted(touched)).update(
                    last_seen_at=timezone.now()
                )
        handled += len(rows)
    return handled


def _claim(limit: int, now: dt.datetime) -> list[WebhookEvent]:
    """Up to ``limit`` due pending rows, locked (``FOR UPDATE SKIP LOCKED``), of sessions whose
    drain lock this transaction holds (PostgreSQL: ``pg_try_advisory_xact_lock``; a session
    another drainer holds is skipped, its rows left to that drainer). Sessions are locked
    before their rows are read, so a drainer never takes a session's later rows while another
    applies its earlier ones. SQLite has one writer and needs no lock."""
    pending = WebhookEvent.objects.filter(state=WebhookState.PENDING, available_at__lte=now)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(WebhookEvent._meta.db_table)
        with connection.cursor() as cursor:
            # The sessions of the oldest ``limit`` due rows (an ordered scan of the pending
            # index, never the whole backlog), oldest first, locked while their rows fit.
            cursor.execute(
                f"WITH head AS (SELECT session_id, available_at FROM {table} "  # noqa: S608 - the name from the model
                "WHERE state = %s AND available_at <= %s ORDER BY available_at, id LIMIT %s), "
                "due AS (SELECT session_id, count(*) AS n, min(available_at) AS oldest "
                "FROM head GROUP BY session_id), "
                "ranked AS (SELECT session_id, coalesce(sum(n) OVER (ORDER BY oldest, session_id "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before FROM due) "
                "SELECT session_id FROM ranked WHERE CASE WHEN before < %s THEN "
                "pg_try_advisory_xact_lock(hashtextextended("
                "'parley.drain:' || coalesce(session_id, 0)::text, 0)) ELSE false END",
                [WebhookState.PENDING, now, limit, limit],
            )
            sessions = [row[0] for row in cursor.fetchall()]
        if not sessions:
            return []
        mine = Q(session_id__in=[s for s in sessions if s is not None])
        if None in sessions:
            mine |= Q(session__isnull=True)
        pending = pending.filter(mine)
    # Locked by id first (a narrow sort, whatever the backlog), then read whole.
    ids = list(
        pending.select_for_update(skip_locked=True)
        .order_by("available_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    rows = list(WebhookEvent.objects.filter(pk__in=ids).order_by("available_at", "id"))
    sessions = WhatsAppSession.objects.in_bulk({row.session_id for row in rows} - {None})
    for row in rows:  # each session read once, not joined to every row
        row.session = sessions.get(row.session_id)
    return rows


def _save(rows: list[WebhookEvent]) -> None:
    """The rows' new state, in one statement on PostgreSQL (``bulk_update``'s CASE costs a
    tenth of a millisecond per row and field)."""
    if connection.vendor != "postgresql":
        WebhookEvent.objects.bulk_update(rows, UPDATED, batch_size=100)
        return
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} w SET state = v.state, attempts = v.attempts, error = v.error, "  # noqa: S608 - the name from the model
            "processed_at = v.processed_at, available_at = v.available_at "
            "FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::text[], %s::timestamptz[], "
            "%s::timestamptz[]) AS v(id, state, attempts, error, processed_at, available_at) "
            "WHERE w.id = v.id",
            [
                [r.pk for r in rows],
                [r.state for r in rows],
                [r.attempts for r in rows],
                [r.error for r in rows],
                [r.processed_at for r in rows],
                [r.available_at for r in rows],
            ],
        )


def next_due_in() -> float | None:
    """Seconds until the earliest held-back pending row is due (None: nothing waits)."""
    earliest = (
        WebhookEvent.objects.filter(state=WebhookState.PENDING)
        .order_by("available_at")
        .values_list("available_at", flat=True)
        .first()
    )
    if earliest is None:
        return None
    return max(0.0, (earliest - timezone.now()).total_seconds())


class _Translators:
    """A batch's providers by session: each built (credentials decrypted) once per batch."""

    def __init__(self) -> None:
        self.built: dict[int, Any] = {}

    def of(self, session: WhatsAppSession):
        from sessions_app.services import provider_for

        provider = self.built.get(session.pk)
        if provider is None:
            try:
                provider = provider_for(session)
            except Exception as exc:
                provider = exc  # tried once per batch, not once per row; said once too
                logger.error("session %s: its provider cannot be built: %r", session.pk, exc)
            self.built[session.pk] = provider
        if isinstance(provider, Exception):
            raise provider
        return provider


MAX_ATTEMPTS = 8  # a subscriber that keeps failing on a row: 1 s, 2 s, 4 s … then ``failed``


def _apply_batch(rows: list[WebhookEvent]) -> set[int]:
    """Translate each row; deliver each session's message events in one call (one savepoint per
    session). Should that fail, its rows are tried one at a time (``_apply_events``), so one bad
    row fails alone. Rows with session events (QR codes, connection changes; rare) go one at a
    time. Returns the sessions that had events to deliver."""
    translators = _Translators()
    touched: set[int] = set()
    together: dict[int, list[tuple[WebhookEvent, list]]] = {}
    for row in rows:
        events = _translated(row, translators)
        if events is None:
            continue
        if any(isinstance(e, ev.SESSION_EVENTS) for e in events) or not bus.subscribers(TOPIC):
            _apply_events(row, events, touched)
        else:
            together.setdefault(row.session_id, []).append((row, events))
    for items in together.values():
        session = items[0][0].session
        touched.add(session.pk)
        try:
            with transaction.atomic():
                bus.deliver(
                    TOPIC,
                    organization_id=session.organization_id,
                    session_id=session.pk,
                    webhook_event_ids=[row.pk for row, _events in items],
                    events=[e for _row, events in items for e in events],
                )
        except Exception:
            logger.warning(
                "a batch of %s webhooks of session %s failed; applying them one at a time",
                len(items),
                session.pk,
                exc_info=True,
            )
            for row, events in items:
                _apply_events(row, events, touched)
            continue
        for row, _events in items:
            row.state, row.error = WebhookState.DONE, ""
    return touched


def _translated(row: WebhookEvent, translators: _Translators) -> list | None:
    """The row's events, or None when there is nothing to apply (its state then says why)."""
    row.attempts += 1
    row.processed_at = timezone.now()
    session = row.session
    if session is None:
        row.state, row.error = WebhookState.IGNORED, "no session"
        return None
    try:
        provider = translators.of(session)
    except Exception as exc:  # the install's fault (a secret key gone), not the row's: kept
        row.attempts -= 1
        row.available_at = timezone.now() + dt.timedelta(seconds=60)
        row.error = f"the session's provider cannot be built: {type(exc).__name__}: {exc}"[:1000]
        return None
    try:
        payload = json.loads(row.body)
        events = provider.translate(payload, suffix=row.suffix)
    except Exception as exc:  # whatever a payload makes a translator raise: this row only
        row.state, row.error = WebhookState.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        logger.warning("webhook %s could not be translated: %s", row.pk, row.error)
        return None
    if not events:
        row.state = WebhookState.IGNORED
        return None
    return events


def _apply(
    row: WebhookEvent, translators: _Translators, touched: set[int], *, replay: bool = False
) -> None:
    """Translate one row and apply it alone (``_apply_events``)."""
    events = _translated(row, translators)
    if events is not None:
        _apply_events(row, events, touched, replay=replay)


def _apply_events(
    row: WebhookEvent, events: list, touched: set[int], *, replay: bool = False
) -> None:
    """Apply one row's session events (not on ``replay``: they were applied when it was first
    drained) and deliver the rest. A subscriber's failure rolls back this row's work only, and
    the row is tried again later, then marked failed."""
    from sessions_app.services import apply_session_events

    session = row.session
    session_events = [e for e in events if isinstance(e, ev.SESSION_EVENTS)]
    others = [e for e in events if not isinstance(e, ev.SESSION_EVENTS)]
    try:
        with transaction.atomic():  # a savepoint: one bad row does not undo the batch
            if session_events and not replay:
                apply_session_events(session, session_events)
            if others:
                touched.add(session.pk)
                if not bus.subscribers(TOPIC):
                    row.state = WebhookState.WAITING
                    return
                bus.deliver(
                    TOPIC,
                    organization_id=session.organization_id,
                    session_id=session.pk,
                    webhook_event_ids=[row.pk],
                    events=others,
                )
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"[:1000]
        if row.attempts >= MAX_ATTEMPTS:
            row.state = WebhookState.FAILED
            logger.exception("webhook %s failed %s times; giving up", row.pk, row.attempts)
        else:
            row.state = WebhookState.PENDING
            row.available_at = timezone.now() + dt.timedelta(seconds=2 ** (row.attempts - 1))
            logger.warning("webhook %s failed; retrying: %s", row.pk, row.error, exc_info=True)
        return
    row.state, row.error = WebhookState.DONE, ""


def replay_waiting(*, limit: int = BATCH) -> int:
    """Deliver what was recorded while nobody subscribed (its session events were applied then),
    oldest first; call once a subscriber exists. Returns how many rows were handled."""
    if not bus.subscribers(TOPIC):
        return 0
    with transaction.atomic():
        rows = list(
            WebhookEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=WebhookState.WAITING)
            .select_related("session")
            .order_by("id")[:limit]
        )
        translators = _Translators()
        for row in rows:
            _apply(row, translators, set(), replay=True)
        WebhookEvent.objects.bulk_update(rows, UPDATED, batch_size=100)
    return len(rows)


def forget(*, organization_id: int, needles: list[str]) -> int:
    """Delete the applied webhook rows of an organization whose body mentions any of ``needles``
    (a person being erased: their numbers and ids). Rows not applied yet are kept: they still
    have work to do, and what they hold is erased with it when the person's contact is gone.
    Returns how many rows went."""
    needles = [n for n in needles if n and len(n) >= 5]  # never a short, common fragment
    if not needles:
        return 0
    from django.db.models import Q

    mentions = Q()
    for needle in needles:
        mentions |= Q(body__contains=needle)
    return (
        WebhookEvent.objects.filter(organization_id=organization_id)
        .exclude(state=WebhookState.PENDING)
        .filter(mentions)
        .delete()[0]
    )
