"""The main pages work under the Content-Security-Policy, in Chromium: nothing they do is refused.

The policy allows scripts and styles from our static files only, so a page that still ran an
inline script, wrote a style="" attribute or let htmx inject its indicator <style> would show a
``securitypolicyviolation`` (and a console error) here. Each step also checks that what the moved
code does still shows: a tag's colour, the columns menu, the bulk form's fields, a bulk job that
finishes live, the import's mapping, the inbox's avatars.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import tests.support.factories as factories
from messaging.services import contacts as contact_services
from sessions_app.models import WhatsAppSession
from tests.support.browser import elsewhere, sign_in, watch_csp

pytestmark = pytest.mark.browser

RED = "#b42318"
PURPLE = "#6d28d9"


def seed(cast) -> None:
    contact_services.tag_create(organization=cast.org_a, name="vip", color=RED)
    for name in ("Reem Haddad", "Nick Lane"):
        contact_services.contact_create(
            organization=cast.org_a,
            data={"name": name, "email": f"{name.split()[0].lower()}@example.com", "tags": ["vip"]},
        )
    chat = factories.a_chat(cast)
    WhatsAppSession.objects.filter(pk=chat.session_id).update(colour=PURPLE)


def dot_colour(page, selector: str) -> str:
    return page.evaluate(
        "(s) => getComputedStyle(document.querySelector(s), '::before').backgroundColor", selector
    )


def test_the_main_pages_run_under_the_policy_without_a_violation(
    browser, asgi_server, cast, password, celery_worker
):
    elsewhere(seed, cast)
    context = browser.new_context(base_url=asgi_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    violations = watch_csp(context)
    page = context.new_page()

    def nothing_refused(where: str) -> None:
        assert violations == [], f"{where}:\n" + "\n".join(violations)

    sign_in(page, cast.owner, password)
    nothing_refused("signing in")

    # The contacts list: a tag shows its own colour, also on rows htmx swaps in
    page.goto("/o/acme/contacts/")
    nothing_refused("the contacts list")
    chip = "#contact-rows [data-testid=contact-row] .chip"
    assert dot_colour(page, chip) == "rgb(180, 35, 24)"
    page.get_by_label("Search contacts").fill("reem")
    expect(page.locator("[data-testid=contact-row]")).to_have_count(1)
    assert dot_colour(page, chip) == "rgb(180, 35, 24)"

    # The columns menu hides a column
    email_cell = page.locator("#contact-rows td[data-col=email]").first
    expect(email_cell).to_be_visible()
    page.get_by_text("Columns").click()
    page.get_by_label("Email", exact=True).uncheck()
    expect(email_cell).to_be_hidden()
    nothing_refused("searching and choosing columns")

    # The bulk form shows the fields of the chosen action; applying it opens the job, which
    # follows the worker live to "Done"
    page.get_by_label("With the selected contacts").select_option(label="Add to group")
    expect(page.get_by_label("Group", exact=True)).to_be_visible()
    expect(page.get_by_label("Tag", exact=True)).to_be_hidden()
    page.get_by_label("Group", exact=True).fill("Friends")
    page.get_by_label("Apply to the 1 matching contact").check()
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/o/acme/contacts/bulk/*/")
    expect(page.locator("#bulk-state")).to_have_text("Done", timeout=30_000)
    nothing_refused("the bulk form and job page")

    # The import: upload a file, see its mapping
    page.goto("/o/acme/contacts/import/")
    page.get_by_label("CSV or Excel file").set_input_files(
        files=[
            {
                "name": "people.csv",
                "mimeType": "text/csv",
                "buffer": b"Name,Phone\nAna,+447700900111\n",
            }
        ]
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/contacts/import/*/")
    expect(page.locator("#import-preview-table")).to_contain_text("Ana")
    nothing_refused("the import")

    # The inbox: the conversation's avatar wears its number's colour
    page.goto("/o/acme/inbox/")
    row = page.locator(".chat-row").first
    expect(row).to_contain_text("Acme Customer")
    assert row.locator(".avatar").evaluate("a => getComputedStyle(a).backgroundColor") == (
        "rgb(109, 40, 217)"
    )
    row.click()
    expect(page.locator("#conversation")).to_contain_text("Acme order, photographed")

    nothing_refused("the inbox")
    context.close()
