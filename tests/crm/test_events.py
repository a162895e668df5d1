"""The event dispatcher: announcements after commit, held and merged inside ``coalesced()``."""

from __future__ import annotations

import pytest
from django.db import transaction

from crm import events as bus


@pytest.fixture
def heard():
    seen: list[dict] = []

    def record(**payload):
        seen.append(payload)

    bus.subscribe("test.thing", record)
    yield seen
    bus.unsubscribe("test.thing", record)


@pytest.mark.django_db(transaction=True)
def test_a_batch_announces_once_per_organization_with_its_ids_joined(heard):
    with bus.coalesced(), transaction.atomic():
        bus.publish_on_commit("test.thing", organization_id=1, ids=[1, 2])
        bus.publish_on_commit("test.thing", organization_id=2, ids=[3])
        bus.publish_on_commit("test.thing", organization_id=1, ids=[2, 4])
        assert heard == []  # nothing before the commit

    assert heard == [{"organization_id": 1, "ids": [1, 2, 4]}, {"organization_id": 2, "ids": [3]}]


@pytest.mark.django_db(transaction=True)
def test_work_rolled_back_inside_a_batch_announces_nothing(heard):
    with bus.coalesced(), transaction.atomic():
        bus.publish_on_commit("test.thing", organization_id=1, ids=[1])
        try:
            with transaction.atomic():  # a bad row's savepoint
                bus.publish_on_commit("test.thing", organization_id=1, ids=[666])
                raise RuntimeError
        except RuntimeError:
            pass

    assert heard == [{"organization_id": 1, "ids": [1]}]


@pytest.mark.django_db(transaction=True)
def test_outside_a_batch_each_announcement_goes_out_on_its_commit(heard):
    with transaction.atomic():
        bus.publish_on_commit("test.thing", organization_id=1, ids=[1])
    with transaction.atomic():
        bus.publish_on_commit("test.thing", organization_id=1, ids=[2])

    assert heard == [{"organization_id": 1, "ids": [1]}, {"organization_id": 1, "ids": [2]}]
