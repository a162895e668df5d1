"""The people every test talks about: four roles in org A, a member of org B, an outsider."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from accounts import services
from accounts.models import ApiKey, Membership, Organization, User
from accounts.services import API_KEY_PREFIX, _sha256

PASSWORD = "correct horse battery staple"


@dataclass
class Cast:
    org_a: Organization
    org_b: Organization
    owner: User
    admin: User
    agent: User
    viewer: User
    b_member: User  # owns org B; has nothing to do with org A
    outsider: User  # signed up, belongs to no organization

    def user(self, role: str) -> User:
        return getattr(self, role)


def make_user(email: str, name: str = "") -> User:
    return User.objects.create_user(email, PASSWORD, name=name or email.split("@")[0].title())


def make_cast() -> Cast:
    owner = make_user("owner@a.example", "Olivia Owner")
    org_a = services.organization_create(name="Acme Trading", owner=owner, slug="acme")
    people = {}
    for role in ("admin", "agent", "viewer"):
        people[role] = make_user(f"{role}@a.example")
        Membership.objects.create(organization=org_a, user=people[role], role=role)
    b_member = make_user("boss@b.example", "Bea Bravo")
    org_b = services.organization_create(name="Bravo Imports", owner=b_member, slug="bravo")
    outsider = make_user("nobody@c.example", "Nick Nobody")
    return Cast(
        org_a=org_a, org_b=org_b, owner=owner, b_member=b_member, outsider=outsider, **people
    )


def key_for(user: User, organization: Organization, role: str | None = None) -> str:
    """A raw key of ``role`` (default: the member's own) created by ``user``, as the service makes them.

    Written directly so that agents and viewers, who may not create keys themselves, can hold one.
    """
    role = role or organization.memberships.get(user=user).role
    prefix = API_KEY_PREFIX + secrets.token_hex(4)
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    ApiKey.objects.create(
        organization=organization,
        name=f"{role} key",
        prefix=prefix,
        key_hash=_sha256(raw),
        role=role,
        created_by=user,
    )
    return raw
