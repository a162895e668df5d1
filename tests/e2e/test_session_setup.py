"""Setting up a number in Chromium, as a person does it: New session, pick the provider by its
label, fill its fields by their labels, Create; the session page names the provider and shows the
webhook URL and secret to paste into it. A missing credential is named beside its field; the form
works without JavaScript; faults that log the session out ask first."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sessions_app import providers, queue, services
from sessions_app.models import WebhookEvent, WhatsAppSession

pytestmark = pytest.mark.browser

# What a person types, by the label they read: {provider label: {field label: value}}
SETUPS = {
    "Simulator (demo)": {},
    "WhatsApp Cloud API (Meta)": {
        "Phone number ID": "106540352242922",
        "WhatsApp Business Account ID": "102290129340398",
        "Access token": "EAAG-typed-token",
        "App secret": "typed-app-secret",
        "Webhook verify token": "typed-verify-token",
    },
    "Evolution API (linked device)": {
        "Server URL": "https://evolution.example.com",
        "API key": "typed-evolution-key",
        "Instance name": "shop",
    },
    "GOWA (go-whatsapp-web-multidevice)": {
        "Server URL": "http://gowa:3000",
        "Username": "parley",
        "Password": "typed-basic-password",
        "Device ID": "",
        "Webhook secret": "typed-long-random-webhook-secret",
    },
}
# Where the webhook secret comes from: Parley's own (shown), or a credential the person typed
SECRET_IN_CREDENTIAL = {
    "WhatsApp Cloud API (Meta)": "Webhook verify token",
    "GOWA (go-whatsapp-web-multidevice)": "Webhook secret",
}


def sign_in(page, user, password):
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/o/acme/")


def credentials_of(page, provider: str):
    return page.get_by_role("group", name=f"{provider}: credentials")


def fill_new_session(page, name: str, provider: str, values: dict[str, str]) -> None:
    page.goto("/o/acme/sessions/")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label(provider).check()
    for label, value in values.items():
        credentials_of(page, provider).get_by_label(label).fill(value)


@pytest.mark.parametrize("provider", list(SETUPS))
def test_an_admin_sets_up_each_provider_and_sees_what_to_paste_into_it(
    new_page, asgi_server, cast, password, provider
):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, cast.admin, password)
    fill_new_session(page, "Front desk", provider, SETUPS[provider])
    # only the chosen provider's fields show
    for other in SETUPS:
        if other != provider and SETUPS[other]:
            expect(credentials_of(page, other)).to_be_hidden()
    page.get_by_role("button", name="Create session").click()

    page.wait_for_url(re.compile(r"/o/acme/sessions/[0-9a-f-]{36}/$"))
    session = WhatsAppSession.objects.get(organization=cast.org_a, name="Front desk")
    assert services.credentials_of(session) == {
        name: value for name, value in typed_by_name(session).items() if value
    }
    expect(page.get_by_text("Session Front desk created.")).to_be_visible()
    expect(page.locator("#session-provider")).to_have_text(provider)

    webhook = page.get_by_role("region", name="Webhook")
    url = services.webhook_url(session)
    expect(webhook.get_by_text(url)).to_be_visible()
    webhook.get_by_role("button", name="Copy URL").click()
    expect(webhook.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == url
    if provider in SECRET_IN_CREDENTIAL:
        expect(webhook).to_contain_text(
            f"The “{SECRET_IN_CREDENTIAL[provider]}” entered with the credentials"
        )
    else:
        secret = services.webhook_secret_of(session)
        expect(webhook.get_by_text(secret)).to_be_hidden()  # until asked for
        webhook.get_by_text("Show the secret").click()
        expect(webhook.get_by_text(secret)).to_be_visible()
    html = page.content()
    for field in providers.get(session.provider).credential_fields:
        if field.secret:
            assert SETUPS[provider][field.label] not in html  # never sent back


def typed_by_name(session: WhatsAppSession) -> dict[str, str]:
    """What the test typed, keyed by the provider's field names (label → name)."""
    provider = providers.get(session.provider)
    return {f.name: SETUPS[provider.label][f.label] for f in provider.credential_fields}


