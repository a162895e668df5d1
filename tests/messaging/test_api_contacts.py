"""The address book through the API, as an integration would use it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.models import Contact, ContactIdentity
from messaging.services import contacts as svc


@pytest.fixture
def agent(cast, api):
    cast.org_a.default_country = "GB"
    cast.org_a.save()
    return api(cast.agent)


def test_it_creates_a_contact_and_reads_it_back(agent):
    created = agent.post(
        "/api/v1/contacts/",
        {
            "name": "Reem",
            "phone": "07957 189696",
            "aliases": ["Reemy"],
            "tags": ["family"],
            "groups": ["Leeds"],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["phone"] == "+447957189696"
    assert body["aliases"] == ["Reemy"] and body["tags"] == ["family"]
    assert [g["name"] for g in body["groups"]] == ["Leeds"]
    assert agent.get(f"/api/v1/contacts/{body['id']}/").json()["display_name"] == "Reem"


def test_a_duplicate_phone_is_a_409_naming_the_field(agent):
    agent.post("/api/v1/contacts/", {"name": "A", "phone": "+447957189696"}, format="json")
    response = agent.post("/api/v1/contacts/", {"name": "B", "phone": "07957189696"}, format="json")
    assert response.status_code == 409
    assert "phone" in response.json()["error"]["fields"]
    assert Contact.objects.count() == 1


@pytest.mark.parametrize(
    "body,field",
    [
        ({"phone": "not a number"}, "phone"),
        ({"email": "nope"}, "email"),
        ({"status": "sleeping"}, "status"),
        ({"custom_fields": {"shoe": 42}}, "custom_fields.shoe"),
        ({"identities": [{"kind": "fax", "value": "1"}]}, "identities.0.kind"),
        ({"aliases": "not a list"}, "aliases"),
        ({"organization": 2}, "organization"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(agent, body, field):
    response = agent.post("/api/v1/contacts/", {"name": "X", **body}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Contact.objects.exists()


def test_search_ranks_and_filters(agent, cast):
    for data in (
        {"name": "Ana Silva", "phone": "+447957189696"},
        {"name": "Mariana"},
        {"name": "Bob", "aliases": ["Ana's friend"]},
    ):
        svc.contact_create(organization=cast.org_a, data=data)
    names = [c["display_name"] for c in agent.get("/api/v1/contacts/?q=ana").json()["results"]]
    assert names == ["Ana Silva", "Bob", "Mariana"]
    assert [c["display_name"] for c in agent.get("/api/v1/contacts/?q=9696").json()["results"]] == [
        "Ana Silva"
    ]
    assert agent.get("/api/v1/contacts/?favorite=perhaps").status_code == 400


def test_pages_cost_the_same_queries_at_any_size(agent, cast):
    for n in range(60):
        svc.contact_create(
            organization=cast.org_a,
            data={
                "name": f"C{n:02d}",
                "phone": f"+4477009{n:05d}",
                "tags": ["t"],
                "aliases": ["a"],
                "groups": ["g"],
            },
        )
    counts = []
    agent.get("/api/v1/contacts/?page_size=1")  # the key's last-used stamp is written once a minute
    for size in (5, 50):
        with CaptureQueriesContext(connection) as queries:
            response = agent.get(f"/api/v1/contacts/?page_size={size}")
        assert len(response.json()["results"]) == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_cursor_pages_walk_the_whole_book_once(agent, cast):
    for n in range(23):
        svc.contact_create(organization=cast.org_a, data={"name": f"Same Name {n % 3}"})
    seen, url = [], "/api/v1/contacts/?page_size=5"
    while url:
        page = agent.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert len(seen) == 23 == len(set(seen))


def test_merge_and_erase_through_the_api(agent, cast, api):
    keep = agent.post(
        "/api/v1/contacts/", {"name": "Keep", "phone": "+447957189696"}, format="json"
    ).json()
    other = agent.post(
        "/api/v1/contacts/",
        {"notify_name": "Dup", "identities": [{"kind": "lid", "value": "77@lid"}]},
        format="json",
    ).json()
    merged = agent.post(
        f"/api/v1/contacts/{keep['id']}/merge/", {"other_id": other["id"]}, format="json"
    )
    assert merged.status_code == 200
    assert {i["kind"] for i in merged.json()["identities"]} == {"phone", "lid"}
    assert agent.get(f"/api/v1/contacts/{other['id']}/").status_code == 404

    assert (
        agent.post(
            f"/api/v1/contacts/{keep['id']}/erase/", {"confirm": True}, format="json"
        ).status_code
        == 403
    )
    admin = api(cast.admin)
    assert (
        admin.post(
            f"/api/v1/contacts/{keep['id']}/erase/", {"confirm": False}, format="json"
        ).status_code
        == 400
    )
    assert (
        admin.post(
            f"/api/v1/contacts/{keep['id']}/erase/", {"confirm": True}, format="json"
        ).status_code
        == 204
    )
    assert not ContactIdentity.objects.exists()


def test_merge_with_a_contact_of_another_org_is_not_found(agent, cast):
    mine = svc.contact_create(organization=cast.org_a, data={"name": "Mine"})
    theirs = svc.contact_create(organization=cast.org_b, data={"name": "Theirs"})
    response = agent.post(
        f"/api/v1/contacts/{mine.pk}/merge/", {"other_id": theirs.pk}, format="json"
    )
    assert response.status_code == 404
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_notes_identities_tags_groups_and_fields(agent, cast, api):
    contact = svc.contact_create(organization=cast.org_a, data={"name": "Zed"})
    assert (
        agent.post(
            "/api/v1/notes/", {"contact": contact.pk, "text": "Called"}, format="json"
        ).status_code
        == 201
    )
    assert [
        n["text"] for n in agent.get(f"/api/v1/notes/?contact={contact.pk}").json()["results"]
    ] == ["Called"]
    identity = agent.post(
        "/api/v1/identities/",
        {"contact": contact.pk, "kind": "phone", "value": "+85291234567"},
        format="json",
    )
    assert identity.status_code == 201 and identity.json()["value"] == "85291234567"
    assert agent.get(f"/api/v1/contacts/{contact.pk}/").json()["phone"] == "+85291234567"
    assert agent.delete(f"/api/v1/identities/{identity.json()['id']}/").status_code == 204
    assert agent.get(f"/api/v1/contacts/{contact.pk}/").json()["phone"] is None

    tag = agent.post("/api/v1/tags/", {"name": "vip", "color": "#ff0000"}, format="json")
    assert tag.status_code == 201
    assert agent.post("/api/v1/tags/", {"name": "VIP"}, format="json").status_code == 409
    group = agent.post("/api/v1/groups/", {"name": "Leeds"}, format="json").json()
    assert agent.post(
        f"/api/v1/groups/{group['id']}/add-members/",
        {"contact_ids": [contact.pk, 999999]},
        format="json",
    ).json() == {"added": 1}
    assert agent.get(f"/api/v1/groups/{group['id']}/").json()["member_count"] == 1

    assert (
        agent.post(
            "/api/v1/custom-fields/",
            {"key": "tier", "label": "Tier", "type": "choice", "choices": ["gold"]},
            format="json",
        ).status_code
        == 403
    )
    admin = api(cast.admin)
    assert (
        admin.post(
            "/api/v1/custom-fields/",
            {"key": "tier", "label": "Tier", "type": "choice", "choices": ["gold"]},
            format="json",
        ).status_code
        == 201
    )
    bad = agent.patch(
        f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"tier": "bronze"}}, format="json"
    )
    assert bad.status_code == 400 and "custom_fields.tier" in bad.json()["error"]["fields"]
    good = agent.patch(
        f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"tier": "gold"}}, format="json"
    )
    assert good.json()["custom_fields"] == {"tier": "gold"}


def test_a_viewer_reads_but_cannot_write(cast, api):
    viewer = api(cast.viewer)
    assert viewer.get("/api/v1/contacts/").status_code == 200
    assert viewer.post("/api/v1/contacts/", {"name": "No"}, format="json").status_code == 403
