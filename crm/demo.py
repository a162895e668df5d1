"""The demo data ``manage.py seed_demo`` creates, as a registry of steps.

A step is a function taking the ``DemoContext``; the steps run in order, all in one transaction,
and write only through services. A step must be safe to run again: it looks for what it would
create and skips what is there (``seed_demo --force`` re-runs every step to fill in the sections
added after the demo was first seeded). Another app adds its own with ``register_demo_step``, as
a decorator or from its ``AppConfig.ready()``; ``ctx.organization`` and ``ctx.people`` are set by
the first step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from accounts import services
from accounts.models import Invitation, Membership, Organization, Role, User
from accounts.tenancy import scoped

DEMO_SLUG = "demo"
DEMO_NAME = "Demo Co"
DEMO_OWNER_EMAIL = "demo@parley.local"
# "parley-demo" alone is refused by the password validators (too similar to the addresses).
DEFAULT_DEMO_PASSWORD = "parley-demo-2025"  # noqa: S105 - public, printed by seed_demo
DEMO_PEOPLE = {
    Role.ADMIN: ("admin@parley.local", "Ada Admin"),
    Role.AGENT: ("agent@parley.local", "Avery Agent"),
    Role.VIEWER: ("viewer@parley.local", "Vic Viewer"),
}
DEMO_PENDING_INVITATION = ("invited@parley.local", Role.AGENT)


def demo_password() -> str:
    return os.environ.get("PARLEY_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD


@dataclass
class DemoContext:
    password: str
    say: Callable[[str], None] = print
    organization: Organization | None = None
    people: dict[str, User] = field(default_factory=dict)  # "owner", "admin", ... → User


DemoStep = Callable[[DemoContext], None]
DEMO_STEPS: list[DemoStep] = []


def register_demo_step(fn: DemoStep) -> DemoStep:
    """Add a step at the end (once; registering the same function again changes nothing)."""
    if fn not in DEMO_STEPS:
        DEMO_STEPS.append(fn)
    return fn


def demo_present() -> bool:
    return Organization.objects.filter(slug=DEMO_SLUG).exists()


def _user(ctx: DemoContext, email: str, name: str) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = services.user_create(email=email, password=ctx.password, name=name)
        ctx.say(f"created user {email}")
    return user


@register_demo_step
def organization_and_people(ctx: DemoContext) -> None:
    """Demo Co, its owner, and an admin, an agent and a viewer who joined by invitation."""
    owner = _user(ctx, DEMO_OWNER_EMAIL, "Dana Demo")
    ctx.people[Role.OWNER] = owner
    organization = Organization.objects.filter(slug=DEMO_SLUG).first()
    if organization is None:
        organization = services.organization_create(name=DEMO_NAME, owner=owner, slug=DEMO_SLUG)
        ctx.say(f"created organization {DEMO_NAME} ({DEMO_SLUG})")
    ctx.organization = organization
    for role, (email, name) in DEMO_PEOPLE.items():
        person = _user(ctx, email, name)
        ctx.people[role] = person
        if scoped(Membership, organization).filter(user=person).exists():
            continue
        # The way a team really grows: the owner invites, the person accepts.
        _invitation, token = services.invitation_create(
            organization=organization, email=email, role=role, actor=owner
        )
        services.invitation_accept(token=token, user=person)
        ctx.say(f"{email} joined as {role}")


@register_demo_step
def pending_invitation(ctx: DemoContext) -> None:
    email, role = DEMO_PENDING_INVITATION
    if Invitation.objects.filter(organization=ctx.organization, email=email).exists():
        return
    services.invitation_create(
        organization=ctx.organization, email=email, role=role, actor=ctx.people[Role.OWNER]
    )
    ctx.say(f"invited {email} as {role} (pending)")
