"""The import wizard in Chromium: upload, map, start, and watch the job finish live (a real worker)."""

from __future__ import annotations

import pytest

from messaging.models import Contact, ImportJob

pytestmark = pytest.mark.browser


def test_it_imports_a_csv_and_shows_the_progress_live(
    new_page, asgi_server, cast, password, celery_worker
):
    # Given the agent signed in
    page = new_page()
    page.goto("/login/")
    page.fill("#id_username", cast.agent.email)
    page.fill("#id_password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/o/acme/")

    # When they upload a CSV on the import page
    page.goto("/o/acme/contacts/import/")
    rows = "".join(f"Person {i},+4477009{i:05d},vip\n" for i in range(40))
    page.set_input_files(
        "#import-file",
        files=[
            {
                "name": "people.csv",
                "mimeType": "text/csv",
                "buffer": ("Full name,Mobile,Nickname\n" + rows + "Broken,nope,x\n").encode(),
            }
        ],
    )
    page.click("#import-upload")

    # Then the mapping is proposed, with the preview below
    page.wait_for_url("**/contacts/import/*/")
    assert page.input_value("#map-0") == "name"
    assert page.input_value("#map-1") == "phone"
    assert page.input_value("#map-2") == "aliases"
    assert page.locator("[data-testid=preview-row]").count() == 20

    # When they tag the contacts "fair" and start the import, staying on the same page
    page.fill("#import-add-tags", "fair")
    page.click("#import-start")
    page.wait_for_url("**/contacts/import/*/job/")
    page.evaluate("window.__samePage = true")

    # Then the progress bar reaches the end without a reload, with the counts and the report link
    page.wait_for_function(
        "document.getElementById('import-state').dataset.state === 'done'", timeout=30_000
    )
    assert page.evaluate("window.__samePage") is True
    progress = page.locator("#import-progress")
    assert progress.get_attribute("aria-valuenow") == "41"
    assert page.evaluate("document.getElementById('import-progress').value") == 41
    assert page.inner_text("#import-created") == "40"
    assert page.inner_text("#import-error-count") == "1"
    assert page.locator("#import-errors-link").is_visible()
    assert Contact.objects.filter(organization=cast.org_a).count() == 40

    # And a reload shows the same finished state from the database
    page.reload()
    assert page.get_attribute("#import-state", "data-state") == "done"
    assert page.inner_text("#import-created") == "40"


def test_a_file_over_the_cap_is_refused_in_the_page_before_it_is_sent(
    new_page, asgi_server, cast, password, settings
):
    settings.PARLEY_IMPORT_MAX_BYTES = 1024 * 1024
    page = new_page()
    page.goto("/login/")
    page.get_by_label("Email").fill(cast.agent.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/o/acme/")
    page.goto("/o/acme/contacts/import/")

    page.get_by_label("CSV or Excel file").set_input_files(
        files=[{"name": "big.csv", "mimeType": "text/csv", "buffer": b"name\n" + b"x\n" * 600_000}]
    )
    page.get_by_role("button", name="Upload").click()

    message = page.get_by_label("CSV or Excel file").evaluate("input => input.validationMessage")
    assert message == "That file is too large: imports take files up to 1 MB."
    assert page.url.endswith("/o/acme/contacts/import/")
    assert not ImportJob.objects.exists()
