"""The inbound queue: verified webhooks stored first, applied by a drainer.

``receive`` (called by the webhook views) verifies in constant time, then does one INSERT and
answers: a forged or tampered request stores nothing but a counter (401); a repeated delivery is
the same row (its body hash is unique per session) and changes nothing; a body that is not JSON is
kept for inspection (400). After the insert a debounced kick asks a worker to drain.

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
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.constants import OnConflict
from django.utils import timezone

from crm import events as bus
from crm.text import TooDeep, json_parsed
from sessions_app.models import WebhookEvent, WebhookState, WhatsAppSession
from sessions_app.providers import events as ev
from sessions_app.providers.base import Forged, InboundRequest, ProviderError

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


class _Kicker:
    """Ask a worker to drain: at once, unless this process asked within the last ``interval``;
    then once more when that interval ends (one delayed drain per interval at most), so a row
    inserted just after a drain started waits at most ``interval`` for the next one, never for
    the beat's sweep. However many webhooks arrive, the broker sees at most two drains per
    interval from each process (20 a second). Kept in the process (a shared key in Redis cost a
    round trip per webhook, a fifth of the receiver's time).

    A tenth of a second: with a whole second, a steady stream of messages was drained about once
    a second in batches, and a message took up to a second to reach an open inbox
    (``bench/inbox_latency.py``: p95 0.8-1.0 s; with 0.1 s, 80-150 ms)."""

    interval = 0.1  # seconds

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last = -1e9  # monotonic time of the last immediate drain asked for
        self.later = -1e9  # when the pending delayed drain runs

    def __call__(self) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last >= self.interval:
                self.last, countdown = now, None
            elif self.later <= now:
                self.later = self.last + self.interval  # the end of this interval
                countdown = self.later - now
            else:
                return
        self._ask(countdown)

    def at(self, seconds: float) -> None:
        """A drain ``seconds`` from now (for a row stored to become due then)."""
        self._ask(seconds + 0.05)

    def _ask(self, countdown: float | None) -> None:
        from sessions_app.tasks import drain_webhooks

        try:
            if countdown is None:
                drain_webhooks.delay()
            else:
                drain_webhooks.apply_async(countdown=countdown)
        except Exception:  # the broker is down: the beat sweep drains instead
            logger.warning("could not ask for a drain; the sweep will", exc_info=True)


kick = _Kicker()


def drain(*, limit: int = BATCH, now: dt.datetime | None = None) -> int:
    """Apply up to ``limit`` due pending rows, oldest first. Returns how many were handled."""
    handled = 0
    while handled < limit:
        with transaction.atomic():
            rows = list(
                WebhookEvent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(state=WebhookState.PENDING, available_at__lte=now or timezone.now())
                .select_related("session")
                .order_by("available_at", "id")[: min(50, limit - handled)]
            )
            if not rows:
                break
            translators = _Translators()
            touched: set[int] = set()
            for row in rows:
                _apply(row, translators, touched)
            WebhookEvent.objects.bulk_update(rows, UPDATED, batch_size=100)
            if touched:  # one write for the batch, not one per message
                WhatsAppSession.objects.filter(pk__in=touched).update(last_seen_at=timezone.now())
        handled += len(rows)
    return handled


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
            self.built[session.pk] = provider = provider_for(session)
        return provider


MAX_ATTEMPTS = 8  # a subscriber that keeps failing on a row: 1 s, 2 s, 4 s … then ``failed``


def _apply(
    row: WebhookEvent, translators: _Translators, touched: set[int], *, replay: bool = False
) -> None:
    """Translate one row, apply its session events (not on ``replay``: they were applied when it
    was first drained) and deliver the rest. A subscriber's failure rolls back this row's work
    only, and the row is tried again later, then marked failed."""
    from sessions_app.services import apply_session_events

    row.attempts += 1
    row.processed_at = timezone.now()
    session = row.session
    if session is None:
        row.state, row.error = WebhookState.IGNORED, "no session"
        return
    try:
        payload = json.loads(row.body)
        events = translators.of(session).translate(payload, suffix=row.suffix)
    except (ValueError, ProviderError, KeyError, TypeError, AttributeError) as exc:
        row.state, row.error = WebhookState.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        logger.warning("webhook %s could not be translated: %s", row.pk, row.error)
        return
    if not events:
        row.state = WebhookState.IGNORED
        return
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
                    webhook_event_id=row.pk,
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