def test_a_missing_credential_is_named_beside_its_field_and_the_rest_is_kept(
    new_page, asgi_server, cast, password
):
    page = new_page()
    sign_in(page, cast.admin, password)
    provider = "WhatsApp Cloud API (Meta)"
    typed = {**SETUPS[provider], "App secret": "", "Phone number ID": "10654-0352"}
    fill_new_session(page, "Meta line", provider, typed)
    page.get_by_role("button", name="Create session").click()

    expect(page.get_by_role("alert")).to_contain_text("Check the credentials.")
    fields = credentials_of(page, provider)
    expect(fields.get_by_label("App secret")).to_have_accessible_description(
        re.compile(r"App secret is required\.$")
    )
    expect(fields.get_by_label("Phone number ID")).to_have_accessible_description(
        re.compile(r"Phone number ID is digits only\.$")
    )
    expect(fields.get_by_label("App secret")).to_have_attribute("aria-invalid", "true")
    # what was typed is still there, except the secrets
    expect(page.get_by_label(provider)).to_be_checked()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Meta line")
    expect(fields.get_by_label("Phone number ID")).to_have_value("10654-0352")
    expect(fields.get_by_label("WhatsApp Business Account ID")).to_have_value("102290129340398")
    expect(fields.get_by_label("Access token")).to_have_value("")
    assert "EAAG-typed-token" not in page.content()
    assert not WhatsAppSession.objects.exists()

    # corrected, it is created
    fields.get_by_label("Phone number ID").fill("106540352242922")
    for label in ("Access token", "App secret", "Webhook verify token"):
        fields.get_by_label(label).fill(SETUPS[provider][label])
    page.get_by_role("button", name="Create session").click()
    expect(page.locator("#session-provider")).to_have_text(provider)


def test_the_form_works_without_javascript(browser, asgi_server, cast, password):
    context = browser.new_context(base_url=asgi_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, cast.admin, password)
        provider = "GOWA (go-whatsapp-web-multidevice)"
        fill_new_session(page, "Gateway", provider, SETUPS[provider])
        expect(credentials_of(page, "Evolution API (linked device)")).to_be_hidden()
        page.get_by_role("button", name="Create session").click()
        expect(page.locator("#session-provider")).to_have_text(provider)
    finally:
        context.close()
    session = WhatsAppSession.objects.get(name="Gateway")
    assert services.credentials_of(session)["webhook_secret"] == SETUPS[provider]["Webhook secret"]


def test_a_fault_that_logs_the_session_out_asks_first(new_page, asgi_server, cast, password):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Demo", "provider": "simulator"}
    )
    page = new_page()
    sign_in(page, cast.admin, password)
    page.goto(f"/o/acme/sessions/{session.uuid}/")
    fault = page.get_by_label("Fault", exact=True)
    assert fault.locator("option:checked").inner_text() == (
        "Next send is rate limited (retried later)"
    )
    fault.select_option(label="The number is banned")
    page.get_by_role("button", name="Inject the fault").click()

    expect(page.get_by_role("heading", name="Inject “The number is banned”?")).to_be_visible()
    assert not WebhookEvent.objects.filter(session=session).exists()  # nothing yet
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("heading", name="Inject “The number is banned”?")).to_have_count(0)

    page.get_by_label("Fault", exact=True).select_option(label="The number is banned")
    page.get_by_role("button", name="Inject the fault").click()
    page.get_by_role("button", name="Yes, inject it").click()
    expect(page.get_by_role("heading", name="Inject “The number is banned”?")).to_have_count(0)
    queue.drain(now=timezone.now() + dt.timedelta(seconds=60))
    session.refresh_from_db()
    assert session.status == "logged_out" and "banned" in session.status_reason


def test_the_home_page_leads_to_the_sessions_page(new_page, asgi_server, cast, password):
    page = new_page()
    sign_in(page, cast.owner, password)
    expect(page.get_by_text("coming soon", exact=False)).to_have_count(0)
    page.get_by_role("link", name="Connect a WhatsApp number").click()
    expect(page.get_by_role("heading", name="WhatsApp sessions")).to_be_visible()
