"""Django admin: every model is there for staff, with organization filters and search; nobody else gets in."""

from __future__ import annotations

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
