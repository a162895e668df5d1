"""The accounts dashboard, page by page, through Django's test client."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.test import Client

from accounts import services
from accounts.models import ApiKey, AuditEvent, Membership, Organization, User

pytestmark = pytest.mark.django_db

INVITATION_LINK = re.compile(r"https?://[^/\s]+(/invitations/[^/\s]+/)")
RAW_KEY = re.compile(r'<code id="raw-api-key">([^<]+)</code>')


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def membership_of(user: User, organization: Organization) -> Membership:
    return Membership.objects.get(user=user, organization=organization)


# --- Sign-up and login --------------------------------------------------------------------------


def test_it_creates_the_organization_on_sign_up_and_lands_on_its_home_as_owner(client, password):
    # Given a visitor on the sign-up page
    assert client.get("/signup/").status_code == 200

    # When they sign up with a name, email, password and organization name
    response = client.post(
        "/signup/",
        {
            "name": "Sam Seller",
            "email": "sam@sunrise.example",
            "password": password,
            "organization_name": "Sunrise Bakery",
        },
        follow=True,
    )

    # Then they land on the new organization's home, as its owner
    assert response.redirect_chain[-1][0] == "/o/sunrise-bakery/"
    html = response.content.decode()
    assert "Sunrise Bakery" in html
    assert 'data-org-slug="sunrise-bakery"' in html
    assert "Sunrise Bakery is ready." in html
    user = User.objects.get(email="sam@sunrise.example")
    assert membership_of(user, Organization.objects.get(slug="sunrise-bakery")).role == "owner"


def test_it_shows_a_closed_page_when_sign_up_is_disabled(client, settings):
    # Given an installation with sign-up turned off
    settings.PARLEY_SIGNUP_ENABLED = False

    # When a visitor opens the sign-up page
    response = client.get("/signup/")

    # Then they are told sign-up is closed, and the login page offers no sign-up link
    assert response.status_code == 403
    assert "Sign-up is closed" in response.content.decode()
    assert 'id="signup-link"' not in client.get("/login/").content.decode()


def test_it_signs_a_member_in_and_opens_their_organization(client, cast, password):
    response = client.post(
        "/login/", {"username": cast.agent.email, "password": password}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/o/acme/"
    assert "Acme Trading" in response.content.decode()


def test_it_locks_the_account_after_repeated_wrong_passwords(client, cast, password):
    # Given six wrong passwords in a row
    for _attempt in range(6):
        response = client.post("/login/", {"username": cast.agent.email, "password": "wrong"})
        assert response.status_code == 200

    # When the right password is finally typed
    response = client.post("/login/", {"username": cast.agent.email, "password": password})

    # Then the account is still locked out
    assert response.status_code == 200
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- Members ------------------------------------------------------------------------------------


def test_it_lists_the_members_and_shows_a_viewer_no_role_controls(client, cast):
    response = signed_in(client, cast.viewer).get("/o/acme/members/")

    html = response.content.decode()
    assert response.status_code == 200
    for person in (cast.owner, cast.admin, cast.agent, cast.viewer):
        assert person.email in html
    assert cast.b_member.email not in html
    assert html.count('data-testid="member-row"') == 4
    assert 'name="role"' not in html
    assert 'data-testid="deactivate"' not in html
    assert 'data-testid="leave"' in html  # a viewer may still leave


def test_it_lets_an_admin_change_a_role_and_records_it_in_the_audit_log(client, cast):
    # Given an admin on the members page, which offers role controls
    signed_in(client, cast.admin)
    assert 'name="role"' in client.get("/o/acme/members/").content.decode()
    agent = membership_of(cast.agent, cast.org_a)

    # When they make the agent a viewer
    response = client.post(f"/o/acme/members/{agent.pk}/role/", {"role": "viewer"}, follow=True)

    # Then the page confirms it, the row shows the new role, and the audit log has the event
    html = response.content.decode()
    assert "Role updated." in html
    assert f'data-email="{cast.agent.email}" data-role="viewer"' in html
    assert membership_of(cast.agent, cast.org_a).role == "viewer"
    assert "member.role_changed" in client.get("/o/acme/audit/").content.decode()


def test_it_hides_another_organizations_members_page(client, cast):
    response = signed_in(client, cast.b_member).get("/o/acme/members/")

    assert response.status_code == 404
    assert cast.owner.email not in response.content.decode()


# --- Invitations --------------------------------------------------------------------------------


def test_it_emails_an_invitation_whose_link_creates_the_account_and_membership(
    client, cast, password, django_capture_on_commit_callbacks
):
    # Given an admin inviting a newcomer
    signed_in(client, cast.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/o/acme/invitations/", {"email": "newbie@a.example", "role": "agent"}, follow=True
        )
    assert "Invitation sent to newbie@a.example." in response.content.decode()

    # Then the newcomer gets an email with a link
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newbie@a.example"]
    link = INVITATION_LINK.search(mail.outbox[0].body).group(1)

    # When they open it in their own browser and choose a name and password
    newcomer = Client()
    page = newcomer.get(link)
    assert page.status_code == 200
    assert "Accept invitation" in page.content.decode()
    response = newcomer.post(link, {"name": "Nina Newbie", "password": password}, follow=True)

    # Then they have an account, a membership, and they are in the organization
    assert response.redirect_chain[-1][0] == "/o/acme/"
    assert "You joined Acme Trading." in response.content.decode()
    user = User.objects.get(email="newbie@a.example")
    assert membership_of(user, cast.org_a).role == "agent"
    assert newcomer.get(link).status_code == 410  # the link works once


def invite(cast, email: str) -> str:
    """An admin of org A invites ``email``; returns the link's path."""
    _invitation, token = services.invitation_create(
        organization=cast.org_a, email=email, role="agent", actor=cast.admin
    )
    return f"/invitations/{token}/"


