"""The canned replies page (organization settings): admins and owners list, add, edit and delete
the replies the inbox offers after "/"; agents and viewers cannot open it; another organization's
reply is not found. (Filled in by a person in Chromium: tests/e2e/test_canned_replies.py.)"""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from messaging.models import CannedReply
from messaging.services import inbox

PAGE = "/o/acme/settings/replies/"


@pytest.fixture
def reply(cast):
    return inbox.canned_reply_create(
        organization=cast.org_a, shortcut="hours", text="We open at 9.", actor=cast.admin
    )


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_settings_navigation_links_the_page_for_admins_and_owners_only(cast, client):
    for role, shown in [("viewer", False), ("agent", False), ("admin", True), ("owner", True)]:
        page = signed_in(client, cast.user(role)).get("/o/acme/").content.decode()
        assert (f'href="{PAGE}" id="nav-canned-replies"' in page) is shown, role


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_an_agent_or_a_viewer_cannot_open_the_page_or_add_edit_or_delete(cast, client, reply, role):
    client = signed_in(client, cast.user(role))
    body = {"shortcut": "mine", "text": "Mine"}
    edit = {f"reply-{reply.pk}-shortcut": "hours", f"reply-{reply.pk}-text": "Changed"}

    responses = [
        client.get(PAGE),
        client.post(PAGE, body),
        client.post(f"{PAGE}{reply.pk}/edit/", edit),
        client.post(f"{PAGE}{reply.pk}/delete/"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert list(CannedReply.objects.values_list("shortcut", "text")) == [("hours", "We open at 9.")]


def test_another_organizations_reply_is_not_found(cast, client, reply):
    theirs = inbox.canned_reply_create(
        organization=cast.org_b, shortcut="theirs", text="Bravo's", actor=cast.b_member
    )
    client = signed_in(client, cast.admin)
    edit = {f"reply-{theirs.pk}-shortcut": "stolen", f"reply-{theirs.pk}-text": "Stolen"}

    responses = [
        client.post(f"{PAGE}{theirs.pk}/edit/", edit),
        client.post(f"{PAGE}{theirs.pk}/delete/"),
        client.get(f"{PAGE}{theirs.pk}/edit/"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    theirs.refresh_from_db()
    assert (theirs.shortcut, theirs.text) == ("theirs", "Bravo's")
    assert "/theirs" not in client.get(PAGE).content.decode()
    # Positive control: the admin's own organization's reply is found at the same routes
    assert client.post(f"{PAGE}{reply.pk}/delete/").status_code == 302
    assert not CannedReply.objects.filter(pk=reply.pk).exists()


def test_a_reply_that_cannot_work_is_refused_on_the_form_with_the_reason(cast, client, reply):
    client = signed_in(client, cast.admin)

    spaced = client.post(PAGE, {"shortcut": "two words", "text": "Hi"})
    taken = client.post(PAGE, {"shortcut": "/HOURS", "text": "Again"})
    unknown = client.post(PAGE, {"shortcut": "hi", "text": "Hi {{surname}}"})

    assert spaced.status_code == 400 and "no spaces" in spaced.content.decode()
    assert taken.status_code == 400 and "/hours is taken" in taken.content.decode()
    assert unknown.status_code == 400 and "Unknown: surname" in unknown.content.decode()
    assert CannedReply.objects.filter(organization=cast.org_a).count() == 1


def test_a_taken_shortcut_on_edit_is_said_and_nothing_changes(cast, client, reply):
    other = inbox.canned_reply_create(
        organization=cast.org_a, shortcut="price", text="Ten dollars.", actor=cast.admin
    )
    client = signed_in(client, cast.admin)

    response = client.post(
        f"{PAGE}{other.pk}/edit/",
        {f"reply-{other.pk}-shortcut": "hours", f"reply-{other.pk}-text": "Changed"},
        follow=True,
    )

    assert "/hours is taken" in response.content.decode()
    other.refresh_from_db()
    assert (other.shortcut, other.text) == ("price", "Ten dollars.")


def test_each_change_is_in_the_audit_log(cast, client, reply):
    client = signed_in(client, cast.owner)

    client.post(
        f"{PAGE}{reply.pk}/edit/",
        {f"reply-{reply.pk}-shortcut": "open", f"reply-{reply.pk}-text": "Open at 10."},
    )
    client.post(f"{PAGE}{reply.pk}/delete/")

    events = AuditEvent.objects.filter(organization=cast.org_a, target_type="cannedreply")
    assert list(events.order_by("id").values_list("action", "actor__email", "data")) == [
        ("canned_reply.created", cast.admin.email, {}),
        ("canned_reply.updated", cast.owner.email, {"shortcut": ["hours", "open"]}),
        ("canned_reply.deleted", cast.owner.email, {"shortcut": "open"}),
    ]
