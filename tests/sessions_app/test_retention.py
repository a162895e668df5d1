"""Pruning the inbound queue: applied rows go after their organization's retention, failed and
unreadable ones later, rows still to apply never; in batches, a constant number of statements per
batch; erasure keeps working."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Organization
from sessions_app import queue, services
from sessions_app.models import WebhookEvent, WebhookState
from sessions_app.retention import webhooks_prune
from sessions_app.tasks import prune_webhooks

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
_serial = itertools.count()


@pytest.fixture(autouse=True)
def _failed_kept_30_days(settings):
    settings.PARLEY_WEBHOOK_FAILED_RETENTION_DAYS = 30


@pytest.fixture
def session_a(cast):
    return services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "A", "provider": "simulator"}
    )


@pytest.fixture
def session_b(cast):
    return services.session_create(
        organization=cast.org_b, actor=cast.b_member, data={"name": "B", "provider": "simulator"}
    )


def row(
    session,
    state: str,
    *,
    days: float,
    processed: bool = True,
    body: str = '{"type":"message"}',
    organization=...,
) -> WebhookEvent:
    """A row of ``session`` in ``state``, received ``days`` before NOW and processed a second
    later (or never)."""
    received = NOW - dt.timedelta(days=days)
    return WebhookEvent.objects.create(
        organization=session.organization if organization is ... else organization,
        session=session,
        provider=session.provider,
        body=body,
        dedupe_key=f"key-{next(_serial)}",
        state=state,
        received_at=received,
        available_at=received,
        processed_at=received + dt.timedelta(seconds=1) if processed else None,
    )


def left(*rows: WebhookEvent) -> list[bool]:
    """For each row, whether it is still there."""
    there = set(
        WebhookEvent.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", flat=True)
    )
    return [r.pk in there for r in rows]


def test_it_deletes_applied_rows_past_the_retention_and_keeps_recent_ones(session_a):
    # Given applied rows of an organization keeping them 7 days, some older than that
    old_done = row(session_a, WebhookState.DONE, days=8)
    old_ignored = row(session_a, WebhookState.IGNORED, days=7.1)
    recent_done = row(session_a, WebhookState.DONE, days=6.9)
    recent_ignored = row(session_a, WebhookState.IGNORED, days=1)

    # When the queue is pruned
    deleted = webhooks_prune(now=NOW)

    # Then only the older ones went
    assert deleted == 2
    assert left(old_done, old_ignored, recent_done, recent_ignored) == [False, False, True, True]


def test_it_counts_a_rows_age_from_its_receipt_when_it_was_never_processed(session_a):
    never_processed = row(session_a, WebhookState.DONE, days=8, processed=False)
    recent = row(session_a, WebhookState.DONE, days=6, processed=False)

    webhooks_prune(now=NOW)

    assert left(never_processed, recent) == [False, True]


def test_it_never_deletes_rows_still_to_apply(session_a):
    # Given rows a year old that were never applied: due, held back, waiting for a subscriber
    pending = row(session_a, WebhookState.PENDING, days=365, processed=False)
    retried = row(session_a, WebhookState.PENDING, days=365)  # failed once, to be retried
    waiting = row(session_a, WebhookState.WAITING, days=365)

    deleted = webhooks_prune(now=NOW)

    assert deleted == 0
    assert left(pending, retried, waiting) == [True, True, True]


def test_it_keeps_failed_and_unreadable_rows_for_the_longer_period(session_a):
    # Given rows that failed or could not be read (stored unprocessed), 8 and 31 days old
    failed_8 = row(session_a, WebhookState.FAILED, days=8)
    invalid_8 = row(session_a, WebhookState.INVALID, days=8, processed=False)
    failed_31 = row(session_a, WebhookState.FAILED, days=31)
    invalid_31 = row(session_a, WebhookState.INVALID, days=31, processed=False)

    # When pruned, with applied rows kept 7 days and failed ones 30
    deleted = webhooks_prune(now=NOW)

    # Then they stay past the 7 days, for inspection, and go after 30
    assert deleted == 2
    assert left(failed_8, invalid_8, failed_31, invalid_31) == [True, True, False, False]


def test_failed_rows_are_kept_at_least_as_long_as_applied_ones(cast, session_a):
    # Given an organization keeping applied rows 60 days, longer than failed ones are kept
    Organization.objects.filter(pk=cast.org_a.pk).update(webhook_retention_days=60)
    failed = row(session_a, WebhookState.FAILED, days=45)
    done = row(session_a, WebhookState.DONE, days=45)

    webhooks_prune(now=NOW)

    assert left(failed, done) == [True, True]


def test_each_organization_keeps_its_rows_as_long_as_it_chose(cast, session_a, session_b):
    # Given org A keeps applied webhooks 2 days and org B 10
    Organization.objects.filter(pk=cast.org_a.pk).update(webhook_retention_days=2)
    Organization.objects.filter(pk=cast.org_b.pk).update(webhook_retention_days=10)
    a_3_days = row(session_a, WebhookState.DONE, days=3)
    a_1_day = row(session_a, WebhookState.DONE, days=1)
    b_3_days = row(session_b, WebhookState.DONE, days=3)
    b_9_days = row(session_b, WebhookState.IGNORED, days=9)
    b_11_days = row(session_b, WebhookState.DONE, days=11)

    # When pruned
    webhooks_prune(now=NOW)

    # Then each organization's own retention decided
    assert left(a_3_days, a_1_day, b_3_days, b_9_days, b_11_days) == [
        False,
        True,
        True,
        True,
        False,
    ]


def test_a_row_of_no_organization_is_kept_the_default_seven_days(cast, session_a):
    Organization.objects.filter(pk=cast.org_a.pk).update(webhook_retention_days=1)
    orphan_6 = row(session_a, WebhookState.DONE, days=6, organization=None)
    orphan_8 = row(session_a, WebhookState.DONE, days=8, organization=None)
    orphan_failed_8 = row(session_a, WebhookState.FAILED, days=8, organization=None)

    webhooks_prune(now=NOW)

    assert left(orphan_6, orphan_8, orphan_failed_8) == [True, False, True]


def deletes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("DELETE")]


def test_it_deletes_in_batches_until_none_are_left(session_a):
    # Given 5 rows past the retention
    old = [row(session_a, WebhookState.DONE, days=8) for _ in range(5)]
    kept = row(session_a, WebhookState.DONE, days=1)

    # When pruned 2 at a time
    with CaptureQueriesContext(connection) as ctx:
        deleted = webhooks_prune(now=NOW, batch=2)

    # Then all 5 went, in batches of at most 2: 2, 2, 1 (a short batch ends the loop)
    assert deleted == 5
    assert left(*old, kept) == [False] * 5 + [True]
    applied = [sql for sql in deletes(ctx.captured_queries) if "'done'" in sql]
    assert all("LIMIT 2" in sql for sql in applied)
    assert len([sql for sql in applied if "IS NULL" not in sql]) == 3


def test_no_batch_starts_after_the_deadline_and_the_next_run_finishes(session_a):
    old = [row(session_a, WebhookState.DONE, days=8) for _ in range(3)]

    stopped = webhooks_prune(now=NOW, batch=2, deadline=time.monotonic())
    assert stopped == 0 and left(*old) == [True] * 3

    assert webhooks_prune(now=NOW, batch=2, deadline=time.monotonic() + 60) == 3
    assert left(*old) == [False] * 3


def test_the_statements_do_not_grow_with_the_number_of_organizations(cast, session_a):
    # Given one row to prune, and the statements that takes with two organizations
    row(session_a, WebhookState.DONE, days=8)
    with CaptureQueriesContext(connection) as few:
        assert webhooks_prune(now=NOW) == 1

    # When 50 more organizations, with the same retention, have rows to prune
    sessions = []
    for n in range(50):
        org = Organization.objects.create(name=f"Org {n}", slug=f"org-{n}")
        sessions.append(
            services.session_create(
                organization=org, actor=None, data={"name": "S", "provider": "simulator"}
            )
        )
    for session in sessions:
        row(session, WebhookState.DONE, days=8)
    with CaptureQueriesContext(connection) as many:
        deleted = webhooks_prune(now=NOW)

    # Then they go in the same number of statements
    assert deleted == 50
    assert len(deletes(many.captured_queries)) == len(deletes(few.captured_queries))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_erasure_still_forgets_a_person_after_pruning(cast, session_a):
    # Given a person's webhooks: one old, one recent, one not applied yet; and someone else's
    number = "447957189696"
    body = f'{{"type":"message","from":"{number}"}}'
    old = row(session_a, WebhookState.DONE, days=8, body=body)
    recent = row(session_a, WebhookState.DONE, days=1, body=body)
    pending = row(session_a, WebhookState.PENDING, days=0, processed=False, body=body)
    other = row(session_a, WebhookState.DONE, days=1, body='{"from":"85291234567"}')

    # When the queue is pruned, then the person is forgotten
    webhooks_prune(now=NOW)
    forgotten = queue.forget(organization_id=cast.org_a.pk, needles=[number])

    # Then pruning took the old row, erasure the recent one; the pending one and the other stay
    assert forgotten == 1
    assert left(old, recent, pending, other) == [False, False, True, True]


def test_the_task_prunes_and_a_second_run_deletes_nothing_more(session_a):
    # Given a row far past any retention
    old = row(session_a, WebhookState.DONE, days=400)

    # When the task runs, and runs again (a redelivery)
    first = prune_webhooks.apply().get()
    second = prune_webhooks.apply().get()

    assert (first, second) == (1, 0)
    assert left(old) == [False]


def test_beat_prunes_every_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["sessions-prune-webhooks"]

    assert entry == {"task": "sessions_app.tasks.prune_webhooks", "schedule": 3600.0}


@pytest.mark.parametrize("days", [0, 366])
def test_a_retention_out_of_range_is_refused(cast, days):
    cast.org_a.webhook_retention_days = days

    with pytest.raises(ValidationError) as refused:
        cast.org_a.full_clean()

    assert "webhook_retention_days" in refused.value.message_dict


def test_the_database_refuses_a_retention_of_zero_days(cast):
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.filter(pk=cast.org_a.pk).update(webhook_retention_days=0)


def test_a_new_organization_keeps_webhooks_seven_days(cast):
    assert cast.org_a.webhook_retention_days == 7
