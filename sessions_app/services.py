"""Every write path of a WhatsApp session: create, credentials, the truthful state machine, and
the actions that call a provider (connect, pairing code, disconnect, logout, check, send).

The state machine: ``disconnected`` → ``qr`` (QR + expiry, or a pairing code) → ``connecting`` →
``ready`` (phone number and JID captured) → ``disconnected`` / ``logged_out`` / ``failed``, each
with a reason. ``TRANSITIONS`` lists what may follow what; anything else is refused. Every
transition is a SessionEvent and a push to the session's sockets, after commit. A transient
disconnect schedules a reconnect with capped backoff (``reconnect_due`` runs them); ``logged_out``
(401, ban, revoked token) stops retrying, keeps every message and contact, and asks for pairing
again: the organization's admins get an email and the dashboard shows a banner.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Organization, User
from accounts.services import audit_record
from accounts.tenancy import scoped
from crm import crypto
from crm.errors import ApplicationError, Conflict
from crm.live import push
from sessions_app import providers
from sessions_app.actions import Action, ensure_allowed
from sessions_app.models import SessionEvent, SessionStatus, WhatsAppSession
from sessions_app.providers import events as ev
from sessions_app.providers.base import (
    NotAuthorized,
    OutgoingMessage,
    Pairing,
    Provider,
    ProviderError,
    Sent,
    SessionConfig,
    Unsupported,
)

logger = logging.getLogger(__name__)

S = SessionStatus
TRANSITIONS: dict[str, set[str]] = {
    S.DISCONNECTED: {S.QR, S.CONNECTING, S.READY, S.FAILED, S.LOGGED_OUT},
    S.QR: {S.QR, S.CONNECTING, S.READY, S.DISCONNECTED, S.FAILED, S.LOGGED_OUT},
    S.CONNECTING: {S.QR, S.READY, S.DISCONNECTED, S.FAILED, S.LOGGED_OUT},
    S.READY: {S.CONNECTING, S.DISCONNECTED, S.FAILED, S.LOGGED_OUT},
    S.LOGGED_OUT: {S.QR, S.CONNECTING, S.READY, S.DISCONNECTED},
    S.FAILED: {S.QR, S.CONNECTING, S.READY, S.DISCONNECTED, S.LOGGED_OUT},
}
RECONNECT_BASE_SECONDS = 5
RECONNECT_MAX_SECONDS = 600
QR_MAX_ROTATIONS = 6  # about two minutes of codes nobody scanned, then stop


class ProviderFailed(ApplicationError):
    """The provider refused or could not do what was asked (its reason is the message)."""

    status = 502
    code = "provider_error"


def session_group(session: WhatsAppSession) -> str:
    return session_group_name(session.pk)


def session_group_name(session_id: int) -> str:
    return f"session-{session_id}"


# --- Credentials ---------------------------------------------------------------------------------


def credentials_of(session: WhatsAppSession) -> dict[str, str]:
    if not session.credentials_encrypted:
        return {}
    return json.loads(crypto.decrypt(session.credentials_encrypted))


def webhook_secret_of(session: WhatsAppSession) -> str:
    if not session.webhook_secret_encrypted:
        return ""
    return crypto.decrypt(session.webhook_secret_encrypted)


def _set_credentials(session: WhatsAppSession, credentials: Mapping[str, Any]) -> None:
    provider = providers.get(session.provider)
    known = {f.name for f in provider.credential_fields}
    unknown = sorted(set(credentials) - known)
    if unknown:
        raise ApplicationError(
            _("Unknown credentials."),
            fields={f"credentials.{k}": [_("Not a credential of this provider.")] for k in unknown},
        )
    clean = {k: str(v).strip() for k, v in credentials.items() if v is not None}
    errors = provider.check_credentials(clean)
    if errors:
        raise ApplicationError(
            _("Check the credentials."),
            fields={f"credentials.{k}": [message] for k, message in errors.items()},
        )
    session.credentials_encrypted = crypto.encrypt(json.dumps(clean)) if clean else ""
    session.external_id = clean.get("phone_number_id", "")[:64]


def webhook_url(session: WhatsAppSession) -> str:
    path = reverse(
        "sessions_app:webhook", kwargs={"provider": session.provider, "session_uuid": session.uuid}
    )
    return settings.SITE_URL.rstrip("/") + path


def provider_for(session: WhatsAppSession) -> Provider:
    """The session's provider, built with its decrypted credentials (never logged)."""
    cls = providers.get(session.provider)
    credentials = credentials_of(session)
    config = SessionConfig(
        session_id=str(session.uuid),
        credentials=credentials,
        settings=dict(session.settings or {}),
        webhook_url=webhook_url(session),
        webhook_secret=webhook_secret_of(session),
        phone_number=session.phone_number,
    )
    base_urls = getattr(settings, "PARLEY_PROVIDER_URLS", {})
    base_url = base_urls.get(session.provider) or credentials.get("server_url", "")
    return cls(config, base_url=base_url, timeout=float(settings.PARLEY_PROVIDER_TIMEOUT))


