"""Django admin: every model is there for staff, with organization filters and search; nobody else gets in."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from accounts.models import User

PROJECT_APPS = ["crm", "accounts", "sessions_app", "messaging", "campaigns", "autoreply"]


def project_models():
    return [m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()]


def test_every_project_model_is_in_the_admin():
    missing = [m.__name__ for m in project_models() if m not in admin.site._registry]
    assert missing == []


def test_every_tenant_model_can_be_filtered_by_organization_and_searched():
    for model in project_models():
        if not any(f.name == "organization" for f in model._meta.get_fields()):
            continue
        model_admin = admin.site._registry[model]
        filters = [f if isinstance(f, str) else f[0] for f in model_admin.list_filter]
        assert "organization" in filters, model.__name__
        assert model_admin.search_fields, model.__name__


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("root@parley.example", "staff password 1")


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m.__name__)
def test_staff_see_each_changelist_with_filters_and_search(cast, staff, client, model):
    client.force_login(staff)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    assert client.get(url).status_code == 200
    assert client.get(url, {"q": "acme"}).status_code == 200
    if any(f.name == "organization" for f in model._meta.get_fields()):
        assert client.get(url, {"organization__id__exact": cast.org_a.pk}).status_code == 200


def test_a_member_who_is_not_staff_cannot_open_the_admin(cast, client):
    client.force_login(cast.owner)
    response = client.get("/admin/accounts/organization/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_login_is_throttled_like_the_dashboard(staff, client):
    for _ in range(5):
        client.post("/admin/login/", {"username": staff.email, "password": "wrong"})
    response = client.post(
        "/admin/login/", {"username": staff.email, "password": "staff password 1"}
    )
    assert response.status_code == 200  # the form again, not a redirect into the admin
    assert b"Too many failed attempts" in response.content


# The names staff read in the admin's index, written out: Django's default plural only appends
# an "s" ("Contact aliass", "Whats app sessions").
ADMIN_INDEX_NAMES = {
    "crm-workerheartbeat": "Worker heartbeats",
    "accounts-user": "Users",
    "accounts-organization": "Organizations",
    "accounts-membership": "Memberships",
    "accounts-invitation": "Invitations",
    "accounts-apikey": "API keys",
    "accounts-auditevent": "Audit log",
    "sessions_app-whatsappsession": "WhatsApp sessions",
    "sessions_app-sessionevent": "Session events",
    "sessions_app-webhookevent": "Webhook events",
    "messaging-contact": "Contacts",
    "messaging-contactidentity": "Contact identities",
    "messaging-contactalias": "Contact aliases",
    "messaging-tag": "Tags",
    "messaging-contacttag": "Contact tags",
    "messaging-contactgroup": "Contact groups",
    "messaging-contactgroupmember": "Contact group members",
    "messaging-contactnote": "Contact notes",
    "messaging-customfield": "Custom fields",
    "messaging-chat": "Chats",
    "messaging-message": "Messages",
    "messaging-reaction": "Reactions",
    "messaging-waitingevent": "Waiting events",
    "messaging-idempotencykey": "Idempotency keys",
    "messaging-chatnote": "Chat notes",
    "messaging-cannedreply": "Canned replies",
    "messaging-importjob": "Import jobs",
    "messaging-importcolumnmemory": "Remembered import columns",
    "messaging-bulkjob": "Bulk jobs",
    "messaging-bulkjobitem": "Bulk job items",
}


def test_the_admin_index_names_every_model_in_a_proper_plural(staff, client):
    client.force_login(staff)

    page = client.get("/admin/").content.decode()

    shown = dict(
        re.findall(r'<th scope="row" id="([\w-]+)">\s*<a href="[^"]*"[^>]*>([^<]+)</a>', page)
    )
    project = {k: v for k, v in shown.items() if k.split("-")[0] in PROJECT_APPS}
    assert project == ADMIN_INDEX_NAMES


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m.__name__)
def test_every_project_model_names_its_plural_itself(model):
    # A model added later gets a plural someone wrote, not the default "s" appended.
    assert "verbose_name" in model._meta.original_attrs
    assert "verbose_name_plural" in model._meta.original_attrs


def test_staff_set_an_organizations_webhook_retention_in_the_admin(cast, staff, client):
    # Given staff on an organization's change form
    client.force_login(staff)
    url = reverse("admin:accounts_organization_change", args=[cast.org_a.pk])
    page = client.get(url).content.decode()
    assert 'name="webhook_retention_days" value="7"' in page

    # When they keep its webhooks 30 days, then try 0
    form = {
        "name": cast.org_a.name,
        "slug": cast.org_a.slug,
        "timezone": cast.org_a.timezone,
        "default_country": cast.org_a.default_country,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    saved = client.post(url, {**form, "webhook_retention_days": "30"})
    refused = client.post(url, {**form, "webhook_retention_days": "0"})

    # Then 30 is kept and 0 refused
    assert saved.status_code == 302
    assert refused.status_code == 200
    assert b"Ensure this value is greater than or equal to 1" in refused.content
    cast.org_a.refresh_from_db()
    assert cast.org_a.webhook_retention_days == 30
