"""The address book's dashboard pages, as the people using them see them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from messaging.models import Contact, ContactNote, CustomField
from messaging.services import contacts as services

pytestmark = pytest.mark.django_db

BASE = "/o/acme"


def signed_in(client, user):
    client.force_login(user)
    return client


def make(cast, **data) -> Contact:
    return services.contact_create(organization=cast.org_a, data=data)


# --- The list ------------------------------------------------------------------------------------


def test_it_shows_an_empty_state_before_the_first_contact(client, cast):
    page = signed_in(client, cast.agent).get(f"{BASE}/contacts/")
    assert page.status_code == 200
    assert b'id="contacts-empty"' in page.content
    assert b'id="new-contact"' in page.content


def test_it_searches_as_you_type_with_only_the_rows_partial(client, cast):
    make(cast, name="Reem Haddad", phone="+44 7957 189696", aliases=["Sister"])
    make(cast, name="Nick Lane", phone="+44 7950 724774")
    signed_in(client, cast.agent)

    by_alias = client.get(f"{BASE}/contacts/", {"q": "sist"}, HTTP_HX_REQUEST="true")
    assert by_alias.status_code == 200
    body = by_alias.content.decode()
    assert "<html" not in body and 'id="contact-filters"' not in body
    assert "Reem Haddad" in body and "Nick Lane" not in body
    assert 'hx-swap-oob="true"' in body  # the count and the pager follow the search

    by_last_digits = client.get(f"{BASE}/contacts/", {"q": "9696"}, HTTP_HX_REQUEST="true")
    assert "Reem Haddad" in by_last_digits.content.decode()
    assert "Nick Lane" not in by_last_digits.content.decode()

    nothing = client.get(f"{BASE}/contacts/", {"q": "zzz"}, HTTP_HX_REQUEST="true")
    assert b'data-testid="no-results"' in nothing.content


def test_it_wires_the_search_box_for_htmx(client, cast):
    make(cast, name="Reem")
    page = signed_in(client, cast.agent).get(f"{BASE}/contacts/").content.decode()
    assert 'hx-trigger="input changed delay:250ms, search"' in page
    assert 'hx-target="#contact-rows"' in page and 'hx-push-url="true"' in page


def test_it_filters_by_tag_group_favorite_status_and_opt_out(client, cast):
    vip = make(cast, name="Vera Vip", tags=["vip"], groups=["Spain"], favorite=True)
    make(cast, name="Otto Other", status="blocked")
    services.contact_opt_out(organization=cast.org_a, contact=vip, source="test")
    tag_id = vip.contact_tags.get().tag_id
    group_id = vip.group_memberships.get().group_id
    signed_in(client, cast.viewer)

    def names(**params) -> set[str]:
        page = client.get(f"{BASE}/contacts/", params, HTTP_HX_REQUEST="true").content.decode()
        return {n for n in ("Vera Vip", "Otto Other") if n in page}

    assert names(tag=tag_id) == {"Vera Vip"}
    assert names(group=group_id) == {"Vera Vip"}
    assert names(favorite="true") == {"Vera Vip"}
    assert names(status="blocked") == {"Otto Other"}
    assert names(opted_out="true") == {"Vera Vip"}
    assert names(opted_out="false") == {"Otto Other"}


def test_it_explains_a_bad_filter_instead_of_failing(client, cast):
    make(cast, name="Reem")
    page = signed_in(client, cast.agent).get(f"{BASE}/contacts/", {"tag": "abc", "status": "x"})
    assert page.status_code == 200
    assert "Some filters were ignored" in page.content.decode()
    assert "Reem" in page.content.decode()


def test_it_pages_with_a_next_link_and_no_contact_twice(client, cast, monkeypatch):
    monkeypatch.setattr("messaging.dashboard.PAGE_SIZE", 3)
    monkeypatch.setattr("messaging.dashboard.contact_page.__defaults__", (3,))
    for index in range(7):
        make(cast, name=f"Person {index}")
    signed_in(client, cast.agent)
    seen, url = [], f"{BASE}/contacts/"
    while url:
        page = client.get(url)
        seen += [c.display_name for c in page.context["contacts"]]
        next_url = page.context["next_url"]
        url = f"{BASE}/contacts/{next_url}" if next_url else None
    assert seen == [f"Person {i}" for i in range(7)]


def test_it_costs_the_same_queries_for_5_and_50_contacts(client, cast):
    signed_in(client, cast.agent)
    services.custom_field_define(organization=cast.org_a, key="tier", label="Tier", type="text")

    def add(count, start):
        for index in range(start, start + count):
            make(
                cast,
                name=f"Person {index:03}",
                phone=f"+4477009{index:05}",
                aliases=[f"alias{index}", f"nick{index}"],
                tags=["vip", f"t{index % 3}"],
                groups=["Spain"],
                custom_fields={"tier": "gold"},
            )

    def queries() -> int:
        client.get(f"{BASE}/contacts/")  # warm the session and caches
        with CaptureQueriesContext(connection) as captured:
            page = client.get(f"{BASE}/contacts/")
        assert page.status_code == 200
        return len(captured)

    add(5, 0)
    small = queries()
    add(45, 5)
    assert len(client.get(f"{BASE}/contacts/").context["contacts"]) == 50
    assert queries() == small


# --- Creating and editing --------------------------------------------------------------------------


def test_it_creates_a_contact_with_tags_groups_and_custom_fields(client, cast):
    services.custom_field_define(
        organization=cast.org_a, key="tier", label="Tier", type="choice", choices=["gold", "silver"]
    )
    services.custom_field_define(organization=cast.org_a, key="since", label="Since", type="date")
    signed_in(client, cast.agent)
    form = client.get(f"{BASE}/contacts/new/").content.decode()
    assert 'name="cf_since"' in form and 'type="date"' in form
    assert '<select name="cf_tier"' in form

    response = client.post(
        f"{BASE}/contacts/new/",
        {
            "name": "Reem Haddad",
            "phone": "+44 7957 189696",
            "status": "active",
            "aliases": "Sister, Reemy",
            "tags": "family, vip",
            "groups": "London",
            "cf_tier": "gold",
            "cf_since": "2024-02-01",
        },
    )
    contact = Contact.objects.get(organization=cast.org_a, name="Reem Haddad")
    assert response.status_code == 302 and response["Location"].endswith(f"/contacts/{contact.pk}/")
    assert contact.custom_fields == {"tier": "gold", "since": "2024-02-01"}

    page = client.get(response["Location"]).content.decode()
    assert "+44 7957 189696" in page
    assert page.count('data-testid="tag-chip"') == 2 and ">vip</a>" in page
    assert 'data-testid="group-chip"' in page and ">London</a>" in page
    assert "Reemy" in page


def test_it_names_the_contact_that_already_has_the_phone_and_saves_nothing(client, cast):
    make(cast, name="Reem Haddad", phone="+44 7957 189696")
    signed_in(client, cast.agent)
    response = client.post(
        f"{BASE}/contacts/new/",
        {"name": "Impostor", "phone": "+44 (7957) 189-696", "status": "active"},
    )
    assert response.status_code == 400
    assert "Reem Haddad" in response.content.decode()
    assert not Contact.objects.filter(name="Impostor").exists()

    other = make(cast, name="Nick Lane")
    response = client.post(
        f"{BASE}/contacts/{other.pk}/edit/",
        {"name": "Nick Changed", "phone": "+447957189696", "status": "active"},
    )
    assert response.status_code == 400
    assert "Reem Haddad" in response.content.decode()
    other.refresh_from_db()
    assert other.name == "Nick Lane" and other.phone is None


def test_it_edits_a_contact_and_rejects_bad_custom_values_per_field(client, cast):
    services.custom_field_define(organization=cast.org_a, key="score", label="Score", type="number")
    services.custom_field_define(organization=cast.org_a, key="vip", label="VIP", type="boolean")
    contact = make(cast, name="Nick Lane", tags=["old"])
    signed_in(client, cast.agent)

    bad = client.post(
        f"{BASE}/contacts/{contact.pk}/edit/",
        {"name": "Nick", "status": "active", "cf_score": "many"},
    )
    assert bad.status_code == 400
    assert bad.context["form"].errors["cf_score"]
    contact.refresh_from_db()
    assert contact.name == "Nick Lane"

    good = client.post(
        f"{BASE}/contacts/{contact.pk}/edit/",
        {
            "name": "Nick",
            "status": "blocked",
            "tags": "new, vip",
            "cf_score": "4.5",
            "cf_vip": "on",
        },
    )
    assert good.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "Nick" and contact.status == "blocked"
    assert contact.custom_fields == {"score": 4.5, "vip": True}
    assert sorted(t.tag.name for t in contact.contact_tags.select_related("tag")) == ["new", "vip"]
    page = client.get(f"{BASE}/contacts/{contact.pk}/").content.decode()
    assert 'type="checkbox" name="cf_vip"' in page and "checked" in page


def test_it_adds_and_removes_an_identity_and_toggles_favorite_and_opt_out(client, cast):
    contact = make(cast, name="Ama")
    signed_in(client, cast.agent)
    client.post(f"{BASE}/contacts/{contact.pk}/identities/", {"kind": "lid", "value": "123@lid"})
    identity = contact.identities.get()
    assert identity.value == "123@lid"
    client.post(f"{BASE}/contacts/{contact.pk}/identities/remove/", {"identity_id": identity.pk})
    assert not contact.identities.exists()

    client.post(f"{BASE}/contacts/{contact.pk}/favorite/")
    client.post(f"{BASE}/contacts/{contact.pk}/opt-out/")
    contact.refresh_from_db()
    assert contact.favorite and contact.opted_out_at is not None
    client.post(f"{BASE}/contacts/{contact.pk}/opt-in/")
    contact.refresh_from_db()
    assert contact.opted_out_at is None


def test_it_does_not_remove_an_identity_of_another_contact(client, cast):
    mine = make(cast, name="Mine")
    theirs = make(cast, name="Theirs", identities=[{"kind": "lid", "value": "x@lid"}])
    signed_in(client, cast.agent)
    response = client.post(
        f"{BASE}/contacts/{mine.pk}/identities/remove/",
        {"identity_id": theirs.identities.get().pk},
        follow=True,
    )
    assert "not on this contact" in response.content.decode()
    assert theirs.identities.exists()


def test_it_adds_notes_shown_newest_first_with_their_author(client, cast):
    contact = make(cast, name="Priya")
    signed_in(client, cast.agent)
    client.post(f"{BASE}/contacts/{contact.pk}/notes/", {"text": "first call"})
    client.post(f"{BASE}/contacts/{contact.pk}/notes/", {"text": "second call"})
    empty = client.post(f"{BASE}/contacts/{contact.pk}/notes/", {"text": "  "})
    assert empty.status_code == 400
    page = client.get(f"{BASE}/contacts/{contact.pk}/").content.decode()
    notes = page[page.index('id="contact-notes"') : page.index('id="contact-activity"')]
    assert notes.index("second call") < notes.index("first call")
    assert "agent@a.example" in notes
    assert ContactNote.objects.filter(contact=contact).count() == 2


# --- Merge, delete, erase ------------------------------------------------------------------------


def test_it_merges_a_contact_found_by_search_into_this_one(client, cast):
    survivor = make(cast, name="Reem Haddad", phone="+44 7957 189696")
    other = make(cast, name="R. Haddad", email="reem@example.com", aliases=["Sister"], tags=["vip"])
    signed_in(client, cast.agent)

    found = client.get(f"{BASE}/contacts/{survivor.pk}/merge/", {"q": "sister"})
    assert found.context["candidates"] == [other]

    unconfirmed = client.post(f"{BASE}/contacts/{survivor.pk}/merge/", {"other_id": other.pk})
    assert unconfirmed.status_code == 302 and Contact.objects.filter(pk=other.pk).exists()

    client.post(f"{BASE}/contacts/{survivor.pk}/merge/", {"other_id": other.pk, "confirm": "1"})
    assert not Contact.objects.filter(pk=other.pk).exists()
    survivor.refresh_from_db()
    assert survivor.email == "reem@example.com"
    page = client.get(f"{BASE}/contacts/{survivor.pk}/").content.decode()
    assert "Sister" in page and ">vip</a>" in page
    assert "Merged with R. Haddad" in page  # the activity shows the audit entry


def test_it_erases_a_contact_for_an_admin_who_types_its_name(client, cast):
    contact = make(cast, name="Tom Becker", phone="+49 151 23456789")
    note_contact = contact.pk
    signed_in(client, cast.admin)

    wrong = client.post(f"{BASE}/contacts/{contact.pk}/erase/", {"confirm": "tom"}, follow=True)
    assert "Type Tom Becker exactly" in wrong.content.decode()
    assert Contact.objects.filter(pk=contact.pk).exists()

    done = client.post(
        f"{BASE}/contacts/{contact.pk}/erase/", {"confirm": "tom becker"}, follow=True
    )
    assert done.redirect_chain[-1][0] == f"{BASE}/contacts/"
    assert "The contact was erased" in done.content.decode()
    assert not Contact.objects.filter(pk=note_contact).exists()
    assert not Contact.objects.filter(search_text__contains="tom").exists()
    assert AuditEvent.objects.filter(action="contact.erased").exists()


def test_it_lets_an_agent_delete_but_not_erase(client, cast):
    contact = make(cast, name="Tom")
    signed_in(client, cast.agent)
    page = client.get(f"{BASE}/contacts/{contact.pk}/").content.decode()
    assert 'id="delete-contact"' in page and 'id="erase-form"' not in page
    assert (
        client.post(f"{BASE}/contacts/{contact.pk}/erase/", {"confirm": "Tom"}).status_code == 403
    )
    response = client.post(f"{BASE}/contacts/{contact.pk}/delete/")
    assert response.status_code == 302 and not Contact.objects.filter(pk=contact.pk).exists()


def test_it_shows_a_viewer_no_controls_and_refuses_their_posts(client, cast):
    contact = make(cast, name="Reem", tags=["vip"])
    signed_in(client, cast.viewer)
    page = client.get(f"{BASE}/contacts/{contact.pk}/").content.decode()
    assert "Reem" in page and ">vip</a>" in page
    for control in (
        'id="contact-form"',
        'id="note-form"',
        'id="favorite-toggle"',
        'id="opt-out"',
        'id="delete-contact"',
    ):
        assert control not in page
    listing = client.get(f"{BASE}/contacts/").content.decode()
    assert 'id="new-contact"' not in listing and 'name="ids"' not in listing
    for action in (
        "edit",
        "notes",
        "favorite",
        "opt-out",
        "merge",
        "delete",
        "erase",
        "identities",
    ):
        assert client.post(f"{BASE}/contacts/{contact.pk}/{action}/", {}).status_code == 403, action
    assert (
        client.post(f"{BASE}/contacts/new/", {"name": "X", "status": "active"}).status_code == 403
    )
    assert client.post(f"{BASE}/tags/", {"name": "x", "color": "#000000"}).status_code == 403


def test_it_hides_another_orgs_contact(client, cast):
    contact = make(cast, name="Reem")
    signed_in(client, cast.b_member)
    assert client.get(f"/o/bravo/contacts/{contact.pk}/").status_code == 404


# --- Groups, tags, custom fields -------------------------------------------------------------------


def test_it_manages_groups_with_member_counts_and_links(client, cast):
    make(cast, name="A", groups=["Spain"])
    make(cast, name="B", groups=["Spain"])
    signed_in(client, cast.agent)
    client.post(f"{BASE}/groups/", {"name": "Hong Kong", "description": "HK"})
    page = client.get(f"{BASE}/groups/")
    groups = {g.name: g for g in page.context["groups"]}
    assert groups["Spain"].member_count == 2 and groups["Hong Kong"].member_count == 0
    assert f"?group={groups['Spain'].pk}" in page.content.decode()

    duplicate = client.post(f"{BASE}/groups/", {"name": "spain"})
    assert duplicate.status_code == 400 and "Already in use" in duplicate.content.decode()

    client.post(f"{BASE}/groups/{groups['Hong Kong'].pk}/edit/", {"name": "HK", "description": "x"})
    client.post(f"{BASE}/groups/{groups['Spain'].pk}/delete/")
    names = [g.name for g in client.get(f"{BASE}/groups/").context["groups"]]
    assert names == ["HK"]
    assert Contact.objects.filter(organization=cast.org_a).count() == 2


def test_it_manages_tags_with_counts_and_colours(client, cast):
    make(cast, name="A", tags=["vip"])
    signed_in(client, cast.agent)
    client.post(f"{BASE}/tags/", {"name": "lead", "color": "#ff0000"})
    bad = client.post(f"{BASE}/tags/", {"name": "x", "color": "red"})
    assert bad.status_code == 400
    tags = {t.name: t for t in client.get(f"{BASE}/tags/").context["tags"]}
    assert tags["vip"].contact_count == 1 and tags["lead"].color == "#ff0000"
    client.post(f"{BASE}/tags/{tags['lead'].pk}/edit/", {"name": "leads", "color": "#00ff00"})
    client.post(f"{BASE}/tags/{tags['vip'].pk}/delete/")
    page = client.get(f"{BASE}/tags/")
    assert [(t.name, t.color) for t in page.context["tags"]] == [("leads", "#00ff00")]
    assert 'data-colour="#00ff00"' in page.content.decode()


def test_it_lets_only_admins_define_custom_fields(client, cast):
    signed_in(client, cast.agent)
    assert client.get(f"{BASE}/settings/fields/").status_code == 403
    signed_in(client, cast.admin)
    no_choices = client.post(
        f"{BASE}/settings/fields/", {"key": "tier", "label": "Tier", "type": "choice"}
    )
    assert no_choices.status_code == 400 and "needs choices" in no_choices.content.decode()
    client.post(
        f"{BASE}/settings/fields/",
        {"key": "tier", "label": "Tier", "type": "choice", "choices": "gold, silver"},
    )
    field = CustomField.objects.get(organization=cast.org_a, key="tier")
    assert field.choices == ["gold", "silver"]
    client.post(
        f"{BASE}/settings/fields/{field.pk}/edit/",
        {"label": "Level", "choices": "gold, silver, bronze"},
    )
    field.refresh_from_db()
    assert field.label == "Level" and field.choices == ["gold", "silver", "bronze"]

    contact = make(cast, name="A", custom_fields={"tier": "gold"})
    page = client.get(f"{BASE}/settings/fields/").content.decode()
    assert "removes its value from every contact" in page
    client.post(f"{BASE}/settings/fields/{field.pk}/delete/")
    contact.refresh_from_db()
    assert contact.custom_fields == {} and not CustomField.objects.filter(pk=field.pk).exists()


def test_it_links_the_address_book_from_the_navigation(client, cast):
    signed_in(client, cast.agent)
    nav = client.get(f"{BASE}/").content.decode()
    assert 'id="nav-contacts"' in nav and 'id="nav-tags"' in nav and 'id="nav-groups"' in nav
    assert 'id="nav-custom-fields"' not in nav
    assert (
        'id="nav-custom-fields"' in signed_in(client, cast.admin).get(f"{BASE}/").content.decode()
    )
