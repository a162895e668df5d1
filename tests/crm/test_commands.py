"""The operators' management commands, as an operator at a terminal sees them."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts import services
from accounts.models import AuditEvent, Invitation, Membership, Organization, User
from crm.models import WorkerHeartbeat
from sessions_app.models import WebhookEvent

STRONG = "a brand new harbour lantern"


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch):
    for name in ("PARLEY_ADMIN_PASSWORD", "PARLEY_NEW_PASSWORD", "PARLEY_DEMO_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def role_of(user: User, organization: Organization) -> str:
    return Membership.objects.get(user=user, organization=organization).role


# --- create_organization ------------------------------------------------------------------------


def test_it_creates_an_organization_owned_by_an_existing_user(cast):
    out = run(
        "create_organization", "Harbour Foods", "--owner", cast.outsider.email, "--country", "HK"
    )

    organization = Organization.objects.get(name="Harbour Foods")
    assert out.strip().splitlines()[-1] == organization.slug == "harbour-foods"
    assert organization.default_country == "HK"
    assert role_of(cast.outsider, organization) == "owner"


def test_it_refuses_an_organization_for_an_unknown_owner(cast):
    with pytest.raises(CommandError, match=r"No user with email 'ghost@x\.example'"):
        run("create_organization", "Ghost Co", "--owner", "ghost@x.example")

    assert not Organization.objects.filter(name="Ghost Co").exists()


def test_it_refuses_a_taken_slug(cast):
    with pytest.raises(CommandError, match="taken"):
        run("create_organization", "Other", "--owner", cast.outsider.email, "--slug", "acme")


# --- create_admin -------------------------------------------------------------------------------


def test_it_creates_a_superuser_who_can_sign_in_to_the_admin(db, client):
    out = run("create_admin", "root@ops.example", "--password", STRONG, "--name", "Ops")

    assert "root@ops.example" in out
    user = User.objects.get(email="root@ops.example")
    assert user.is_staff and user.is_superuser
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "root@ops.example", "password": STRONG}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_it_reads_the_admin_password_from_the_environment(db, client, monkeypatch):
    monkeypatch.setenv("PARLEY_ADMIN_PASSWORD", STRONG)

    run("create_admin", "env@ops.example")

    assert client.login(username="env@ops.example", password=STRONG)


def test_it_makes_the_new_admin_a_member_when_asked(cast):
    run(
        "create_admin",
        "helper@ops.example",
        "--password",
        STRONG,
        "--organization",
        "acme",
        "--role",
        "admin",
    )

    assert role_of(User.objects.get(email="helper@ops.example"), cast.org_a) == "admin"


def test_it_refuses_an_existing_email(cast, password):
    with pytest.raises(CommandError, match="already exists"):
        run("create_admin", "OWNER@a.example", "--password", STRONG)

    cast.owner.refresh_from_db()
    assert not cast.owner.is_superuser
    assert cast.owner.check_password(password)


def test_it_promotes_an_existing_account_with_update(cast, client):
    run("create_admin", cast.viewer.email, "--update", "--password", STRONG)

    cast.viewer.refresh_from_db()
    assert cast.viewer.is_superuser and cast.viewer.is_staff
    assert client.login(username=cast.viewer.email, password=STRONG)
    assert AuditEvent.objects.filter(
        action="user.superuser_granted", target_id=str(cast.viewer.pk), actor=None
    ).exists()


def test_it_refuses_an_admin_without_a_password_when_not_interactive(db):
    with pytest.raises(CommandError, match="password"):
        run("create_admin", "nopass@ops.example", "--no-input")

    assert not User.objects.filter(email="nopass@ops.example").exists()


def test_it_refuses_a_weak_admin_password(db):
    with pytest.raises(CommandError, match="too short"):
        run("create_admin", "weak@ops.example", "--password", "abc")

    assert not User.objects.filter(email="weak@ops.example").exists()


def test_it_refuses_an_admin_for_an_unknown_organization(db):
    with pytest.raises(CommandError, match="No organization with slug 'nowhere'"):
        run(
            "create_admin",
            "lost@ops.example",
            "--password",
            STRONG,
            "--organization",
            "nowhere",
            "--role",
            "agent",
        )

    assert not User.objects.filter(email="lost@ops.example").exists()


# --- list_users ---------------------------------------------------------------------------------


def test_it_lists_users_with_their_roles_as_json(cast):
    rows = json.loads(run("list_users", "--json"))

    by_email = {row["email"]: row for row in rows}
    assert set(by_email) >= {"owner@a.example", "agent@a.example", "nobody@c.example"}
    assert [(o["slug"], o["role"]) for o in by_email["owner@a.example"]["organizations"]] == [
        ("acme", "owner")
    ]
    assert by_email["nobody@c.example"]["organizations"] == []


def test_it_lists_only_the_members_of_one_organization(cast):
    rows = json.loads(run("list_users", "--organization", "bravo", "--json"))

    assert [row["email"] for row in rows] == ["boss@b.example"]


def test_it_lists_users_as_a_table(cast):
    out = run("list_users")

    line = next(line for line in out.splitlines() if line.startswith("viewer@a.example"))
    assert "acme:viewer" in line


def test_it_refuses_to_list_an_unknown_organization(cast):
    with pytest.raises(CommandError, match="No organization with slug 'nowhere'"):
        run("list_users", "--organization", "nowhere")


# --- update_role --------------------------------------------------------------------------------


def test_it_changes_a_role_and_writes_an_audit_event(cast):
    out = run("update_role", cast.agent.email, "admin", "--organization", "acme")

    assert "now admin" in out
    assert role_of(cast.agent, cast.org_a) == "admin"
    event = AuditEvent.objects.get(organization=cast.org_a, action="member.role_changed")
    assert event.actor is None
    assert event.target_label == cast.agent.email
    assert event.data == {"from": "agent", "to": "admin", "via": "cli"}


def test_it_refuses_to_demote_the_last_owner(cast):
    with pytest.raises(CommandError, match="last owner"):
        run("update_role", cast.owner.email, "admin", "--organization", "acme")

    assert role_of(cast.owner, cast.org_a) == "owner"
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()


def test_it_demotes_an_owner_when_another_owner_remains(cast):
    run("update_role", cast.admin.email, "owner", "--organization", "acme")

    run("update_role", cast.owner.email, "agent", "--organization", "acme")

    assert role_of(cast.owner, cast.org_a) == "agent"


def test_it_caps_the_api_keys_of_a_demoted_member(cast, api_key_for):
    api_key_for(cast.admin)

    run("update_role", cast.admin.email, "viewer", "--organization", "acme")

    assert set(cast.org_a.api_keys.values_list("role", flat=True)) == {"viewer"}


def test_it_refuses_an_unknown_role(cast):
    with pytest.raises(CommandError, match="Unknown role 'boss'"):
        run("update_role", cast.agent.email, "boss", "--organization", "acme")

    assert role_of(cast.agent, cast.org_a) == "agent"


def test_it_refuses_a_role_in_an_organization_the_user_is_not_in(cast):
    with pytest.raises(CommandError, match="not a member of bravo"):
        run("update_role", cast.agent.email, "admin", "--organization", "bravo")


def test_it_refuses_a_role_for_an_unknown_email(cast):
    with pytest.raises(CommandError, match="No user with email"):
        run("update_role", "ghost@x.example", "admin", "--organization", "acme")


def test_it_refuses_a_role_in_an_unknown_organization(cast):
    with pytest.raises(CommandError, match="No organization with slug"):
        run("update_role", cast.agent.email, "admin", "--organization", "nowhere")


# --- reset_password -----------------------------------------------------------------------------


def test_it_resets_a_password(cast, client, password):
    run("reset_password", cast.agent.email, "--password", STRONG)

    assert not client.login(username=cast.agent.email, password=password)
    assert client.login(username=cast.agent.email, password=STRONG)


def test_it_reads_the_new_password_from_the_environment(cast, client, monkeypatch):
    monkeypatch.setenv("PARLEY_NEW_PASSWORD", STRONG)

    run("reset_password", cast.agent.email)

    assert client.login(username=cast.agent.email, password=STRONG)


def test_it_refuses_a_weak_password_and_keeps_the_old_one(cast, client, password):
    with pytest.raises(CommandError, match=r"too common|too short"):
        run("reset_password", cast.agent.email, "--password", "password")

    assert client.login(username=cast.agent.email, password=password)


def test_it_refuses_a_reset_without_a_password_when_not_interactive(cast):
    with pytest.raises(CommandError, match="--password"):
        run("reset_password", cast.agent.email, "--no-input")


def test_it_refuses_to_reset_an_unknown_email(db):
    with pytest.raises(CommandError, match=r"No user with email 'ghost@x\.example'"):
        run("reset_password", "ghost@x.example", "--password", STRONG)


# --- delete_user --------------------------------------------------------------------------------


def test_it_deletes_a_user(cast):
    out = run("delete_user", cast.agent.email, "--yes")

    assert "Deleted agent@a.example" in out
    assert not User.objects.filter(email=cast.agent.email).exists()
    assert AuditEvent.objects.filter(
        organization=cast.org_a, action="member.removed", target_label=cast.agent.email
    ).exists()


def test_it_refuses_to_delete_the_last_owner(cast):
    with pytest.raises(CommandError, match="last owner of Acme Trading"):
        run("delete_user", cast.owner.email, "--yes")

    assert User.objects.filter(pk=cast.owner.pk).exists()


def test_it_does_not_delete_without_confirmation_when_not_interactive(cast):
    with pytest.raises(CommandError, match="--yes"):
        run("delete_user", cast.agent.email)

    assert User.objects.filter(pk=cast.agent.pk).exists()


def test_it_refuses_to_delete_an_unknown_email(db):
    with pytest.raises(CommandError, match="No user with email"):
        run("delete_user", "ghost@x.example", "--yes")


# --- show_stats ---------------------------------------------------------------------------------


def test_it_counts_per_organization(cast, api_key_for):
    services.invitation_create(
        organization=cast.org_a, email="new@a.example", role="agent", actor=cast.owner
    )
    api_key_for(cast.admin)
    WorkerHeartbeat.objects.create(hostname="worker-1", last_seen_at=timezone.now(), beats=3)

    stats = json.loads(run("show_stats", "--json"))

    rows = {row["slug"]: row for row in stats["organizations"]["rows"]}
    assert rows["acme"] == {
        "slug": "acme",
        "name": "Acme Trading",
        "members": 4,
        "invitations_pending": 1,
        "api_keys_active": 1,
        "audit_events_24h": 2,  # organization.created, invitation.created
    }
    assert rows["bravo"]["members"] == 1
    totals = stats["organizations"]["totals"]
    assert totals["organizations"] == 2 and totals["members"] == 5
    assert totals["users"] == {"all": 6, "active": 6}
    assert stats["worker"]["hostname"] == "worker-1"


def test_it_leaves_out_old_audit_events_and_inactive_members(cast):
    AuditEvent.objects.filter(organization=cast.org_a).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    Membership.objects.filter(user=cast.viewer).update(is_active=False)

    stats = json.loads(run("show_stats", "--json"))

    acme = next(row for row in stats["organizations"]["rows"] if row["slug"] == "acme")
    assert acme["audit_events_24h"] == 0
    assert acme["members"] == 3


def test_it_says_when_no_worker_has_reported(cast):
    out = run("show_stats")

    assert "Acme Trading" in out
    assert "no heartbeat yet" in out


# --- seed_demo ----------------------------------------------------------------------------------


def _demo_counts() -> dict[str, int]:
    demo = Organization.objects.get(slug="demo")
    return {
        "users": User.objects.count(),
        "organizations": Organization.objects.count(),
        "members": demo.memberships.count(),
        "invitations": Invitation.objects.filter(organization=demo).count(),
        "audit": AuditEvent.objects.filter(organization=demo).count(),
    }


def test_it_seeds_the_demo_once(db, settings):
    settings.SITE_URL = "https://parley.example"

    first = run("seed_demo")
    counts = _demo_counts()
    second = run("seed_demo")
    forced = run("seed_demo", "--force")

    assert counts["members"] == 4 and counts["invitations"] == 4
    demo = Organization.objects.get(slug="demo")
    assert demo.name == "Demo Co"
    assert {m.user.email: m.role for m in demo.memberships.select_related("user")} == {
        "demo@parley.local": "owner",
        "admin@parley.local": "admin",
        "agent@parley.local": "agent",
        "viewer@parley.local": "viewer",
    }
    assert [i.email for i in demo.invitations.all() if i.state == "pending"] == [
        "invited@parley.local"
    ]
    assert "demo data already present" in second
    assert _demo_counts() == counts
    login_line = "Log in at https://parley.example/login/ as demo@parley.local / "
    assert login_line in first and login_line in second and login_line in forced


def test_it_lets_the_demo_owner_log_in(db, client, monkeypatch):
    monkeypatch.setenv("PARLEY_DEMO_PASSWORD", STRONG)

    out = run("seed_demo")

    assert f"demo@parley.local / {STRONG}" in out
    assert client.login(username="demo@parley.local", password=STRONG)
    assert client.login(username="viewer@parley.local", password=STRONG)


def test_it_seeds_with_the_default_password(db, client):
    out = run("seed_demo")

    password = out.strip().splitlines()[-1].rsplit(" / ", 1)[1]
    assert client.login(username="demo@parley.local", password=password)


def test_it_shows_the_inbound_queue_backlog(cast):
    # Given two webhooks waiting to be applied, the older due five minutes ago, and one waiting
    due = timezone.now() - timedelta(minutes=5)
    for n, state in enumerate(["pending", "pending", "waiting", "done"]):
        WebhookEvent.objects.create(
            organization=cast.org_a,
            provider="simulator",
            dedupe_key=f"k{n}",
            state=state,
            received_at=due,
            available_at=due + timedelta(seconds=n),
        )

    stats = json.loads(run("show_stats", "--json"))
    text = run("show_stats")

    queue = stats["inbound_queue"]
    assert (queue["pending"], queue["waiting"]) == (2, 1)
    assert 300 <= queue["oldest_due_age_s"] < 360
    assert "Inbound webhook queue" in text and "pending: 2" in text


def test_it_shows_an_empty_inbound_queue(cast):
    stats = json.loads(run("show_stats", "--json"))

    assert stats["inbound_queue"] == {"pending": 0, "waiting": 0, "oldest_due_age_s": None}
