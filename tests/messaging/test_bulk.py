"""Bulk actions on the address book: one job with a count, progress and an undo for tag/group changes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.http import QueryDict
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from crm.errors import Conflict, NotFound
from messaging.models import BulkJob, Contact, ContactTag, JobState, Tag
from messaging.services import bulk as bulk_services
from messaging.services import contacts as svc
from messaging.tasks_bulk import bulk_run_task
from tests.support.celery_worker import wait_for


def make(org, name, **data):
    return svc.contact_create(organization=org, data={"name": name, **data})


def tag_names(contact) -> set[str]:
    return set(ContactTag.objects.filter(contact_id=contact.pk).values_list("tag__name", flat=True))


def group_names(contact) -> set[str]:
    return set(contact.group_memberships.values_list("group__name", flat=True))


def start(cast, action, params=None, *, ids=None, filters=None, org=None, actor=None) -> BulkJob:
    return bulk_services.bulk_start(
        organization=org or cast.org_a,
        actor=actor or cast.agent,
        action=action,
        params=params or {},
        ids=ids,
        filters=bulk_services.bulk_filters_clean(filters) if filters is not None else None,
    )


def run(job) -> BulkJob:
    bulk_run_task(job.pk)  # the task function itself, in this process
    job.refresh_from_db()
    return job


@pytest.fixture
def book(cast):
    """Anas and others; two of the Anas are VIPs, one of them already a customer."""
    org = cast.org_a
    people = {
        "ana_silva": make(org, "Ana Silva", tags=["vip"]),
        "anabel": make(org, "Anabel", tags=["vip", "customer"]),
        "ana_lopes": make(org, "Ana Lopes"),
        "bob": make(org, "Bob", tags=["vip"]),
    }
    people["vip"] = Tag.objects.get(organization=org, name="vip")
    return people


# --- Tags ---------------------------------------------------------------------------------------


def test_it_tags_exactly_the_contacts_a_filter_matches(cast, book):
    job = run(
        start(cast, "tag", {"tag": "customer"}, filters={"q": "ana", "tag": [book["vip"].pk]})
    )

    assert job.state == JobState.DONE
    assert (job.total, job.processed, job.affected) == (2, 2, 1)  # Anabel was a customer already
    assert "customer" in tag_names(book["ana_silva"])
    assert "customer" in tag_names(book["anabel"])
    assert "customer" not in tag_names(book["ana_lopes"])  # an Ana, but not a VIP
    assert "customer" not in tag_names(book["bob"])  # a VIP, but not an Ana
    event = AuditEvent.objects.get(action="contacts.bulk_tag")
    assert event.data["count"] == 1 and event.actor == cast.agent


def test_it_creates_a_tag_named_for_the_first_time(cast, book):
    job = run(start(cast, "tag", {"tag": "Spring fair"}, ids=[book["bob"].pk]))
    assert job.params["tag"] == "Spring fair"
    assert tag_names(book["bob"]) == {"vip", "Spring fair"}


def test_undo_removes_the_tag_only_from_the_contacts_the_job_tagged(cast, book):
    job = run(
        start(cast, "tag", {"tag": "customer"}, filters={"q": "ana", "tag": [book["vip"].pk]})
    )

    bulk_services.bulk_undo(organization=cast.org_a, job=job, actor=cast.agent)

    job.refresh_from_db()
    assert job.state == JobState.UNDONE and job.undone_at is not None
    assert "customer" not in tag_names(book["ana_silva"])
    assert "customer" in tag_names(book["anabel"])  # had it before the job: keeps it
    assert AuditEvent.objects.get(action="contacts.bulk_tag_undone").data["count"] == 1


def test_undo_twice_is_refused(cast, book):
    job = run(start(cast, "tag", {"tag": "customer"}, ids=[book["bob"].pk]))
    bulk_services.bulk_undo(organization=cast.org_a, job=job, actor=cast.agent)

    with pytest.raises(Conflict):
        bulk_services.bulk_undo(organization=cast.org_a, job=job, actor=cast.agent)
    assert AuditEvent.objects.filter(action="contacts.bulk_tag_undone").count() == 1


def test_untag_and_its_undo_give_the_tag_back_to_those_who_lost_it(cast, book):
    job = run(start(cast, "untag", {"tag": book["vip"].pk}, filters={"q": "ana"}))
    assert job.affected == 2
    assert "vip" not in tag_names(book["ana_silva"]) and "vip" in tag_names(book["bob"])

    bulk_services.bulk_undo(organization=cast.org_a, job=job, actor=cast.agent)
    assert "vip" in tag_names(book["ana_silva"]) and "vip" in tag_names(book["anabel"])
    assert "vip" not in tag_names(book["ana_lopes"])  # never had it


# --- Groups, status, opt-out, delete ------------------------------------------------------------


def test_it_adds_to_a_group_removes_from_it_and_undoes_both(cast, book):
    leeds = svc.group_create(organization=cast.org_a, name="Leeds")
    svc.group_add_contacts(organization=cast.org_a, group=leeds, contact_ids=[book["bob"].pk])
    everyone = [book[k].pk for k in ("ana_silva", "anabel", "bob")]

    added = run(start(cast, "group_add", {"group": "Leeds"}, ids=everyone))
    assert (added.total, added.affected) == (3, 2)
    assert all("Leeds" in group_names(book[k]) for k in ("ana_silva", "anabel", "bob"))

    bulk_services.bulk_undo(organization=cast.org_a, job=added, actor=cast.agent)
    assert group_names(book["ana_silva"]) == set() and group_names(book["bob"]) == {"Leeds"}

    removed = run(start(cast, "group_remove", {"group": leeds.pk}, ids=everyone))
    assert removed.affected == 1 and group_names(book["bob"]) == set()
    bulk_services.bulk_undo(organization=cast.org_a, job=removed, actor=cast.agent)
    assert group_names(book["bob"]) == {"Leeds"} and group_names(book["anabel"]) == set()


def test_it_sets_a_status(cast, book):
    job = run(start(cast, "set_status", {"status": "blocked"}, filters={"tag": [book["vip"].pk]}))
    assert job.affected == 3
    blocked = set(Contact.objects.filter(status="blocked").values_list("name", flat=True))
    assert blocked == {"Ana Silva", "Anabel", "Bob"}
    with pytest.raises(Exception, match="Only tag and group"):
        bulk_services.bulk_undo(organization=cast.org_a, job=job, actor=cast.agent)


def test_opting_out_keeps_an_earlier_opt_out_date(cast, book):
    earlier = timezone.now() - dt.timedelta(days=30)
    svc.contact_opt_out(
        organization=cast.org_a, contact=book["anabel"], source="reply STOP", at=earlier
    )

    job = run(start(cast, "opt_out", {"source": "event list"}, filters={"q": "ana"}))

    assert job.affected == 2  # Ana Silva and Ana Lopes; Anabel had opted out already
    book["anabel"].refresh_from_db()
    book["ana_silva"].refresh_from_db()
    assert book["anabel"].opted_out_at == earlier
    assert book["anabel"].opted_out_source == "reply STOP"
    assert book["ana_silva"].opted_out_at is not None
    assert book["ana_silva"].opted_out_source == "event list"


def test_it_deletes_the_selection(cast, book):
    job = run(start(cast, "delete", ids=[book["bob"].pk, book["ana_lopes"].pk]))
    assert job.affected == 2
    assert set(Contact.objects.values_list("name", flat=True)) == {"Ana Silva", "Anabel"}
    assert AuditEvent.objects.get(action="contacts.bulk_delete").data["count"] == 2


# --- Tenancy and redelivery ---------------------------------------------------------------------


def test_ids_of_another_organization_are_ignored(cast, book):
    theirs = make(cast.org_b, "Bravo Person")

    job = run(start(cast, "tag", {"tag": "x"}, ids=[theirs.pk, 999_999_999]))

    assert (job.total, job.affected) == (0, 0)
    assert tag_names(theirs) == set()
    assert not Tag.objects.filter(organization=cast.org_b).exists()


def test_a_tag_of_another_organization_is_not_found(cast, book):
    theirs = svc.tag_create(organization=cast.org_b, name="bravo-tag")
    with pytest.raises(NotFound):
        start(cast, "tag", {"tag": theirs.pk}, ids=[book["bob"].pk])
    their_group = svc.group_create(organization=cast.org_b, name="Bravo group")
    with pytest.raises(NotFound):
        start(cast, "group_add", {"group": their_group.pk}, ids=[book["bob"].pk])
    assert not BulkJob.objects.exists()


def test_a_redelivered_task_does_nothing_the_second_time(cast, book):
    job = start(cast, "tag", {"tag": "customer"}, ids=[book["ana_silva"].pk, book["bob"].pk])
    run(job)
    svc.contact_update(organization=cast.org_a, contact=book["bob"], data={"tags": ["vip"]})

    again = run(job)  # the broker delivers the same message again

    assert again.affected == 2 and again.items.count() == 2
    assert "customer" not in tag_names(book["bob"])  # not re-tagged after being untagged by hand
    assert AuditEvent.objects.filter(action="contacts.bulk_tag").count() == 1


# --- API ----------------------------------------------------------------------------------------


def test_it_runs_a_bulk_action_through_the_api(cast, book, api):
    agent = api(cast.agent)
    response = agent.post(
        "/api/v1/contacts/bulk/",
        {
            "action": "tag",
            "params": {"tag": "customer"},
            "filters": {"q": "ana", "tag": [book["vip"].pk]},
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "queued" and body["total"] == 2
    assert body["selection"] == {"filters": {**body["selection"]["filters"], "query": "ana"}}

    bulk_run_task(body["id"])

    job = agent.get(f"/api/v1/bulk-jobs/{body['id']}/").json()
    assert (job["state"], job["processed"], job["affected"], job["undoable"]) == (
        "done",
        2,
        1,
        True,
    )
    assert [j["id"] for j in agent.get("/api/v1/bulk-jobs/").json()["results"]] == [body["id"]]

    undone = agent.post(f"/api/v1/bulk-jobs/{body['id']}/undo/")
    assert undone.status_code == 200 and undone.json()["state"] == "undone"
    assert "customer" not in tag_names(book["ana_silva"])
    again = agent.post(f"/api/v1/bulk-jobs/{body['id']}/undo/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_undoable"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"action": "shout", "ids": [1]}, "action"),
        ({"action": "tag", "ids": [1]}, "params.tag"),
        ({"action": "set_status", "params": {"status": "asleep"}, "ids": [1]}, "params.status"),
        ({"action": "delete", "ids": [1], "filters": {"q": "a"}}, "ids"),
        ({"action": "delete"}, "ids"),
        ({"action": "delete", "filters": {"status": "asleep"}}, "filters.status"),
        ({"action": "delete", "filters": {"colour": "red"}}, "filters.colour"),
        ({"action": "delete", "ids": [1], "organization": 2}, "organization"),
    ],
)
def test_bad_bulk_input_is_a_field_error_and_starts_nothing(cast, api, body, field):
    response = api(cast.agent).post("/api/v1/contacts/bulk/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not BulkJob.objects.exists()


def test_another_organizations_tag_is_a_404_and_a_viewer_cannot_start_jobs(cast, book, api):
    theirs = svc.tag_create(organization=cast.org_b, name="bravo-tag")
    body = {"action": "tag", "params": {"tag": theirs.pk}, "ids": [book["bob"].pk]}
    assert api(cast.agent).post("/api/v1/contacts/bulk/", body, format="json").status_code == 404
    assert api(cast.viewer).post("/api/v1/contacts/bulk/", body, format="json").status_code == 403


def test_the_job_is_enqueued_only_when_the_transaction_commits(
    cast, book, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = start(cast, "delete", ids=[book["bob"].pk])
    assert len(callbacks) == 1
    assert BulkJob.objects.get(pk=job.pk).state == JobState.QUEUED


def test_the_real_worker_finishes_the_job_in_the_background(celery_worker, cast, api):
    contacts = [make(cast.org_a, f"Worker {n}") for n in range(3)]

    response = api(cast.agent).post(
        "/api/v1/contacts/bulk/",
        {"action": "tag", "params": {"tag": "from-worker"}, "filters": {"q": "worker"}},
        format="json",
    )

    assert response.status_code == 202
    done = wait_for(
        lambda: BulkJob.objects.filter(pk=response.json()["id"], state=JobState.DONE).first(),
        timeout=20,
    )
    assert done is not None, "the worker did not finish the job:\n" + celery_worker.log
    assert done.affected == 3
    assert all("from-worker" in tag_names(c) for c in contacts)
    assert "messaging.bulk.run" in celery_worker.log


# --- Batches ------------------------------------------------------------------------------------


def _many(org, prefix: str, count: int) -> None:
    rows = [
        Contact(organization=org, name=f"{prefix} {n:05d}", display_name=f"{prefix} {n:05d}")
        for n in range(count)
    ]
    Contact.objects.bulk_create(rows, batch_size=1000)
    svc.search_text_rebuild(
        organization=org,
        contact_ids=Contact.objects.filter(organization=org, name__startswith=prefix).values_list(
            "pk", flat=True
        ),
    )


def _queries_to_run(cast, prefix: str) -> tuple[int, BulkJob]:
    job = start(cast, "tag", {"tag": f"{prefix}-tag"}, filters={"q": prefix})
    with CaptureQueriesContext(connection) as queries:
        bulk_services.bulk_run(job.pk)
    job.refresh_from_db()
    return len(queries), job


def test_a_selection_larger_than_a_batch_costs_queries_per_batch_not_per_contact(cast):
    assert bulk_services.BATCH_SIZE == 1000
    _many(cast.org_a, "Small", 1_200)  # 2 batches
    _many(cast.org_a, "Large", 2_500)  # 3 batches

    small, small_job = _queries_to_run(cast, "Small")
    large, large_job = _queries_to_run(cast, "Large")

    assert (small_job.affected, large_job.affected) == (1_200, 2_500)
    assert ContactTag.objects.filter(tag__name="Large-tag").count() == 2_500
    per_batch = large - small  # one more batch, 1,300 more contacts
    assert 0 < per_batch <= 8, (small, large)
    assert large < 40


# --- Dashboard ----------------------------------------------------------------------------------


def test_it_tags_all_matching_from_the_filtered_list_and_offers_undo(cast, book):
    browser = Client()
    browser.force_login(cast.agent)

    posted = browser.post(
        "/o/acme/contacts/bulk/",
        {
            "action": "tag",
            "tag": "customer",
            "select_all_matching": "1",
            "filters_query": f"q=ana&tag={book['vip'].pk}&status=",
            "next": "/o/acme/contacts/?q=ana",
        },
    )

    job = BulkJob.objects.get()
    assert posted.status_code == 302 and posted["Location"] == f"/o/acme/contacts/bulk/{job.pk}/"
    assert job.total == 2 and job.selection["filters"]["tag_ids"] == [book["vip"].pk]
    run(job)

    page = browser.get(posted["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="bulk-undo"' in text and 'id="bulk-progress"' in text
    assert "2 contacts selected" in text and 'data-testid="bulk-affected">1<' in text

    undone = browser.post(f"/o/acme/contacts/bulk/{job.pk}/undo/", follow=True)
    assert "customer" not in tag_names(book["ana_silva"])
    assert "customer" in tag_names(book["anabel"])
    assert 'id="bulk-undo"' not in undone.content.decode()
    assert "Undone" in undone.content.decode()


def test_it_applies_to_the_checked_rows_only(cast, book):
    browser = Client()
    browser.force_login(cast.agent)
    browser.post(
        "/o/acme/contacts/bulk/",
        {"action": "set_status", "status": "invalid", "ids": [book["bob"].pk, book["anabel"].pk]},
    )
    run(BulkJob.objects.get())
    invalid = set(Contact.objects.filter(status="invalid").values_list("name", flat=True))
    assert invalid == {"Bob", "Anabel"}


def test_a_bulk_post_without_a_selection_goes_back_to_the_list_with_a_message(cast, book):
    browser = Client()
    browser.force_login(cast.agent)
    response = browser.post(
        "/o/acme/contacts/bulk/", {"action": "tag", "tag": "x", "next": "/o/acme/contacts/?q=a"}
    )
    assert response.status_code == 302 and response["Location"] == "/o/acme/contacts/?q=a"
    assert not BulkJob.objects.exists()
    off_site = browser.post(
        "/o/acme/contacts/bulk/", {"action": "tag", "next": "https://evil.example/"}
    )
    assert off_site["Location"] == "/o/acme/"


def test_a_viewer_cannot_post_a_bulk_action(cast, book):
    browser = Client()
    browser.force_login(cast.viewer)
    response = browser.post("/o/acme/contacts/bulk/", {"action": "delete", "ids": [book["bob"].pk]})
    assert response.status_code == 403
    assert Contact.objects.filter(pk=book["bob"].pk).exists()


@pytest.mark.parametrize("filters", [QueryDict("q=ana&tag=3&tag=4"), "q=ana&tag=3&tag=4"])
def test_the_bulk_form_carries_the_list_filters_and_the_matching_count(cast, filters):
    request = RequestFactory().get("/o/acme/contacts/?q=ana&tag=3&tag=4")
    html = render_to_string(
        "messaging/bulk/_bulk_form.html",
        {"organization": cast.org_a, "filters_query": filters, "total_matching": 42},
        request=request,
    )
    assert 'id="bulk-form"' in html and 'action="/o/acme/contacts/bulk/"' in html
    assert 'name="filters_query" value="q=ana&amp;tag=3&amp;tag=4"' in html
    for element in ('id="bulk-action"', 'id="bulk-tag"', 'id="bulk-group"', 'id="bulk-submit"'):
        assert element in html
    assert "Apply to all 42 matching contacts" in html


def test_the_contacts_list_offers_the_bulk_form_with_its_filters(cast, book):
    browser = Client()
    browser.force_login(cast.agent)
    page = browser.get(f"/o/acme/contacts/?q=ana&tag={book['vip'].pk}")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="bulk-form"' in html
    assert f'name="filters_query" value="q=ana&amp;tag={book["vip"].pk}"' in html
    assert "Apply to all 2 matching contacts" in html