def test_it_tells_someone_signed_in_as_another_person_to_log_out_first(client, cast):
    link = invite(cast, "newbie@a.example")

    html = signed_in(client, cast.outsider).get(link).content.decode()

    assert 'id="wrong-account"' in html
    assert "You are signed in as nobody@c.example" in html
    assert 'action="/logout/"' in html
    assert "Accept invitation" not in html


def test_it_sends_an_invited_person_with_an_account_to_log_in_first(client, cast):
    link = invite(cast, cast.b_member.email)

    html = client.get(link).content.decode()

    assert f'href="/login/?next={link}"' in html
    assert 'name="password"' not in html


# --- API keys -----------------------------------------------------------------------------------


def test_it_shows_a_new_api_key_once_and_the_key_works_until_revoked(client, cast):
    # Given an admin creating a key on the API keys page
    signed_in(client, cast.admin)
    response = client.post("/o/acme/api-keys/", {"name": "Zapier", "role": "agent"})
    html = response.content.decode()
    assert "Copy this key now: it will not be shown again" in html
    raw = RAW_KEY.search(html).group(1)

    # Then the page never shows it again
    assert raw not in client.get("/o/acme/api-keys/").content.decode()

    # And the key authenticates against the API
    api = Client()
    me = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert me.status_code == 200, me.content

    # When the admin revokes it
    key = ApiKey.objects.get(organization=cast.org_a, name="Zapier")
    response = client.post(f"/o/acme/api-keys/{key.pk}/revoke/", follow=True)
    assert f"Key {key.prefix} revoked." in response.content.decode()

    # Then the API refuses it at once
    assert api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_it_forbids_an_agent_the_api_keys_page(client, cast):
    response = signed_in(client, cast.agent).get("/o/acme/api-keys/")

    assert response.status_code == 403
    assert "You do not have permission to do this." in response.content.decode()


def test_it_shows_admin_pages_in_the_navigation_only_to_admins(client, cast):
    agent_html = signed_in(client, cast.agent).get("/o/acme/").content.decode()
    admin_html = signed_in(Client(), cast.admin).get("/o/acme/").content.decode()

    assert "/o/acme/api-keys/" not in agent_html
    assert "/o/acme/api-keys/" in admin_html
    assert "/o/acme/audit/" in admin_html


# --- Time zones ---------------------------------------------------------------------------------


def test_it_shows_dates_in_the_organizations_time_zone(client, cast):
    # Given an organization in Hong Kong (UTC+8) and an event at 01:30 UTC
    cast.org_a.timezone = "Asia/Hong_Kong"
    cast.org_a.save(update_fields=["timezone"])
    AuditEvent.objects.create(
        organization=cast.org_a,
        action="probe.timezone",
        actor_label="probe",
        created_at=datetime(2024, 3, 1, 1, 30, tzinfo=UTC),
    )

    # When an admin reads the audit log
    response = signed_in(client, cast.admin).get("/o/acme/audit/", {"action": "probe."})

    # Then the time shows as 09:30, Hong Kong time
    html = response.content.decode()
    assert "2024-03-01 09:30:00" in html
    assert "2024-03-01 01:30:00" not in html
