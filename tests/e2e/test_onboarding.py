"""Onboarding in a real browser: sign up, invite, accept, switch organizations, use a phone."""

from __future__ import annotations

import re
import threading

import pytest
from django.core import mail

from crm.live import org_group, push_now

pytestmark = pytest.mark.browser

INVITATION_LINK = re.compile(r"https?://[^/\s]+(/invitations/[^/\s]+/)")
PHONE = {"width": 390, "height": 844}


def wait_for_email_to(address: str, page) -> mail.EmailMessage:
    """The live server runs in this process, so the locmem outbox is ours to read."""
    for _attempt in range(50):
        found = [m for m in mail.outbox if address in m.to]
        if found:
            return found[-1]
        page.wait_for_timeout(100)
    raise AssertionError(f"no email to {address}; outbox: {[m.to for m in mail.outbox]}")


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_it_takes_a_team_from_sign_up_to_switching_organizations(new_page, password):
    # Given a visitor who signs up
    owner = new_page()
    owner.goto("/signup/")
    owner.fill("#id_name", "Mia Maker")
    owner.fill("#id_email", "mia@harbour.example")
    owner.fill("#id_password", password)
    owner.fill("#id_organization_name", "Harbour Tea")
    owner.click("#signup-form button[type=submit]")

    # Then they land on their new organization's home
    owner.wait_for_url("**/o/harbour-tea/")
    assert owner.inner_text("#org-name") == "Harbour Tea"
    owner.wait_for_function("window.parleyLive && window.parleyLive.connected === true")

    # When they invite a colleague by email
    owner.click("#org-nav >> text=Invitations")
    owner.fill("#id_email", "leo@harbour.example")
    owner.select_option("#id_role", "agent")
    owner.click("#invitation-form button[type=submit]")
    assert "Invitation sent to leo@harbour.example." in owner.inner_text("#flash-messages")

    # And the colleague opens the emailed link in their own browser and sets a name and password
    link = INVITATION_LINK.search(wait_for_email_to("leo@harbour.example", owner).body).group(1)
    invitee = new_page()
    invitee.goto(link)
    invitee.fill("#id_name", "Leo Lane")
    invitee.fill("#id_password", password)
    invitee.click("text=Accept invitation")

    # Then they are in the organization
    invitee.wait_for_url("**/o/harbour-tea/")
    assert invitee.inner_text("#org-name") == "Harbour Tea"
    assert "You joined Harbour Tea." in invitee.inner_text("#flash-messages")

    # When the colleague creates a second organization from the switcher
    invitee.click("#org-switcher summary")
    invitee.click("#new-organization")
    invitee.fill("#id_name", "Leo Side Project")
    invitee.click("#organization-form button[type=submit]")
    invitee.wait_for_url("**/o/leo-side-project/")
    assert invitee.inner_text("#org-name") == "Leo Side Project"

    # And switches back to the first one with the switcher
    invitee.click("#org-switcher summary")
    invitee.click("#org-switcher [data-testid=switcher-org] >> text=Harbour Tea")

    # Then they see the first organization again
    invitee.wait_for_url("**/o/harbour-tea/")
    assert invitee.inner_text("#org-name") == "Harbour Tea"
    assert invitee.inner_text("[data-testid=current-organization]") == "Harbour Tea"


def test_it_fits_the_members_page_on_a_phone(new_page, cast, password):
    # Given the owner signed in on a 390px-wide phone
    page = new_page()
    page.set_viewport_size(PHONE)
    page.goto("/login/")
    page.fill("#id_username", cast.owner.email)
    page.fill("#id_password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/o/acme/")

    # When they open the members page, with its table of role controls
    page.goto("/o/acme/members/")
    assert page.locator("[data-testid=member-row]").count() == 4

    # Then nothing pushes the page sideways, not even an open menu
    assert page_width(page) <= PHONE["width"]
    page.click("#user-menu summary")
    assert page.is_visible("#logout")
    assert page_width(page) <= PHONE["width"]


def test_it_shows_a_live_ping_from_the_organization_feed_as_a_toast(new_page, cast, password):
    # Given the owner on the organization's home, its live feed connected
    page = new_page()
    page.goto("/login/")
    page.fill("#id_username", cast.owner.email)
    page.fill("#id_password", password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/o/acme/")
    page.wait_for_function("window.parleyLive.connected === true")
    page.evaluate(
        "document.addEventListener('parley:ping', e => { window.lastPing = e.detail.text })"
    )

    # When the server pushes a ping to the organization (from a thread of its own: this one
    # shares Playwright's event loop, where async_to_sync may not run)
    push = threading.Thread(
        target=push_now, args=(org_group(cast.org_a.pk), "ping", {"text": "Hello, Acme"})
    )
    push.start()
    push.join()

    # Then it shows as a toast and reaches page scripts as a parley:ping event
    page.wait_for_selector("[data-testid=toast] >> text=Hello, Acme")
    assert page.evaluate("window.lastPing") == "Hello, Acme"
    assert page.evaluate("window.parleyLive.received.map(m => m.event)") == ["ping"]


def test_it_appends_older_audit_events_in_place_with_htmx(new_page, cast, password):
    # Given an organization with more audit events than one page holds
    from accounts import services

    for n in range(130):
        services.audit_record(organization=cast.org_a, action=f"probe.{n:03d}", actor=cast.owner)
    page = new_page()
    page.goto("/login/")
    page.fill("input[name=username]", cast.owner.email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.goto("/o/acme/audit/")
    page.evaluate("window.__samePage = true")
    assert page.locator('[data-testid="audit-row"]').count() == 100

    # When the owner asks for older events
    page.click("#older-events")

    # Then they are appended to the same page (no navigation) and the pager is gone at the end
    page.wait_for_function("document.querySelectorAll('[data-testid=audit-row]').length > 100")
    assert page.evaluate("window.__samePage") is True
    assert page.url.endswith("/o/acme/audit/")
    assert page.locator("#older-events").count() == 0
