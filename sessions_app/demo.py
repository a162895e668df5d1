"""The sessions' part of the demo: a simulator session, ready to pair."""

from __future__ import annotations

from accounts.tenancy import scoped
from crm.demo import DemoContext, register_demo_step
from sessions_app import services
from sessions_app.models import WhatsAppSession


@register_demo_step
def whatsapp_session(ctx: DemoContext) -> None:
    organization = ctx.organization
    if scoped(WhatsAppSession, organization).filter(name__iexact="Demo phone").exists():
        return
    services.session_create(
        organization=organization,
        actor=ctx.people.get("owner"),
        data={"name": "Demo phone", "provider": "simulator", "colour": "#2563eb"},
    )
    ctx.say("added a simulator session (Sessions → Demo phone → Connect, then Scan)")
