"""What a person may do to a session in each state: the one table behind the session page's
buttons (only these show) and the API's action endpoints (anything else is a 409 saying why).

The provider narrows it further: a pairing code and a logout need the capability, and only the
simulator has a phone that scans. The system's own retries (``services.reconnect_due``) do not
go through this table: it is about what a person asks for.
"""

from __future__ import annotations

import enum

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.errors import Conflict
from sessions_app import providers
from sessions_app.models import SessionStatus, WhatsAppSession
from sessions_app.providers.base import Capability

S = SessionStatus


class Action(enum.StrEnum):
    CONNECT = "connect"
    PAIRING_CODE = "pairing_code"
    SCAN = "scan"
    DISCONNECT = "disconnect"
    LOGOUT = "logout"


A = Action
LABELS = {
    A.CONNECT: gettext_lazy("Connect"),
    A.PAIRING_CODE: gettext_lazy("Get a pairing code"),
    A.SCAN: gettext_lazy("Scan (simulated phone)"),
    A.DISCONNECT: gettext_lazy("Disconnect"),
    A.LOGOUT: gettext_lazy("Log out"),
}

# Disconnected and failed sessions may still be paired (a disconnect keeps the pairing), so they
# can log out; a session waiting for a scan is not paired yet, so it can only stop waiting (or
# pair by code instead); a logged-out one can only pair again.
ALLOWED: dict[str, tuple[Action, ...]] = {
    S.DISCONNECTED: (A.CONNECT, A.PAIRING_CODE, A.LOGOUT),
    S.QR: (A.PAIRING_CODE, A.SCAN, A.DISCONNECT),
    S.CONNECTING: (A.DISCONNECT,),
    S.READY: (A.DISCONNECT, A.LOGOUT),
    S.LOGGED_OUT: (A.CONNECT, A.PAIRING_CODE),
    S.FAILED: (A.CONNECT, A.PAIRING_CODE, A.LOGOUT),
}
NEEDS = {A.PAIRING_CODE: Capability.PAIRING_CODE, A.LOGOUT: Capability.LOGOUT}
SIMULATED = {A.SCAN}  # the simulator's phone only


def provider_can(provider_name: str, action: Action) -> bool:
    provider = providers.get(provider_name)
    if action in SIMULATED:
        return provider.name == "simulator"
    needed = NEEDS.get(action)
    return needed is None or needed in provider.capabilities


def allowed(provider_name: str, status: str) -> list[Action]:
    """The actions a session of this provider offers in ``status``, in the table's order."""
    return [a for a in ALLOWED.get(status, ()) if provider_can(provider_name, a)]


def states_allowing(provider_name: str, action: Action) -> list[str]:
    """The states in which ``action`` is offered (the page shows or hides it as the state
    changes live)."""
    return [status for status in ALLOWED if action in allowed(provider_name, status)]


def ensure_allowed(session: WhatsAppSession, action: Action) -> None:
    """Raise ``Conflict`` (409) with a readable reason unless ``action`` is allowed now."""
    if action in allowed(session.provider, session.status):
        return
    status = S(session.status).label
    if not provider_can(session.provider, action):
        message = _("%(action)s: %(provider)s cannot do this.") % {
            "action": LABELS[action],
            "provider": providers.get(session.provider).label,
        }
    else:
        possible = ", ".join(str(LABELS[a]) for a in allowed(session.provider, session.status))
        message = _("%(action)s is not possible while the session is “%(status)s”.") % {
            "action": LABELS[action],
            "status": status,
        }
        if possible:
            message += " " + _("Possible now: %(actions)s.") % {"actions": possible}
    raise Conflict(message, code="action_not_allowed")
