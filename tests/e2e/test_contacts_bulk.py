"""Bulk actions in Chromium: filter the address book, tag every matching contact as one background
job (a real worker), watch it finish live, then undo it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import transaction
from playwright.sync_api import expect

from messaging.models import BulkJob, Contact, ContactTag
from messaging.services import contacts as services

pytestmark = pytest.mark.browser

# Fifteen leads named Ana…, the contacts the filter "ana" + tag "lead" should select.
ANA_LEADS = [f"Ana {surname}" for surname in (
    "Silva", "Souza", "Costa", "Pereira", "Oliveira", "Lima", "Gomes", "Ribeiro",
    "Almeida", "Carvalho", "Rocha", "Dias", "Moreira", "Barbosa", "Teixeira",
)]  # fmt: skip
# Decoys: "ana" inside the name but not a lead, and leads without "ana" anywhere.
ANA_NOT_LEADS = ["Juliana Mendes", "Mariana Freitas", "Diana Cardoso"]
LEADS_NOT_ANA = ["Bruno Castro", "Carlos Nunes", "Pedro Vieira"]
OTHERS = [
    "Rui Monteiro", "Tiago Correia", "Luis Pinto", "Joel Reis", "Marco Duarte",
    "Hugo Lopes", "Vitor Mota", "Igor Fonseca", "Sergio Cruz",
]  # fmt: skip
TAG = "spring-promo"


def log_in(page, email: str, password: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/o/acme/")


def seed(cast) -> dict[str, int]:
    """30 contacts in org A; returns name → id."""
    assert not any("ana" in name.lower() for name in LEADS_NOT_ANA + OTHERS)
    people = (
        [(name, ["lead"]) for name in ANA_LEADS]
        + [(name, ["customer"]) for name in ANA_NOT_LEADS]
        + [(name, ["lead"]) for name in LEADS_NOT_ANA]
        + [(name, []) for name in OTHERS]
    )
    assert len(people) == 30
    ids = {}
    for i, (name, tags) in enumerate(people):
        contact = services.contact_create(
            organization=cast.org_a,
            data={"name": name, "phone": f"+44 7700 9{i:05d}", "tags": tags},
        )
        ids[name] = contact.pk
    return ids


def tagged_ids(cast, tag: str) -> set[int]:
    return set(
        ContactTag.objects.filter(
            organization=cast.org_a, tag__name=tag, contact__organization=cast.org_a
        ).values_list("contact_id", flat=True)
    )


def rows(page) -> int:
    return page.locator("[data-testid=contact-row]").count()


# Every bulk.progress event the page receives, kept in sessionStorage so it survives the page's own
# reload (the job page reloads itself once when the job finishes).
RECORD_PROGRESS = """
document.addEventListener("parley:bulk.progress", function (event) {
  var seen = JSON.parse(sessionStorage.getItem("bulkProgress") || "[]");
  seen.push(event.detail);
  sessionStorage.setItem("bulkProgress", JSON.stringify(seen));
});
"""


@contextmanager
def contact_locked(contact_id: int) -> Iterator[None]:
    """Hold a row lock on one contact: the worker's batch (SELECT … FOR UPDATE) waits for it, so the
    job stays queued/running until the block ends."""
    with transaction.atomic():
        list(Contact.objects.select_for_update().filter(pk=contact_id))
        yield


def filter_leads_named_ana(page) -> None:
    """On the contacts list: the tag filter "lead" (a page load), then "ana" typed in the search box
    (htmx swaps the rows in place)."""
    page.goto("/o/acme/contacts/")
    assert page.inner_text("#contact-count") == "30 contacts"
    page.select_option("#filter-tag", label="lead")
    page.click("#apply-filters")
    page.wait_for_url("**/o/acme/contacts/?*tag=*")
    expect(page.locator("#contact-count")).to_have_text("18 contacts")
    assert rows(page) == 18

    page.evaluate("window.__samePage = true")
    page.fill("#contact-search", "ana")
    page.wait_for_function("document.querySelectorAll('[data-testid=contact-row]').length === 15")
    expect(page.locator("#contact-count")).to_have_text("15 contacts")
    assert set(page.locator("#contact-rows a.contact-name").all_inner_texts()) == set(ANA_LEADS)
    assert page.evaluate("window.__samePage") is True
    assert "q=ana" in page.url


def submit_tag_all_matching(page) -> None:
    # The bulk form offers the 15 rows on screen, not the 18 of the page as first loaded
    expect(page.locator("#bulk-select-all-label")).to_have_text("Apply to all 15 matching contacts")
    page.select_option("#bulk-action", "tag")
    page.fill("#bulk-tag", TAG)
    page.check("#bulk-select-all")
    page.click("#bulk-submit")


def expect_done_with_undo(page) -> None:
    expect(page.locator("#bulk-job")).to_have_attribute("data-state", "done", timeout=30_000)
    # The page reloads itself once on finishing, to offer Undo from the server's view
    expect(page.locator("#bulk-undo")).to_be_visible(timeout=15_000)
    expect(page.locator("#bulk-subject")).to_have_text(TAG)
    expect(page.locator("#bulk-state")).to_have_text("Done")
    expect(page.locator("#bulk-count")).to_have_text("15 contacts selected")
    expect(page.locator("#bulk-processed")).to_have_text("15")
    expect(page.locator("#bulk-total")).to_have_text("15")
    expect(page.locator("#bulk-affected")).to_have_text("15")
    assert page.evaluate("document.getElementById('bulk-progress').value") == 15


def test_it_tags_every_contact_matching_a_filter_live_and_undoes_it(
    new_page, asgi_server, cast, password, celery_worker
):
    # Given 30 contacts: 15 leads named Ana…, plus decoys on either side of the filter
    ids = seed(cast)
    expected = {ids[name] for name in ANA_LEADS}
    leads = expected | {ids[name] for name in LEADS_NOT_ANA}
    page = new_page()
    page.add_init_script(RECORD_PROGRESS)
    log_in(page, cast.agent.email, password)

    # When the agent filters the list to the leads named Ana and tags all 15 matching contacts
    filter_leads_named_ana(page)
    with contact_locked(ids[ANA_LEADS[7]]):  # the worker starts but cannot finish yet
        submit_tag_all_matching(page)

        # Then they land on the job page, connected to the live feed, the job not finished yet
        page.wait_for_url("**/o/acme/contacts/bulk/*/")
        page.wait_for_function("window.parleyLive && window.parleyLive.connected")
        assert page.get_attribute("#bulk-job", "data-state") in {"queued", "running"}
        assert page.inner_text("#bulk-state") in {"Queued", "Running"}
        expect(page.locator("#bulk-undo")).to_have_count(0)
        page.evaluate("window.__beforeDone = true")

    # When the worker gets through, the page follows by itself and ends on "done" with the count
    expect_done_with_undo(page)
    assert page.evaluate("window.__beforeDone") is None  # it reloaded itself (the test did not)
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('bulkProgress') || '[]')")
    assert seen, "no bulk.progress event reached the page over the websocket"
    assert seen[-1]["state"] == "done"
    assert (seen[-1]["processed"], seen[-1]["total"], seen[-1]["affected"]) == (15, 15, 15)

    # And exactly the matching contacts carry the new tag; nothing else changed
    assert tagged_ids(cast, TAG) == expected
    assert tagged_ids(cast, "lead") == leads

    # When they press Undo
    page.click("#bulk-undo")
    page.wait_for_load_state()
    expect(page.locator("[data-testid=flash]")).to_contain_text("Undone.")
    expect(page.locator("#bulk-job")).to_have_attribute("data-state", "undone")
    expect(page.locator("#bulk-state")).to_have_text("Undone")
    expect(page.locator("#bulk-undo")).to_have_count(0)

    # Then the tag is gone from every one of them, and the rest is as before
    assert tagged_ids(cast, TAG) == set()
    assert tagged_ids(cast, "lead") == leads
    assert Contact.objects.filter(organization=cast.org_a).count() == 30


def test_the_job_page_catches_up_when_its_live_feed_connects_after_the_job_finished(
    new_page, asgi_server, cast, password, celery_worker
):
    # Given a job page whose websocket opens late (its script held back), after every push was sent
    ids = seed(cast)
    page = new_page()
    log_in(page, cast.agent.email, password)
    filter_leads_named_ana(page)
    held = []

    def hold_live_feed(route) -> None:
        if held and held[0] is None:  # released: later loads (the page's own reload) go through
            route.continue_()
        else:
            held.append(route)

    page.route("**/static/js/parley*.js", hold_live_feed)

    with contact_locked(ids[ANA_LEADS[0]]):
        submit_tag_all_matching(page)
        page.wait_for_url("**/o/acme/contacts/bulk/*/", wait_until="commit")
        expect(page.locator("#bulk-job")).to_have_attribute(
            "data-state", re.compile("queued|running")
        )
    job = BulkJob.objects.get(organization=cast.org_a)
    wait_until(lambda: BulkJob.objects.get(pk=job.pk).state == "done")
    assert not page.evaluate("window.parleyLive && window.parleyLive.connected")

    # When the live feed finally connects
    for _ in range(100):  # the held request reaches the route handler while Playwright runs
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the job page never asked for parley.js"
    route, held[0] = held[0], None
    route.continue_()

    # Then the page reads the job's state and shows it finished, without the agent reloading
    expect_done_with_undo(page)
    assert tagged_ids(cast, TAG) == {ids[name] for name in ANA_LEADS}


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
