"""Account flows a person goes through in the dashboard, beyond the happy paths."""

from __future__ import annotations

import re

from django.test import Client

from accounts.models import AuditEvent, Membership


def test_it_resets_a_forgotten_password_by_email(client, cast, mailoutbox):
    # Given a member who forgot their password
    client.post("/password-reset/", {"email": cast.agent.email})
    # When they follow the emailed link and choose a new one
    link = re.search(r"https?://[^/\s]+(/password-reset/\S+/)", mailoutbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link
    done = client.post(
        set_url,
        {"new_password1": "a brand new secret 42", "new_password2": "a brand new secret 42"},
    )
    assert done.status_code == 302
    # Then the new password signs them in
    fresh = Client()
    assert fresh.login(username=cast.agent.email, password="a brand new secret 42")


def test_it_explains_a_taken_email_and_a_weak_password_on_sign_up(client, cast):
    taken = client.post(
        "/signup/",
        {
            "name": "Dup",
            "email": cast.agent.email,
            "password": "long enough pass 9",
            "organization_name": "Dup Co",
        },
    )
    assert taken.status_code == 200 and b"already registered" in taken.content.lower()
    weak = client.post(
        "/signup/",
        {
            "name": "Weak",
            "email": "weak@x.example",
            "password": "123",
            "organization_name": "Weak Co",
        },
    )
    assert weak.status_code == 200 and b"too short" in weak.content


def test_a_deactivated_member_loses_access_at_once(client, cast):
    client.force_login(cast.agent)
    assert client.get("/o/acme/members/").status_code == 200
    admin = Client()
    admin.force_login(cast.admin)
    agent = Membership.objects.get(organization=cast.org_a, user=cast.agent)
    admin.post(f"/o/acme/members/{agent.pk}/deactivate/")

    assert client.get("/o/acme/members/").status_code == 404
    assert client.get("/api/v1/organization/", HTTP_X_ORGANIZATION="acme").status_code == 404
    assert AuditEvent.objects.filter(organization=cast.org_a, action="member.deactivated").exists()


def test_an_owner_hands_over_the_organization_from_settings(client, cast):
    client.force_login(cast.owner)
    admin = Membership.objects.get(organization=cast.org_a, user=cast.admin)
    response = client.post("/o/acme/settings/transfer/", {"member_id": admin.pk}, follow=True)
    assert b"now owns this organization" in response.content
    assert Membership.objects.get(pk=admin.pk).role == "owner"
    assert Membership.objects.get(organization=cast.org_a, user=cast.owner).role == "admin"


def test_a_member_leaves_and_is_sent_home(client, cast):
    client.force_login(cast.viewer)
    mine = Membership.objects.get(organization=cast.org_a, user=cast.viewer)
    response = client.post(f"/o/acme/members/{mine.pk}/remove/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Membership.objects.filter(pk=mine.pk).exists()


def test_an_owner_deletes_the_organization_after_typing_its_address(client, cast):
    from accounts.models import Organization

    client.force_login(cast.owner)
    wrong = client.post("/o/acme/settings/delete/", {"confirm": "acm"}, follow=True)
    assert b"to confirm" in wrong.content and Organization.objects.filter(slug="acme").exists()

    done = client.post("/o/acme/settings/delete/", {"confirm": "acme"})
    assert done.status_code == 302
    assert not Organization.objects.filter(slug="acme").exists()
    assert not Membership.objects.filter(user=cast.agent).exists()
    trace = AuditEvent.objects.get(action="organization.deleted")
    assert trace.organization is None and trace.data["slug"] == "acme"
    assert Organization.objects.filter(slug="bravo").exists()


def test_an_admin_saves_the_organizations_settings(client, cast):
    client.force_login(cast.admin)
    response = client.post(
        "/o/acme/settings/",
        {"name": "Acme Renamed", "timezone": "Asia/Hong_Kong", "default_country": "HK"},
    )
    assert response.status_code == 302
    cast.org_a.refresh_from_db()
    assert (cast.org_a.name, cast.org_a.timezone, cast.org_a.default_country) == (
        "Acme Renamed",
        "Asia/Hong_Kong",
        "HK",
    )
    event = AuditEvent.objects.get(organization=cast.org_a, action="organization.updated")
    assert event.data["changes"]["timezone"] == ["UTC", "Asia/Hong_Kong"]
