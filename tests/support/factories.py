"""Objects of organization A for the cross-tenant sweep; later issues add their models here."""

from __future__ import annotations

from accounts import services
from accounts.models import ApiKey, AuditEvent, Invitation, Membership
from tests.support.people import Cast, make_user
from tests.support.sweep import sweep_factory


@sweep_factory(Membership)
def a_membership(cast: Cast) -> Membership:
    person = make_user("swept-member@a.example")
    return Membership.objects.create(organization=cast.org_a, user=person, role="agent")


@sweep_factory(Invitation)
def an_invitation(cast: Cast) -> Invitation:
    invitation, _token = services.invitation_create(
        organization=cast.org_a, email="swept-invitee@a.example", role="agent", actor=cast.owner
    )
    return invitation


@sweep_factory(ApiKey)
def an_api_key(cast: Cast) -> ApiKey:
    key, _raw = services.api_key_create(
        organization=cast.org_a, name="swept key", role="agent", actor=cast.owner
    )
    return key


@sweep_factory(AuditEvent)
def an_audit_event(cast: Cast) -> AuditEvent:
    return services.audit_record(organization=cast.org_a, action="sweep.probe", actor=cast.owner)
