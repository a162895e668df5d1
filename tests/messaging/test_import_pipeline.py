"""The import's fast path on PostgreSQL: parallel writers committing in file order, the serial
fallback when a parallel batch fails, the committed prefix when a run dies, the paused collector,
and the one-regex email check.

These run outside a test transaction (the writers use their own connections and must see the
job), so they use a transactional database.
"""

from __future__ import annotations

import gc
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.collector import collector_paused
from messaging.models import Contact, ContactIdentity, ContactTag, ImportJob, JobState
from messaging.services import contacts as contact_services
from messaging.services import imports
from tests.messaging.test_import import report_rows, run, upload

pytestmark = pytest.mark.django_db(transaction=True)


def people(count: int, *, start: int = 1, tags: str | None = "vip") -> str:
    tail = f",{tags}" if tags is not None else ""
    return "".join(f"Person {n},+4477009{n:05d}{tail}\n" for n in range(start, start + count))


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 4)
    pushes: list[dict] = []
    monkeypatch.setattr(imports, "push", lambda group, event, data: pushes.append(dict(data)))
    return pushes


@pytest.fixture
def writer_threads(monkeypatch):
    """Names of the threads that wrote batches in parallel."""
    names: list[str] = []
    real = imports._Writers._write

    def spy(self, item):
        names.append(threading.current_thread().name)
        return real(self, item)

    monkeypatch.setattr(imports._Writers, "_write", spy)
    return names


def test_parallel_writers_import_the_file_in_order(cast, small_batches, writer_threads):
    # Given 20 rows, one of them bad, read four at a time
    content = "name,phone,tags\n" + people(10) + "Broken,not a phone,vip\n" + people(9, start=11)
    job = run(cast, upload(cast, content))
    # Then every good row became one contact, written by the writer threads
    assert job.state == JobState.DONE
    assert (job.created_count, job.error_count, job.processed_rows) == (19, 1, 20)
    assert {name.rsplit("-", 1)[0] for name in writer_threads} == {"import-writer"}
    assert len(writer_threads) == 5
    assert Contact.objects.filter(organization=cast.org_a).count() == 19
    assert ContactTag.objects.filter(organization=cast.org_a).count() == 19
    # And the dashboards saw the counts grow batch by batch, in file order
    running = [p["processed_rows"] for p in small_batches if p["state"] == "running"]
    assert running == [4, 8, 12, 16, 20]
    assert report_rows(job)[1][0] == "12"
    stored = ImportJob.objects.get(pk=job.pk)
    assert (stored.created_count, stored.processed_rows, stored.error_count) == (19, 20, 1)


def test_a_batch_matching_existing_contacts_is_merged_between_parallel_ones(
    cast, small_batches, writer_threads
):
    # Given a contact that row 7 of the file matches
    existing = contact_services.contact_create(
        organization=cast.org_a, data={"name": "", "phone": "+447700900007"}
    )
    job = run(cast, upload(cast, "name,phone,tags\n" + people(12, tags="lead")))
    # Then it is updated, not doubled, and the other batches were still written in parallel
    assert (job.created_count, job.updated_count) == (11, 1)
    existing.refresh_from_db()
    assert existing.name == "Person 7"
    assert ContactIdentity.objects.filter(organization=cast.org_a).count() == 12
    assert len(writer_threads) == 2  # batches 1 and 3; batch 2 (persons 5-8) was serial


def test_a_failed_parallel_batch_is_written_again_serially(
    cast, small_batches, writer_threads, monkeypatch
):
    # Given a writer whose second batch hits an identity race once
    real = imports._Runner._write
    failures = []

    def racy(self, rows, holders=None):
        in_writer = threading.current_thread().name.startswith("import-writer")
        if in_writer and rows[0].number == 6 and not failures:
            failures.append(rows[0].number)
            raise IntegrityError("duplicate key value violates unique constraint")
        return real(self, rows, holders)

    monkeypatch.setattr(imports._Runner, "_write", racy)
    job = run(cast, upload(cast, "name,phone,tags\n" + people(12)))
    # Then the batch (and any after it that rolled back) was written again: all rows, once
    assert failures == [6]
    assert job.state == JobState.DONE
    assert (job.created_count, job.processed_rows) == (12, 12)
    assert Contact.objects.filter(organization=cast.org_a).count() == 12
    assert ContactIdentity.objects.filter(organization=cast.org_a).count() == 12


def test_a_run_that_dies_keeps_exactly_the_batches_before_the_failure(
    cast, small_batches, writer_threads, monkeypatch
):
    # Given a writer that crashes on the second batch while the third is being written
    real = imports._Runner._write

    def crash(self, rows, holders=None):
        if rows[0].number == 6:
            raise RuntimeError("disk on fire")
        return real(self, rows, holders)

    monkeypatch.setattr(imports._Runner, "_write", crash)
    job = run(cast, upload(cast, "name,phone\n" + people(16, tags=None)))
    # Then the job failed saying how far it got, and only the first batch stays
    assert job.state == JobState.FAILED
    assert "disk on fire" in job.failure and "rows 2 to 5" in job.failure
    assert job.processed_rows == 4
    assert sorted(
        Contact.objects.filter(organization=cast.org_a).values_list("name", flat=True)
    ) == [f"Person {n}" for n in range(1, 5)]


def test_the_collector_is_paused_during_a_run_and_resumed_after(cast, monkeypatch):
    seen = []
    real = imports._Runner._write

    def watch(self, rows, holders=None):
        seen.append(gc.isenabled())
        return real(self, rows, holders)

    monkeypatch.setattr(imports._Runner, "_write", watch)
    assert gc.isenabled()
    run(cast, upload(cast, "name,phone\nA,+447700900001\n"))
    assert seen == [False]
    assert gc.isenabled()


def test_collector_pauses_nest_and_leave_a_disabled_collector_disabled():
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.django_db(transaction=False)
@settings(max_examples=300, deadline=None)
@given(st.from_regex(imports.PLAIN_EMAIL, fullmatch=True))
def test_what_the_plain_email_check_accepts_django_accepts(email):
    if imports.email_plainly_valid(email):
        validate_email(email)


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize(
    ("email", "plain", "valid"),
    [
        ("ann@example.com", True, True),
        ("ann.o+tag@mail.example.co.uk", True, True),
        ("o'neil@example.com", False, True),  # valid, through Django's validator
        ("ann@localhost", False, True),
        ("ann..b@example.com", False, False),
        ("ann@-example.com", False, False),
        ("ann@example", False, False),
    ],
)
def test_the_plain_email_check_defers_to_django_for_the_rest(email, plain, valid):
    assert imports.email_plainly_valid(email) is plain
    try:
        validate_email(email)
    except ValidationError:
        assert not valid
    else:
        assert valid
