from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.support.people import PASSWORD, Cast, key_for, make_cast

pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture
def cast(db) -> Cast:
    return make_cast()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def api_key_for(cast):
    """``api_key_for(user, organization, role)`` → a raw bearer key created by that member."""

    def make(user, organization=None, role=None) -> str:
        organization = organization or cast.org_a
        return key_for(user, organization, role)

    return make


@pytest.fixture
def api(api_key_for):
    """``api(user)`` → an APIClient authenticated with a key of that member's role."""

    def make(user, organization=None, role=None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(user, organization, role)}")
        return client

    return make