# --- Create, update, delete ----------------------------------------------------------------------


def _clean_name(name: Any) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise ApplicationError(_("A session needs a name."), fields={"name": [_("Required.")]})
    if len(name) > 80:
        raise ApplicationError(
            _("That name is too long."), fields={"name": [_("At most 80 characters.")]}
        )
    return name


# A session's pacing settings (README "Conversations") and their bounds: (least, most, whole
# numbers only). Past these a value is a typo, not a pace (messaging/ratelimit.py ignores it).
PACING_LIMITS: dict[str, tuple[float, float, bool]] = {
    "messages_per_minute": (0.1, 10_000, False),
    "messages_burst": (1, 10_000, True),
    "jitter_seconds": (0, 600, False),
}


def _clean_settings(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApplicationError(_("Settings must be an object."), fields={"settings": ["object"]})
    clean = {}
    for key, (least, most, whole) in PACING_LIMITS.items():
        if key in value and value[key] is not None:
            number = value[key]
            if (
                not isinstance(number, int | float)
                or isinstance(number, bool)
                or not least <= number <= most
                or (whole and not float(number).is_integer())
            ):
                kind = _("A whole number") if whole else _("A number")
                raise ApplicationError(
                    _("That pacing is out of range."),
                    fields={
                        f"settings.{key}": [
                            _("%(kind)s from %(least)s to %(most)s.")
                            % {"kind": kind, "least": least, "most": f"{most:,}"}
                        ]
                    },
                )
            clean[key] = int(number) if whole else number
    return clean


@transaction.atomic
def session_create(
    *, organization: Organization, actor: User | None, data: Mapping[str, Any]
) -> WhatsAppSession:
    provider = str(data.get("provider") or "")
    if provider not in providers.names():
        raise ApplicationError(
            _("Unknown provider."),
            fields={"provider": [_("One of: %(p)s.") % {"p": ", ".join(providers.names())}]},
        )
    session = WhatsAppSession(
        organization=organization,
        name=_clean_name(data.get("name")),
        provider=provider,
        colour=_clean_colour(data.get("colour")),
        settings=_clean_settings(data.get("settings")),
    )
    session.default_assignee = _assignee(organization, data.get("default_assignee"))
    _set_credentials(session, data.get("credentials") or {})
    session.webhook_secret_encrypted = crypto.encrypt(secrets.token_urlsafe(32))
    try:
        with transaction.atomic():
            session.save()
    except IntegrityError:
        raise ApplicationError(
            _("A session with that name exists."), fields={"name": [_("Already taken.")]}
        ) from None
    audit_record(
        organization=organization,
        action="session.created",
        actor=actor,
        target=session,
        data={"provider": provider},
    )
    return session


def _clean_colour(value: Any) -> str:
    colour = str(value or "#0f766e").strip()
    if len(colour) != 7 or not colour.startswith("#"):
        raise ApplicationError(_("Colour must look like #0f766e."), fields={"colour": ["#rrggbb"]})
    try:
        int(colour[1:], 16)
    except ValueError:
        raise ApplicationError(
            _("Colour must look like #0f766e."), fields={"colour": ["#rrggbb"]}
        ) from None
    return colour.lower()


def _assignee(organization: Organization, value: Any) -> User | None:
    if value in (None, ""):
        return None
    try:
        user_id = int(value)
    except (TypeError, ValueError):
        user_id = None
    membership = (
        scoped(Membership, organization)
        .filter(user_id=user_id, is_active=True)
        .select_related("user")
        .first()
        if user_id
        else None
    )
    if membership is None:
        raise ApplicationError(
            _("The default assignee must be a member."),
            fields={"default_assignee": [_("Not a member of this organization.")]},
        )
    return membership.user


@transaction.atomic
def session_update(
    *,
    organization: Organization,
    session: WhatsAppSession,
    actor: User | None,
    data: Mapping[str, Any],
) -> WhatsAppSession:
    """Change what ``data`` names. ``credentials`` given are merged into the stored ones (a
    secret left out keeps its value: the form never shows them)."""
    session = scoped(WhatsAppSession, organization).select_for_update().get(pk=session.pk)
    if "name" in data:
        session.name = _clean_name(data["name"])
    if "colour" in data:
        session.colour = _clean_colour(data["colour"])
    if "settings" in data:
        session.settings = {
            **{k: v for k, v in session.settings.items() if k.startswith("simulator_")},
            **_clean_settings(data["settings"]),
        }
    if "default_assignee" in data:
        session.default_assignee = _assignee(organization, data["default_assignee"])
    if "credentials" in data:
        given = {k: v for k, v in (data["credentials"] or {}).items() if v not in (None, "")}
        _set_credentials(session, {**credentials_of(session), **given})
    try:
        with transaction.atomic():
            session.save()
    except IntegrityError:
        raise ApplicationError(
            _("A session with that name exists."), fields={"name": [_("Already taken.")]}
        ) from None
    audit_record(organization=organization, action="session.updated", actor=actor, target=session)
    return session


@transaction.atomic
def session_delete(
    *, organization: Organization, session: WhatsAppSession, actor: User | None
) -> None:
    session = scoped(WhatsAppSession, organization).get(pk=session.pk)
    try:
        provider_for(session).logout()
    except ProviderError:
        logger.info("session %s: logout on delete failed; deleting anyway", session.pk)
    audit_record(
        organization=organization,
        action="session.deleted",
        actor=actor,
        target=session,
        data={"name": session.name},
    )
    session.delete()


@transaction.atomic
def webhook_secret_rotate(
    *, organization: Organization, session: WhatsAppSession, actor: User | None
) -> str:
    session = scoped(WhatsAppSession, organization).select_for_update().get(pk=session.pk)
    secret = secrets.token_urlsafe(32)
    session.webhook_secret_encrypted = crypto.encrypt(secret)
    session.save(update_fields=["webhook_secret_encrypted", "updated_at"])
    audit_record(
        organization=organization, action="session.secret_rotated", actor=actor, target=session
    )
    return secret


# --- The state machine ---------------------------------------------------------------------------


def transition(
    session: WhatsAppSession,
    to: str,
    *,
    reason: str = "",
    actor: User | None = None,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Move ``session`` (locked by the caller, in a transaction) to ``to``. A repeat of the
    current state only updates ``fields``; an illegal move raises ``Conflict``. True if moved."""
    current = session.status
    changes = dict(fields or {})
    if to == current and to != S.QR:
        for name, value in changes.items():
            setattr(session, name, value)
        if changes:
            session.save(update_fields=[*changes, "updated_at"])
            _push_status(session)
        return False
    if to not in TRANSITIONS[current]:
        raise Conflict(
            _("A session cannot go from %(a)s to %(b)s.")
            % {"a": S(current).label, "b": S(to).label},
            code="illegal_transition",
        )
    now = timezone.now()
    session.status, session.status_reason, session.status_changed_at = to, reason[:300], now
    if to != S.QR:
        changes.setdefault("qr_text", "")
        changes.setdefault("qr_image", "")
        changes.setdefault("qr_expires_at", None)
        changes.setdefault("pairing_code", "")
    if to == S.READY:
        changes.update(reconnect_attempts=0, next_reconnect_at=None, last_seen_at=now)
    if to in (S.LOGGED_OUT, S.FAILED):
        changes.update(next_reconnect_at=None)
    for name, value in changes.items():
        setattr(session, name, value)
    session.save()
    if to != current:
        SessionEvent.objects.create(
            organization_id=session.organization_id,
            session=session,
            from_status=current,
            to_status=to,
            reason=reason[:300],
            actor=actor,
            created_at=now,
        )
    _push_status(session)
    if to == S.LOGGED_OUT and current != S.LOGGED_OUT:
        transaction.on_commit(lambda: _tell_admins(session.pk))
    return True


def _push_status(session: WhatsAppSession) -> None:
    data = {
        "session": str(session.uuid),
        "status": session.status,
        "status_label": str(S(session.status).label),
        "reason": session.status_reason,
        "phone_number": session.phone_number,
        "display_name": session.display_name,
    }
    push(session_group(session), "status", data)
    push(f"org-{session.organization_id}.sessions", "status", data)


def _push_qr(session: WhatsAppSession) -> None:
    push(session_group(session), "qr", qr_data(session))


def qr_data(session: WhatsAppSession) -> dict:
    from sessions_app import qr

    image = session.qr_image or (qr.data_uri(session.qr_text) if session.qr_text else "")
    return {
        "session": str(session.uuid),
        "image": image,
        "pairing_code": session.pairing_code,
        "expires_at": session.qr_expires_at.isoformat() if session.qr_expires_at else None,
    }


def _tell_admins(session_id: int) -> None:
    """A logout or ban: email the organization's admins and owners (the banner comes from the
    status itself)."""
    session = WhatsAppSession.objects.select_related("organization").filter(pk=session_id).first()
    if session is None:
        return
    emails = list(
        scoped(Membership, session.organization)
        .filter(is_active=True, role__in=["admin", "owner"])
        .values_list("user__email", flat=True)
    )
    if not emails:
        return
    try:
        send_mail(
            subject=_("WhatsApp session “%(name)s” needs pairing again") % {"name": session.name},
            message=_(
                "The session %(name)s of %(org)s was logged out: %(reason)s\n\n"
                "Its messages and contacts are kept. Pair it again from the sessions page."
            )
            % {
                "name": session.name,
                "org": session.organization.name,
                "reason": session.status_reason or _("no reason given"),
            },
            from_email=None,
            recipient_list=emails,
        )
    except Exception:
        logger.exception("session %s: could not email the admins", session_id)


def session_locked(session: WhatsAppSession) -> WhatsAppSession:
    """The session re-read under a row lock, inside its organization (call in a transaction)."""
    return scoped(WhatsAppSession, session.organization_id).select_for_update().get(pk=session.pk)


def _fail(session: WhatsAppSession, error: ProviderError, actor: User | None) -> None:
    """Record what a provider call's error means for the session, then raise it for the user."""
    with transaction.atomic():
        locked = session_locked(session)
        if isinstance(error, NotAuthorized):
            transition(locked, S.LOGGED_OUT, reason=error.message, actor=actor)
        elif error.permanent:
            transition(locked, S.FAILED, reason=error.message, actor=actor)
        else:
            if locked.status in (S.READY, S.CONNECTING, S.QR):
                transition(locked, S.DISCONNECTED, reason=error.message, actor=actor)
            _schedule_reconnect(locked)
    raise ProviderFailed(error.message, code=error.code)


def _apply_pairing(session: WhatsAppSession, pairing: Pairing, actor: User | None) -> None:
    if pairing.state == S.READY:
        transition(
            session,
            S.READY,
            reason=_("Connected."),
            actor=actor,
            fields=_identity(pairing),
        )
        return
    fields: dict[str, Any] = {}
    if pairing.qr or pairing.qr_image:
        fields.update(
            qr_text=pairing.qr,
            qr_image=pairing.qr_image,
            qr_expires_at=timezone.now() + dt.timedelta(seconds=pairing.expires_in or 20),
            qr_rotations=0,
        )
    if pairing.pairing_code:
        fields.update(pairing_code=pairing.pairing_code)
    state = pairing.state if pairing.state in TRANSITIONS else S.QR
    transition(session, state, reason=_("Waiting for the phone."), actor=actor, fields=fields)
    if fields:
        _push_qr(session)


def _identity(source: Any) -> dict[str, Any]:
    fields = {}
    phone = getattr(source, "phone_number", None)
    if phone:
        fields["phone_number"] = "".join(ch for ch in str(phone) if ch.isdigit())[:20]
    if getattr(source, "jid", None):
        fields["jid"] = str(source.jid)[:128]
    if getattr(source, "name", ""):
        fields["display_name"] = str(source.name)[:200]
    return fields


# --- Actions -------------------------------------------------------------------------------------


def _e164(raw: str, country: str) -> str:
    """The phone to pair, as E.164 digits (read in the organization's country without one)."""
    try:
        number = phonenumbers.parse(str(raw or ""), None if str(raw).startswith("+") else country)
        if phonenumbers.is_possible_number(number):
            return f"{number.country_code}{number.national_number}"
    except phonenumbers.NumberParseException:
        pass
    message = _("Enter the phone number of the WhatsApp account, with its country code.")
    raise ApplicationError(message, fields={"phone_number": [message]})


def session_connect(
    *, organization: Organization, session: WhatsAppSession, actor: User | None
) -> WhatsAppSession:
    """Start pairing (a QR code to scan) or, for an API provider, check the credentials. A
    person asks for it only in a state that allows it (``actions``)."""
    session = scoped(WhatsAppSession, organization).get(pk=session.pk)
    ensure_allowed(session, Action.CONNECT)
    return _connect(session, actor)


def _connect(session: WhatsAppSession, actor: User | None) -> WhatsAppSession:
    try:
        pairing = provider_for(session).connect()
    except ProviderError as error:
        _fail(session, error, actor)
    with transaction.atomic():
        session = session_locked(session)
        _apply_pairing(session, pairing, actor)
    return session


def session_pairing_code(
    *,
    organization: Organization,
    session: WhatsAppSession,
    actor: User | None,
    phone_number: str,
) -> WhatsAppSession:
    session = scoped(WhatsAppSession, organization).get(pk=session.pk)
    ensure_allowed(session, Action.PAIRING_CODE)
    phone = _e164(phone_number, organization.default_country)
    try:
        pairing = provider_for(session).pairing_code(phone)
    except ProviderError as error:
        if error.code == "unsupported":
            raise ApplicationError(error.message, code=error.code) from None
        _fail(session, error, actor)
    with transaction.atomic():
        session = session_locked(session)
        _apply_pairing(session, pairing, actor)
    return session


def session_disconnect(
    *, organization: Organization, session: WhatsAppSession, actor: User | None
) -> WhatsAppSession:
    session = scoped(WhatsAppSession, organization).get(pk=session.pk)
    ensure_allowed(session, Action.DISCONNECT)
    try:
        provider_for(session).disconnect()
    except ProviderError as error:
        logger.info("session %s: disconnect failed at the provider: %s", session.pk, error.code)
    with transaction.atomic():
        session = session_locked(session)
        transition(
            session,
            S.DISCONNECTED,
            reason=_("Disconnected by %(who)s.") % {"who": actor or _("the system")},
            actor=actor,
            fields={"next_reconnect_at": None, "reconnect_attempts": 0},
        )
    return session


def session_logout(
    *, organization: Organization, session: WhatsAppSession, actor: User | None
) -> WhatsAppSession:
    session = scoped(WhatsAppSession, organization).get(pk=session.pk)
    ensure_allowed(session, Action.LOGOUT)
    try:
        provider_for(session).logout()
    except ProviderError as error:
        if error.code != "unsupported":
            raise ProviderFailed(error.message, code=error.code) from None
    with transaction.atomic():
        session = session_locked(session)
        transition(
            session,
            S.LOGGED_OUT,
            reason=_("Logged out by %(who)s.") % {"who": actor or _("the system")},
            actor=actor,
        )
    return session


def session_check(*, session: WhatsAppSession) -> WhatsAppSession:
    """Ask the provider how the session really is and correct a status that lies."""
    provider = provider_for(session)
    try:
        status = provider.status()
    except NotAuthorized as error:
        with transaction.atomic():
            locked = session_locked(session)
            if locked.status != S.LOGGED_OUT:
                transition(locked, S.LOGGED_OUT, reason=error.message)
        return locked
    except ProviderError as error:
        logger.info("session %s: status check failed: %s", session.pk, error.code)
        return session
    if not status.state:
        return session
    with transaction.atomic():
        locked = session_locked(session)
        if status.state != locked.status and status.state in TRANSITIONS[locked.status]:
            transition(
                locked,
                status.state,
                reason=status.reason or _("Corrected after checking with the provider."),
                fields=_identity(status) if status.state == S.READY else None,
            )
        elif status.state == S.READY:
            locked.last_seen_at = timezone.now()
            locked.save(update_fields=["last_seen_at", "updated_at"])
    return locked


def session_send(*, session: WhatsAppSession, message: OutgoingMessage) -> Sent:
    """Send through the session's provider (messaging's send path calls this). Provider errors
    propagate for the caller to classify; a NotAuthorized also logs the session out."""
    provider = provider_for(session)
    try:
        sent = provider.send(message)
    except NotAuthorized as error:
        with transaction.atomic():
            locked = session_locked(session)
            if locked.status != S.LOGGED_OUT:
                transition(locked, S.LOGGED_OUT, reason=error.message)
        raise
    followups = getattr(provider, "after_send", None)
    if followups is not None:
        from sessions_app.queue import enqueue

        for delay, payload in followups(sent, message):
            enqueue(session=session, payload=payload, delay=delay)
    return sent


def session_mark_read(
    *, session: WhatsAppSession, chat_jid: str, provider_message_ids: list[str]
) -> bool:
    """Blue ticks for these incoming messages, where the provider can send them (False where it
    cannot). Errors propagate like ``session_send``'s."""
    try:
        provider_for(session).mark_read(chat_jid, provider_message_ids)
    except Unsupported:
        return False
    return True


# --- Applying what providers say -----------------------------------------------------------------


def apply_session_events(session: WhatsAppSession, events: list[ev.Event]) -> None:
    """QR codes, pairing codes and connection changes from the queue (the caller holds a
    transaction). A change the state machine refuses is logged and skipped: a provider's late or
    repeated event never corrupts the status."""
    locked = session_locked(session)
    for event in events:
        try:
            if isinstance(event, ev.QrUpdated):
                _apply_qr(locked, event)
            elif isinstance(event, ev.PairingCodeIssued):
                locked.pairing_code = event.code[:16]
                locked.save(update_fields=["pairing_code", "updated_at"])
                _push_qr(locked)
            elif isinstance(event, ev.ConnectionChanged):
                _apply_connection(locked, event)
        except Conflict:
            logger.info("session %s: ignored %s in state %s", locked.pk, event.kind, locked.status)


def _apply_qr(session: WhatsAppSession, event: ev.QrUpdated) -> None:
    if session.status not in (S.QR, S.CONNECTING, S.DISCONNECTED, S.FAILED, S.LOGGED_OUT):
        return  # a QR after the phone connected is stale
    expires = event.expires_at or timezone.now() + dt.timedelta(seconds=20)
    rotations = session.qr_rotations + 1 if session.status == S.QR else 0
    transition(
        session,
        S.QR,
        reason=_("Waiting for the phone."),
        fields={
            "qr_text": event.qr,
            "qr_image": event.image,
            "qr_expires_at": expires,
            "qr_rotations": rotations,
        },
    )
    _push_qr(session)


def _apply_connection(session: WhatsAppSession, event: ev.ConnectionChanged) -> None:
    state = event.state
    if state not in TRANSITIONS:
        return
    if state == S.READY:
        transition(
            session, S.READY, reason=event.reason or _("Connected."), fields=_identity(event)
        )
    elif state == S.DISCONNECTED:
        if session.status == S.LOGGED_OUT:
            return
        transition(session, S.DISCONNECTED, reason=event.reason or _("Connection lost."))
        _schedule_reconnect(session)
    else:
        transition(session, state, reason=event.reason)


def _schedule_reconnect(session: WhatsAppSession) -> None:
    attempts = session.reconnect_attempts + 1
    delay = min(RECONNECT_MAX_SECONDS, RECONNECT_BASE_SECONDS * 2 ** (attempts - 1))
    session.reconnect_attempts = attempts
    session.next_reconnect_at = timezone.now() + dt.timedelta(seconds=delay)
    session.save(update_fields=["reconnect_attempts", "next_reconnect_at", "updated_at"])


def reconnect_due(now: dt.datetime | None = None) -> int:
    """Beat: reconnect sessions whose backoff has passed (each attempt schedules the next)."""
    now = now or timezone.now()
    due = list(
        WhatsAppSession.objects.filter(next_reconnect_at__lte=now)
        .exclude(status__in=[S.LOGGED_OUT, S.READY])
        .select_related("organization")[:100]
    )
    for session in due:
        with transaction.atomic():
            claimed = WhatsAppSession.objects.filter(
                pk=session.pk, next_reconnect_at=session.next_reconnect_at
            ).update(next_reconnect_at=None)
        if not claimed:
            continue
        try:
            _connect(session, None)  # the system's retry, not a person's click: no table
        except ApplicationError as error:
            logger.info("session %s: reconnect failed: %s", session.pk, error.code)
    return len(due)


def qr_expire(now: dt.datetime | None = None) -> int:
    """Beat: a QR nobody scanned. The simulator rotates it like WhatsApp does (a real gateway
    sends its own); after ``QR_MAX_ROTATIONS`` codes, or a minute past the last code's expiry
    without a new one, the session stops waiting and says why."""
    from sessions_app.simulation import rotate_qr

    now = now or timezone.now()
    stale = WhatsAppSession.objects.filter(status=S.QR, qr_expires_at__lte=now)
    count = 0
    for session in stale[:200]:
        with transaction.atomic():
            locked = session_locked(session)
            if locked.status != S.QR or not locked.qr_expires_at or locked.qr_expires_at > now:
                continue
            if locked.qr_rotations + 1 >= QR_MAX_ROTATIONS or (
                locked.provider != "simulator"
                and locked.qr_expires_at + dt.timedelta(seconds=60) <= now
            ):
                transition(locked, S.DISCONNECTED, reason=_("Nobody scanned the QR code; stopped."))
            elif locked.provider == "simulator":
                rotate_qr(locked)
            count += 1
    return count


def sessions_check_all() -> int:
    """Beat: check every connected session against its provider."""
    count = 0
    for session in WhatsAppSession.objects.filter(status__in=[S.READY, S.CONNECTING])[:500]:
        session_check(session=session)
        count += 1
    return count
