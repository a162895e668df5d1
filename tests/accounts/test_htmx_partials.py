"""htmx partials: the same view, the same tenancy, a fragment instead of a page."""

from __future__ import annotations

import re

import pytest

from accounts import services


@pytest.fixture
def many_events(cast):
    cast.org_a.timezone = "Asia/Hong_Kong"
    cast.org_a.save()
    for n in range(130):
        services.audit_record(organization=cast.org_a, action=f"probe.{n:03d}", actor=cast.owner)


def test_the_audit_log_loads_older_rows_as_a_fragment(cast, client, many_events):
    client.force_login(cast.owner)
    page = client.get("/o/acme/audit/").content.decode()
    assert "<html" in page and page.count('data-testid="audit-row"') == 100
    older = re.search(r'hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")

    fragment = client.get(older, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment
    assert fragment.count('data-testid="audit-row"') > 30
    assert 'hx-swap-oob="true"' in fragment
    assert "+08:00" in fragment  # the organization's time zone, as on the page


def test_a_partial_of_another_org_is_not_found(cast, client, many_events):
    client.force_login(cast.b_member)
    assert client.get("/o/acme/audit/", HTTP_HX_REQUEST="true").status_code == 404
