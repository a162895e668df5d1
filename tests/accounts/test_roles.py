"""Roles: what each role may do through the API, written out literally, then the rules between them."""

from __future__ import annotations

import json

import pytest

from accounts.models import ApiKey, AuditEvent, Membership
from tests.support.people import key_for, make_user

ROLES = ["viewer", "agent", "admin", "owner"]

# (method, path, body, expected status for viewer, agent, admin, owner)
# {target} is an agent member created for the test; every row runs on fresh data.
ROLE_TABLE = [
    ("GET", "/api/v1/me/", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/organization/", None, (200, 200, 200, 200)),
    ("PATCH", "/api/v1/organization/", {"name": "Acme Renamed"}, (403, 403, 200, 200)),
    ("GET", "/api/v1/members/", None, (200, 200, 200, 200)),
    ("GET", "/api/v1/members/{target}/", None, (200, 200, 200, 200)),
    ("PATCH", "/api/v1/members/{target}/", {"role": "viewer"}, (403, 403, 200, 200)),
    ("POST", "/api/v1/members/{target}/deactivate/", None, (403, 403, 200, 200)),
    ("DELETE", "/api/v1/members/{target}/", None, (403, 403, 204, 204)),
    ("GET", "/api/v1/invitations/", None, (403, 403, 200, 200)),
    (
        "POST",
        "/api/v1/invitations/",
        {"email": "new@a.example", "role": "agent"},
        (403, 403, 201, 201),
    ),
    ("GET", "/api/v1/api-keys/", None, (403, 403, 200, 200)),
    ("POST", "/api/v1/api-keys/", {"name": "ci", "role": "viewer"}, (403, 403, 201, 201)),
    ("GET", "/api/v1/audit-log/", None, (403, 403, 200, 200)),
    (
        "POST",
        "/api/v1/organization/transfer-ownership/",
        {"member_id": "{target}"},
        (403, 403, 403, 200),
    ),
]


def _fill(value, target_id):
    if isinstance(value, str):
        return value.replace("{target}", str(target_id))
    if isinstance(value, dict):
        return {
            k: int(v.replace("{target}", str(target_id))) if v == "{target}" else v
            for k, v in value.items()
        }
    return value


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize(
    "method,path,body,expected", ROLE_TABLE, ids=[f"{r[0]} {r[1]}" for r in ROLE_TABLE]
)
def test_each_role_gets_exactly_what_the_table_says(
    cast, api, role_index, role, method, path, body, expected
):
    target = Membership.objects.create(
        organization=cast.org_a, user=make_user("target@a.example"), role="agent"
    )
    client = api(cast.user(role))
    response = client.generic(
        method,
        _fill(path, target.pk),
        data=None if body is None else json.dumps(_fill(body, target.pk)),
        content_type="application/json",
    )
    assert response.status_code == expected[role_index], response.content[:300]
    if response.status_code == 403:
        assert response.json()["error"]["code"] == "permission_denied"


def test_an_admin_cannot_make_an_owner_or_touch_one(cast, api):
    client = api(cast.admin)
    agent = cast.org_a.memberships.get(user=cast.agent)
    owner = cast.org_a.memberships.get(user=cast.owner)
    assert (
        client.patch(f"/api/v1/members/{agent.pk}/", {"role": "owner"}, format="json").status_code
        == 403
    )
    assert (
        client.patch(f"/api/v1/members/{owner.pk}/", {"role": "viewer"}, format="json").status_code
        == 403
    )
    assert client.post(f"/api/v1/members/{owner.pk}/deactivate/").status_code == 403
    owner.refresh_from_db()
    assert owner.role == "owner" and owner.is_active


def test_nobody_changes_their_own_role(cast, api):
    admin = cast.org_a.memberships.get(user=cast.admin)
    response = api(cast.admin).patch(
        f"/api/v1/members/{admin.pk}/", {"role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "own_role"


def test_the_last_owner_cannot_leave_or_be_demoted(cast, api):
    owner = cast.org_a.memberships.get(user=cast.owner)
    client = api(cast.owner)
    response = client.delete(f"/api/v1/members/{owner.pk}/")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "last_owner"
    assert Membership.objects.filter(pk=owner.pk, role="owner", is_active=True).exists()


def test_a_member_may_leave_on_their_own(cast, api):
    viewer = cast.org_a.memberships.get(user=cast.viewer)
    assert (
        api(cast.viewer).delete(f"/api/v1/members/{viewer.pk}/").status_code == 403
    )  # viewers write nothing
    from accounts import services

    services.member_remove(organization=cast.org_a, membership=viewer, actor=cast.viewer)
    assert not Membership.objects.filter(pk=viewer.pk).exists()
    assert AuditEvent.objects.filter(organization=cast.org_a, action="member.left").exists()


def test_a_key_never_outranks_its_creator(cast, api):
    response = api(cast.admin).post(
        "/api/v1/api-keys/", {"name": "too strong", "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert not ApiKey.objects.filter(name="too strong").exists()


def test_demoting_a_member_lowers_their_keys_and_deactivating_revokes_them(cast, api):
    raw = key_for(cast.admin, cast.org_a)
    admin = cast.org_a.memberships.get(user=cast.admin)
    owner = api(cast.owner)
    assert (
        owner.patch(f"/api/v1/members/{admin.pk}/", {"role": "agent"}, format="json").status_code
        == 200
    )
    assert ApiKey.objects.get(prefix=raw[:12]).role == "agent"

    keyed = api(cast.owner)
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert keyed.get("/api/v1/api-keys/").status_code == 403  # agent now
    assert owner.post(f"/api/v1/members/{admin.pk}/deactivate/").status_code == 200
    assert keyed.get("/api/v1/me/").status_code == 401


def test_ownership_moves_and_the_old_owner_becomes_an_admin(cast, api):
    agent = cast.org_a.memberships.get(user=cast.agent)
    response = api(cast.owner).post(
        "/api/v1/organization/transfer-ownership/", {"member_id": agent.pk}, format="json"
    )
    assert response.status_code == 200
    assert cast.org_a.memberships.get(user=cast.agent).role == "owner"
    assert cast.org_a.memberships.get(user=cast.owner).role == "admin"
    event = AuditEvent.objects.get(
        organization=cast.org_a, action="organization.ownership_transferred"
    )
    assert event.actor == cast.owner and event.target_label == cast.agent.email


def test_transfer_to_a_member_of_another_org_is_not_found(cast, api):
    other = cast.org_b.memberships.get(user=cast.b_member)
    response = api(cast.owner).post(
        "/api/v1/organization/transfer-ownership/", {"member_id": other.pk}, format="json"
    )
    assert response.status_code == 404
    assert cast.org_b.memberships.get(user=cast.b_member).role == "owner"


# A key weaker than its creator acts with the key's role, never the creator's.
KEY_BELOW_CREATOR = [
    ("POST", "/api/v1/api-keys/", {"name": "stronger", "role": "owner"}),
    ("PATCH", "/api/v1/members/{agent}/", {"role": "owner"}),
    ("POST", "/api/v1/invitations/", {"email": "boss@a.example", "role": "owner"}),
    ("DELETE", "/api/v1/organization/", {"confirm": "acme"}),
    ("POST", "/api/v1/organization/transfer-ownership/", {"member_id": "{agent}"}),
]


@pytest.mark.parametrize(
    "method,path,body", KEY_BELOW_CREATOR, ids=[f"{m} {p}" for m, p, _b in KEY_BELOW_CREATOR]
)
def test_an_owners_admin_key_cannot_do_what_only_an_owner_may(cast, method, path, body):
    from rest_framework.test import APIClient

    agent = cast.org_a.memberships.get(user=cast.agent)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_for(cast.owner, cast.org_a, 'admin')}")
    body = {k: (agent.pk if v == "{agent}" else v) for k, v in body.items()}
    response = client.generic(
        method,
        path.replace("{agent}", str(agent.pk)),
        json.dumps(body),
        content_type="application/json",
    )
    assert response.status_code == 403, response.content[:300]
    assert cast.org_a.memberships.get(user=cast.agent).role == "agent"
    assert not ApiKey.objects.filter(role="owner").exists()
    assert type(cast.org_a).objects.filter(pk=cast.org_a.pk).exists()


def test_an_action_through_a_key_is_audited_as_that_key(cast, api):
    client = api(cast.owner)
    client.post("/api/v1/api-keys/", {"name": "made by key", "role": "viewer"}, format="json")
    event = AuditEvent.objects.get(
        organization=cast.org_a, action="api_key.created", data__role="viewer"
    )
    assert event.actor == cast.owner and event.api_key is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda m: type(m).objects.filter(pk=m.pk).update(is_active=False),
        lambda m: type(m).objects.filter(pk=m.pk).delete(),
        lambda m: type(m.user).objects.filter(pk=m.user_id).update(is_active=False),
        lambda m: type(m).objects.filter(pk=m.pk).update(role="viewer"),
    ],
    ids=["membership deactivated", "membership deleted", "account disabled", "demoted to viewer"],
)
def test_a_key_follows_its_creators_live_access_however_it_changed(cast, change):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key_for(cast.admin, cast.org_a)}")
    assert client.get("/api/v1/api-keys/").status_code == 200
    change(cast.org_a.memberships.get(user=cast.admin))  # outside the services (admin, a script)
    assert client.get("/api/v1/api-keys/").status_code in (401, 403)
