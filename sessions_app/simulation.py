"""What the simulator's phone does, put in the inbound queue as simulator payloads.

Used by the dashboard's buttons, the API's simulator actions and the ``simulate_scan`` /
``simulate_inbound`` commands (which run outside the server: they write rows, the server's
drainer picks them up).
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.errors import ApplicationError
from sessions_app.actions import Action, ensure_allowed
from sessions_app.models import WhatsAppSession
from sessions_app.providers.simulator import (
    CONNECTION_FAULTS,
    FAULTS,
    HANGS,
    QR_SECONDS,
    simulated_phone,
)
from sessions_app.queue import enqueue
from sessions_app.services import session_locked

ALL_FAULTS = sorted(set(FAULTS) | set(CONNECTION_FAULTS) | HANGS | {"none"})
# What the dashboard offers, harmless first (the first is the default). A hang would tie up a
# worker: tests only.
FAULT_CHOICES: list[tuple[str, str]] = [
    ("rate_limited", gettext_lazy("Next send is rate limited (retried later)")),
    ("network_error", gettext_lazy("Connection lost (reconnects by itself)")),
    ("recipient_not_found", gettext_lazy("Next send: the number is not on WhatsApp")),
    ("outside_window", gettext_lazy("Next send: outside the 24-hour window")),
    ("message_too_long", gettext_lazy("Next send: the message is too long")),
    ("media_rejected", gettext_lazy("Next send: the file is refused")),
    ("none", gettext_lazy("None: clear the armed fault")),
    ("not_authorized", gettext_lazy("Not authorized: the session is logged out")),
    ("logged_out", gettext_lazy("Logged out from the phone")),
    ("banned", gettext_lazy("The number is banned")),
]
PUBLIC_FAULTS = [fault for fault, _label in FAULT_CHOICES]
# Faults that log the session out: pairing again is needed, so the dashboard asks first.
DESTRUCTIVE_FAULTS = {"not_authorized", "logged_out", "banned"}


def _simulator(session: WhatsAppSession) -> None:
    if session.provider != "simulator":
        raise ApplicationError(_("Only simulator sessions can do that."), code="not_simulator")


def rotate_qr(session: WhatsAppSession) -> None:
    from sessions_app.services import provider_for

    qr = provider_for(session).new_qr()
    enqueue(session=session, payload={"type": "qr", "qr": qr, "expires_in": QR_SECONDS})


@transaction.atomic
def simulate_scan(*, session: WhatsAppSession) -> None:
    """The phone scans the QR code: connecting, then ready a moment later."""
    _simulator(session)
    session = session_locked(session)
    ensure_allowed(session, Action.SCAN)
    phone = session.phone_number or simulated_phone(str(session.uuid))
    enqueue(session=session, payload={"type": "connection", "state": "connecting"})
    enqueue(
        session=session,
        payload={
            "type": "connection",
            "state": "ready",
            "phone": phone,
            "name": "Simulated phone",
        },
        delay=0.5,
    )


@transaction.atomic
def simulate_inbound(*, session: WhatsAppSession, phone: str, text: str, name: str = "") -> str:
    """A message from ``phone`` (E.164 digits) arrives on the session. Returns its id."""
    _simulator(session)
    digits = "".join(ch for ch in str(phone) if ch.isdigit())
    if not 7 <= len(digits) <= 15:
        raise ApplicationError(
            _("Enter the sender's phone number with its country code."),
            fields={"phone": [_("7 to 15 digits.")]},
        )
    if not str(text).strip():
        raise ApplicationError(_("The message is empty."), fields={"text": [_("Required.")]})
    message_id = "SIMIN" + secrets.token_hex(10).upper()
    enqueue(
        session=session,
        payload={
            "type": "message",
            "id": message_id,
            "from": digits,
            "name": str(name)[:100],
            "text": str(text)[:4096],
            "timestamp": timezone.now().isoformat(),
        },
    )
    return message_id


@transaction.atomic
def simulate_fault(*, session: WhatsAppSession, fault: str) -> None:
    """A connection fault (logged_out, banned, network_error) happens now; another fault is
    armed and makes the next connect or send fail. ``none`` clears an armed one."""
    _simulator(session)
    if fault not in ALL_FAULTS:
        raise ApplicationError(
            _("Unknown fault."),
            fields={"fault": [_("One of: %(f)s.") % {"f": ", ".join(ALL_FAULTS)}]},
        )
    locked = session_locked(session)
    settings = {k: v for k, v in locked.settings.items() if k != "simulator_fault"}
    if (fault in FAULTS or fault in HANGS) and fault not in CONNECTION_FAULTS:  # armed
        settings["simulator_fault"] = fault
    locked.settings = settings
    locked.save(update_fields=["settings", "updated_at"])
    if fault in CONNECTION_FAULTS:
        state, reason = CONNECTION_FAULTS[fault]
        enqueue(session=locked, payload={"type": "connection", "state": state, "reason": reason})
