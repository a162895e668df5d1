"""The simulator: a fake WhatsApp for the embedded mode, the demo and the tests.

It pairs by a QR code that rotates like WhatsApp's, "scans" on request, answers sends as a phone
would (delivered, then read a moment later) and can fail in every way a real provider fails.
Everything it says reaches Parley as simulator payloads in the same inbound queue the real
providers use, so the queue, the drainer and the state machine are exercised end to end. Like
every provider it touches no model: ``sessions_app.simulation`` puts its payloads in the queue.

Payloads (JSON objects with ``type``): ``qr`` {qr, expires_in}, ``pairing_code`` {code},
``connection`` {state, reason, phone, name}, ``message`` {id, from, name, text, timestamp,
from_me?, chat?}, ``status`` {id, status, timestamp, to?, error?}, ``reaction`` {id, from, emoji,
timestamp}. A fault armed in the session's settings (``simulator_fault``) makes the next send or
connect fail with it; ``hang_before_send`` / ``hang_after_send`` make a send hang (a stuck
network or process) before or after the phone got it. The phone remembers how many times it
received each message (``times_received``, in the cache: Redis in production and tests), so
tests can prove nothing was sent twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from typing import Any

from django.core.cache import cache

from sessions_app.providers import events as ev
from sessions_app.providers.base import (
    MAX_TEXT_LENGTH,
    Capability,
    Forged,
    InboundRequest,
    MediaRejected,
    MessageTooLong,
    NetworkError,
    NotAuthorized,
    OutgoingMessage,
    OutsideWindow,
    Pairing,
    Provider,
    RateLimited,
    RecipientNotFound,
    Sent,
    Status,
    secret_matches,
)

QR_SECONDS = 20
FAULTS = {
    "not_authorized": lambda: NotAuthorized("The simulated phone refused the session."),
    "rate_limited": lambda: RateLimited("The simulated phone is rate limited.", retry_after=30),
    "network_error": lambda: NetworkError("The simulated network is down."),
    "recipient_not_found": lambda: RecipientNotFound("That number is not on the simulator."),
    "outside_window": lambda: OutsideWindow("Over 24 hours since they wrote (simulated)."),
    "message_too_long": lambda: MessageTooLong("The simulated phone takes no text this long."),
    "media_rejected": lambda: MediaRejected("The simulated phone refused that file."),
}
# Faults that make a send hang: before the phone has the message, or after.
HANGS = {"hang_before_send", "hang_after_send"}
HANG_SECONDS = 600
RECEIVED_KEY = "simulator:received:{session}:{digest}"


def _digest(message: OutgoingMessage) -> str:
    text = "\x1f".join([message.to, message.text, message.caption, message.media_url])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def times_received(session_id: str, message: OutgoingMessage) -> int:
    """How many times the simulated phone received this message (same recipient and content)."""
    return int(cache.get(RECEIVED_KEY.format(session=session_id, digest=_digest(message))) or 0)


# Faults that end the connection (``simulation.simulate_fault`` sends them as connection events).
CONNECTION_FAULTS = {
    "logged_out": ("logged_out", "Logged out from the phone."),
    "banned": ("logged_out", "This number was banned (simulated)."),
    "network_error": ("disconnected", "Connection lost (simulated network error)."),
}


def simulated_phone(session_id: str) -> str:
    """A stable, plausible Hong Kong mobile number for a session (852 9xxx xxxx)."""
    return "8529" + str(int(session_id.replace("-", "")[:12], 16) % 10_000_000).zfill(7)


class SimulatorProvider(Provider):
    name = "simulator"
    label = "Simulator (demo)"
    capabilities = frozenset(
        {
            Capability.QR,
            Capability.PAIRING_CODE,
            Capability.MEDIA,
            Capability.GROUPS,
            Capability.READ_RECEIPTS,
            Capability.REACTIONS,
            Capability.LOGOUT,
        }
    )
    credential_fields = ()
    webhook_help = (
        "Nothing to set up: the simulated phone delivers to Parley directly. A test client may "
        "post simulator payloads to this URL with the secret in the X-Parley-Secret header."
    )

    def _fault(self) -> None:
        fault = (self.config.settings or {}).get("simulator_fault")
        if fault in FAULTS:
            raise FAULTS[fault]()

    def connect(self) -> Pairing:
        self._fault()
        return Pairing(state=ev.SessionState.QR, qr=self.new_qr(), expires_in=QR_SECONDS)

    def new_qr(self) -> str:
        # Shaped like WhatsApp's: a ref and keys, comma separated; never the same twice.
        return ",".join(
            ["2@" + secrets.token_urlsafe(24), secrets.token_urlsafe(32), self.config.session_id]
        )

    def pairing_code(self, phone_number: str) -> Pairing:
        self._fault()
        code = secrets.token_hex(4).upper()
        return Pairing(state=ev.SessionState.QR, pairing_code=f"{code[:4]}-{code[4:]}")

    def status(self) -> Status:
        # The simulator's truth is what its events said; the caller keeps it.
        return Status(state="")

    def disconnect(self) -> None:
        return None

    def logout(self) -> None:
        return None

    def send(self, message: OutgoingMessage) -> Sent:
        fault = (self.config.settings or {}).get("simulator_fault")
        if fault == "hang_before_send":
            time.sleep(HANG_SECONDS)
        self._fault()
        if len(message.text) > MAX_TEXT_LENGTH:
            raise MessageTooLong(f"Text longer than {MAX_TEXT_LENGTH} characters.")
        if not message.reaction_to:
            key = RECEIVED_KEY.format(session=self.config.session_id, digest=_digest(message))
            cache.add(key, 0, timeout=7 * 24 * 3600)
            cache.incr(key)
        if fault == "hang_after_send":
            time.sleep(HANG_SECONDS)
        return Sent(provider_message_id="SIM" + secrets.token_hex(10).upper())

    def mark_read(self, chat_jid: str, provider_message_ids: list[str]) -> None:
        return None

    def after_send(self, sent: Sent, message: OutgoingMessage) -> list[tuple[float, dict]]:
        """What the simulated phone does next: ``(delay in seconds, payload)`` pairs."""
        if message.reaction_to:
            return []
        return [
            (1.0, {"type": "status", "id": sent.provider_message_id, "status": "delivered"}),
            (3.0, {"type": "status", "id": sent.provider_message_id, "status": "read"}),
        ]

    def verify(self, request: InboundRequest) -> None:
        if not secret_matches(self.config.webhook_secret, request.headers.get("x-parley-secret")):
            raise Forged("bad simulator secret")

    def translate(self, payload: Any, *, suffix: str = "") -> list[ev.Event]:
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type")
        when = _time(payload.get("timestamp"))
        if kind == "qr":
            expires = when + dt.timedelta(seconds=float(payload.get("expires_in") or QR_SECONDS))
            return [ev.QrUpdated(qr=str(payload.get("qr", "")), expires_at=expires)]
        if kind == "pairing_code":
            return [ev.PairingCodeIssued(code=str(payload.get("code", "")))]
        if kind == "connection":
            phone = payload.get("phone") or None
            return [
                ev.ConnectionChanged(
                    state=str(payload.get("state", "")),
                    reason=str(payload.get("reason", "")),
                    phone_number=phone,
                    jid=f"{phone}@s.whatsapp.net" if phone else None,
                    name=str(payload.get("name", "")),
                )
            ]
        if kind == "message":
            sender = str(payload.get("from", ""))
            from_me = bool(payload.get("from_me"))
            chat = str(payload.get("chat") or f"{sender}@s.whatsapp.net")
            return [
                ev.MessageUpserted(
                    provider_message_id=str(payload.get("id", "")),
                    chat_jid=chat,
                    from_me=from_me,
                    timestamp=when,
                    type=ev.MessageType.TEXT,
                    sender=None
                    if from_me
                    else ev.Party(
                        phone=sender,
                        jid=f"{sender}@s.whatsapp.net",
                        name=str(payload.get("name", "")),
                    ),
                    chat_is_group=chat.endswith("@g.us"),
                    body=str(payload.get("text", "")),
                    raw=payload,
                )
            ]
        if kind == "status":
            return [
                ev.MessageStatusChanged(
                    provider_message_id=str(payload.get("id", "")),
                    status=str(payload.get("status", "")),
                    timestamp=when,
                    error_code=str(payload.get("error", "")),
                )
            ]
        if kind == "reaction":
            sender = str(payload.get("from", ""))
            return [
                ev.ReactionReceived(
                    provider_message_id=str(payload.get("id", "")),
                    chat_jid=f"{sender}@s.whatsapp.net",
                    emoji=str(payload.get("emoji", "")),
                    timestamp=when,
                    sender=ev.Party(phone=sender, jid=f"{sender}@s.whatsapp.net"),
                )
            ]
        return []


def _time(value: Any) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    return dt.datetime.now(tz=dt.UTC)


PROVIDER = SimulatorProvider
