"""Canned replies in Chromium, as a person uses them: an admin adds one on the settings page by
filling the fields they see, an agent types "/" and its shortcut in the inbox and gets it filled
in with the customer's name; the admin edits and deletes it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from messaging.models import CannedReply
from sessions_app import services
from tests.e2e.test_inbox import open_inbox, said
from tests.e2e.test_session_pairing import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def session(cast):
    return services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Shop", "provider": "simulator"}
    )


def test_an_admin_adds_a_reply_an_agent_uses_it_then_it_is_edited_and_deleted(
    new_page, cast, password, session
):
    chat = said(session, "Do you deliver to Kowloon?", name="Mei Ling Chan")

    # Given an admin on the settings page, reached from the navigation
    admin = new_page()
    sign_in(admin, cast.admin, password)
    admin.get_by_role("link", name="Canned replies").click()
    expect(admin.get_by_role("heading", name="Canned replies", level=1)).to_be_visible()

    # When they fill in the new reply's fields by their labels and add it
    new_reply = admin.locator("section", has=admin.get_by_role("heading", name="New reply"))
    new_reply.get_by_label("Shortcut").fill("deliver")
    new_reply.get_by_label("Text").fill("Hi {{first_name}}, yes we deliver to Kowloon!")
    new_reply.get_by_role("button", name="Add reply").click()

    # Then it is listed
    expect(admin.get_by_role("status")).to_contain_text("Reply /deliver added.")
    row = admin.get_by_role("row", name="/deliver")
    expect(row).to_contain_text("Hi {{first_name}}, yes we deliver to Kowloon!")

    # And an agent typing "/" and the shortcut in the inbox is offered it, and gets it filled in
    agent = new_page()
    sign_in(agent, cast.agent, password)
    open_inbox(agent, cast.org_a, f"/o/acme/inbox/?chat={chat.uuid}")
    composer = agent.get_by_placeholder(re.compile("Write a reply"))
    composer.press_sequentially("/deli")
    expect(agent.get_by_role("option", name="/deliver")).to_be_visible()
    composer.press("Enter")
    expect(composer).to_have_value("Hi Mei, yes we deliver to Kowloon!")
    # An agent's navigation does not offer the page
    expect(agent.get_by_role("link", name="Canned replies")).to_have_count(0)

    # When the admin edits the reply's text in its row
    row.get_by_text("Edit /deliver").click()
    row.get_by_label("Text").fill("Hello {{name}}: we deliver every day.")
    row.get_by_role("button", name="Save").click()

    # Then the list shows the new text
    expect(admin.get_by_role("status")).to_contain_text("Reply /deliver saved.")
    row = admin.get_by_role("row", name="/deliver")
    expect(row).to_contain_text("Hello {{name}}: we deliver every day.")

    # And when they delete it, it is gone
    row.get_by_text("Edit /deliver").click()
    row.get_by_role("button", name="Delete /deliver").click()
    expect(admin.get_by_role("status")).to_contain_text("Reply /deliver deleted.")
    expect(admin.get_by_text("No canned replies yet.")).to_be_visible()
    assert not CannedReply.objects.filter(organization=cast.org_a).exists()
