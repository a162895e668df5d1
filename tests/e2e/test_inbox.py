"""The shared inbox in Chromium, on the live ASGI server with a real worker and the simulator:
messages arrive as websocket frames (no reload, no polling), replies tick sent → delivered →
read, one agent's assignment shows in another's browser, snoozed chats come back, search jumps
to the message, a viewer reads but cannot send."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import transaction

from crm.live import push_now
from messaging import ingest
from messaging.live import inbox_group
from messaging.models import CannedReply, Chat, ContactTag, Message, Tag
from messaging.services.chats import chats_wake
from sessions_app import services, simulation
from sessions_app.providers import events as ev
from tests.e2e.test_session_pairing import sign_in
from tests.sessions_app.test_cloud_api_flow import cloud_session
from tests.support.browser import elsewhere

pytestmark = pytest.mark.browser

PHONE = "447957189696"


@pytest.fixture
def session(cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Shop", "provider": "simulator"}
    )
    session.settings = {"messages_per_minute": 6000, "jitter_seconds": 0}
    session.save(update_fields=["settings"])
    return session


def said(session, *texts, **kwargs):
    return elsewhere(_said, session, *texts, **kwargs)


def _said(session, *texts, phone=PHONE, name="Reem Haddad", start=None, history=False):
    """Messages from ``phone``, applied as the worker applies a webhook (committed)."""
    start = start or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=len(texts))
    jid = f"{phone}@s.whatsapp.net"
    with transaction.atomic():
        ingest.handle(
            organization_id=session.organization_id,
            session_id=session.pk,
            webhook_event_ids=[0],
            events=[
                ev.MessageUpserted(
                    provider_message_id=f"IN-{phone}-{n}-{start.timestamp()}",
                    chat_jid=jid,
                    from_me=False,
                    timestamp=start + dt.timedelta(minutes=n),
                    body=text,
                    sender=ev.Party(phone=phone, jid=jid, name=name),
                    history=history,
                )
                for n, text in enumerate(texts)
            ],
        )
    return Chat.objects.get(session=session, contact__phone=phone)


def open_inbox(page, organization, path="/o/acme/inbox/"):
    """The inbox loaded and its socket subscribed (a probe frame came back)."""
    page.goto(path)
    page.wait_for_function("window.parleyInbox.loaded && window.parleyInbox.live")
    for attempt in range(40):
        elsewhere(push_now, inbox_group(organization.pk), "probe", {"n": attempt})
        if page.evaluate("window.parleyInbox.frames") == 0:
            page.wait_for_timeout(250)
        if page.evaluate("window.parleyInbox.frames") > 0:
            return
    raise AssertionError("the inbox socket never received a frame")


def fifty_within_a_second(session) -> None:
    """Five customers write ten messages each, all within a second (the simulator's webhooks,
    queued as the receiver queues them; the worker drains them)."""
    for n in range(50):
        simulation.simulate_inbound(
            session=session,
            phone=f"4479571800{n % 5:02d}",
            text=f"Order {n}",
            name=f"Buyer {n % 5}",
        )


def test_fifty_messages_in_a_second_each_reach_the_open_inbox_with_its_unread_count(
    new_page, cast, password, session, celery_worker
):
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)
    page.evaluate("window.__samePage = true")

    # When 50 messages from 5 customers arrive within a second
    elsewhere(fifty_within_a_second, session)

    # Then each conversation shows, unread 10, its newest message as the preview; the total is 50
    for buyer in range(5):
        row = page.locator(".chat-row", has_text=f"Buyer {buyer}")
        row.wait_for(timeout=20_000)
        page.wait_for_function(
            "([name, n]) => [...document.querySelectorAll('.chat-row')].some(r =>"
            " r.textContent.includes(name) && r.querySelector('[data-testid=unread]')"
            " && r.querySelector('[data-testid=unread]').textContent === n)",
            arg=[f"Buyer {buyer}", "10"],
            timeout=20_000,
        )
        assert row.locator(".chat-preview").inner_text() == f"Order {45 + buyer}"
    page.wait_for_function("document.title.startsWith('(50) ')", timeout=20_000)
    assert Message.objects.filter(session=session).count() == 50
    assert page.evaluate("window.__samePage") is True

    # And opening one shows its ten, in order, with nothing missing
    page.locator(".chat-row", has_text="Buyer 3").click()
    page.locator(".msg.in", has_text="Order 48").wait_for()
    shown = page.locator(".msg.in .msg-body, .msg.in").all_inner_texts()
    for n in range(3, 50, 5):
        assert any(f"Order {n}" in text for text in shown)


def requests_after_load(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def test_a_message_arrives_live_and_the_reply_ticks_sent_delivered_read(
    new_page, cast, password, session, celery_worker
):
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)
    page.evaluate("window.__samePage = true")
    fetched = requests_after_load(page)

    # When a customer writes (the simulator's webhook, drained by the worker)
    elsewhere(
        simulation.simulate_inbound,
        session=session,
        phone=PHONE,
        text="Is the shop open on Sunday?",
        name="Reem Haddad",
    )

    # Then the conversation appears at the top of the list, unread, without a request or reload
    row = page.locator(".chat-row", has_text="Reem Haddad")
    row.wait_for()
    assert row.locator(".chat-preview").inner_text() == "Is the shop open on Sunday?"
    assert row.locator("[data-testid=unread]").inner_text() == "1"
    assert page.title().startswith("(1) ")
    assert fetched == []
    assert page.evaluate("window.__samePage") is True

    # When the agent opens it and replies
    row.click()
    page.locator(".msg.in", has_text="Is the shop open on Sunday?").wait_for()
    page.wait_for_function("!document.title.startsWith('(')")  # read: the total is 0
    page.evaluate(
        """() => {
          window.__ticks = [];
          new MutationObserver(() => {
            const tick = document.querySelector('.msg.out .ticks');
            const status = tick && tick.dataset.status;
            if (status && window.__ticks[window.__ticks.length - 1] !== status) {
              window.__ticks.push(status);
            }
          }).observe(document.getElementById('message-list'),
                     {childList: true, subtree: true, attributes: true});
        }"""
    )
    page.fill("#composer-text", "Yes, 10 to 4.")
    page.press("#composer-text", "Enter")

    # Then the ticks go sent, delivered, read as the phone reports them
    page.wait_for_selector(".msg.out .ticks[data-status=sent]", timeout=20_000)
    # the phone's receipts, 1 s and 3 s on
    page.wait_for_selector(".msg.out .ticks[data-status=read]", timeout=20_000)
    ticks = page.evaluate("window.__ticks")
    assert [t for t in ticks if t in ("sent", "delivered", "read")] == ["sent", "delivered", "read"]
    assert page.locator("#composer-text").input_value() == ""
    assert page.evaluate("window.__samePage") is True
    assert Message.objects.get(direction="out").body == "Yes, 10 to 4."


def test_assignment_by_one_agent_shows_in_another_agents_browser_with_presence(
    new_page, cast, password, session
):
    chat = said(session, "Two boxes of oolong, please.")
    admin, agent = new_page(), new_page()
    sign_in(admin, cast.admin, password)
    sign_in(agent, cast.agent, password)
    open_inbox(agent, cast.org_a)
    open_inbox(admin, cast.org_a)
    agent.evaluate("window.__samePage = true")

    # When the agent opens the chat, the admin sees who is viewing it once they open it too
    agent.click(f".chat-row[data-chat='{chat.uuid}']")
    agent.locator(".msg.in").first.wait_for()
    admin.click(f".chat-row[data-chat='{chat.uuid}']")
    admin.wait_for_function(
        "document.getElementById('conv-presence').textContent.includes('Agent')"
    )
    assert admin.inner_text("#conv-presence") == f"{cast.agent.display_name} is viewing"

    # When the admin assigns it to the agent and resolves it
    admin.select_option("#conv-assignee", str(cast.agent.pk))
    agent.wait_for_function(f"document.getElementById('conv-assignee').value === '{cast.agent.pk}'")
    assert agent.locator(
        f".chat-row[data-chat='{chat.uuid}'] [data-testid=row-assignee]"
    ).inner_text() == (f"→ {cast.agent.display_name}")
    admin.click("#conv-resolve")

    # Then the agent's page shows it resolved (it leaves the open list), without a reload
    agent.wait_for_function("document.getElementById('conversation').dataset.status === 'resolved'")
    agent.wait_for_selector(f".chat-row[data-chat='{chat.uuid}']", state="detached")
    assert agent.evaluate("window.__samePage") is True
    chat.refresh_from_db()
    assert (chat.assignee_id, chat.status) == (cast.agent.pk, "resolved")


def test_a_snoozed_chat_comes_back_when_its_time_comes_or_the_contact_writes(
    new_page, cast, password, session
):
    first = said(session, "Call me next week", phone="85291234567", name="Mei Ling Chan")
    second = said(session, "Send the invoice later", phone="85298765432", name="Bo Li")
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)

    # When the agent snoozes the first for an hour
    page.click(f".chat-row[data-chat='{first.uuid}']")
    page.click("#conv-snooze summary")
    page.click("[data-snooze='1h']")
    page.wait_for_selector(f".chat-row[data-chat='{first.uuid}']", state="detached")
    assert Chat.objects.get(pk=first.pk).status == "snoozed"
    # ... and the second until tomorrow
    page.click(f".chat-row[data-chat='{second.uuid}']")
    page.click("#conv-snooze summary")
    page.click("[data-snooze='tomorrow']")
    page.wait_for_selector(f".chat-row[data-chat='{second.uuid}']", state="detached")

    # Then the first comes back when its hour is up (the beat's wake-up)
    elsewhere(chats_wake, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, minutes=1))
    page.wait_for_selector(f".chat-row[data-chat='{first.uuid}']")
    assert page.locator(f".chat-row[data-chat='{second.uuid}']").count() == 0
    # ... and the second as soon as its contact writes again
    said(session, "Actually, send it now", phone="85298765432", name="Bo Li")
    page.wait_for_selector(f".chat-row[data-chat='{second.uuid}']")
    assert Chat.objects.get(pk=second.pk).status == "open"


def test_search_finds_by_word_and_filter_and_opens_the_message_in_its_conversation(
    new_page, cast, password, session
):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    texts = [f"Routine update number {n}" for n in range(120)]
    texts[30] = "The invoice for the oolong order is attached"
    chat = said(session, *texts, start=start, history=True)
    said(session, "Where is my invoice?", phone="85291234567", name="Mei Ling Chan")
    target = Message.objects.get(body__startswith="The invoice")
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)

    # When the agent searches a word, only in that session's text messages
    page.fill("#search-q", "invoice")
    page.click(".search-more summary")
    page.select_option("#search-type", "text")
    page.press("#search-q", "Enter")
    hits = page.locator(".hit")
    hits.first.wait_for()
    assert hits.count() == 2
    assert page.locator(".hit mark").first.inner_text().lower() == "invoice"
    page.check("#search-media")
    page.press("#search-q", "Enter")
    page.wait_for_selector("#chat-list-note:has-text('No messages match')")
    page.uncheck("#search-media")
    page.press("#search-q", "Enter")
    page.locator(f".hit[data-message='{target.uuid}']").wait_for()

    # Then choosing the old hit opens its conversation scrolled to it, far back in its history
    page.click(f".hit[data-message='{target.uuid}']")
    node = page.locator(f".msg.target[data-id='{target.uuid}']")
    node.wait_for()
    assert node.is_visible() and "invoice for the oolong" in node.inner_text()
    assert page.locator("#load-newer").is_visible()  # newer pages follow, on scroll
    assert re.search(rf"message={target.uuid}", page.url)
    assert page.locator(f"#conv-title:has-text('{chat.contact.display_name}')").count() == 1


def test_history_loads_backwards_a_page_at_a_time_with_day_separators(
    new_page, cast, password, session
):
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2, hours=1)
    chat = said(session, *[f"line {n}" for n in range(130)], start=start, history=True)
    said(session, "And today", start=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a, f"/o/acme/inbox/?chat={chat.uuid}")

    page.locator(".msg", has_text="And today").wait_for()
    assert page.locator(".msg").count() == 50  # one page, the newest
    assert page.locator(".day").last.inner_text() == "Today"
    for expected in (100, 131):
        page.evaluate("document.getElementById('messages').scrollTop = 0")
        page.wait_for_function(f"document.querySelectorAll('.msg').length === {expected}")
    assert page.inner_text("#history-edge") == "The start of the conversation."
    days = page.locator(".day").all_inner_texts()  # two days ago, then today
    assert len(days) == 2 and days[-1] == "Today" and days[0] not in ("Today", "Yesterday")
    assert page.locator(".msg .body").first.inner_text() == "line 0"


def test_a_private_note_and_a_canned_reply_from_the_composer(new_page, cast, password, session):
    chat = said(session, "Do you deliver to Kowloon?", name="Mei Ling Chan")
    CannedReply.objects.create(
        organization=cast.org_a, shortcut="deliver", text="Hi {{first_name}}, yes we deliver!"
    )
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a, f"/o/acme/inbox/?chat={chat.uuid}")
    page.locator(".msg.in").wait_for()

    page.click("#mode-note")
    page.fill("#composer-text", "VIP customer")
    page.press("#composer-text", "Enter")
    note = page.locator(".note", has_text="VIP customer")
    note.wait_for()
    assert "Private note" in note.inner_text()

    page.click("#mode-reply")
    page.type("#composer-text", "/del")
    page.locator("#canned li", has_text="/deliver").wait_for()
    page.press("#composer-text", "Enter")
    page.wait_for_function(
        "document.getElementById('composer-text').value === 'Hi Mei, yes we deliver!'"
    )
    assert Message.objects.filter(direction="out").count() == 0  # a note is never sent


def test_a_viewer_sees_the_inbox_but_cannot_send_or_change_it(new_page, cast, password, session):
    chat = said(session, "Hello?")
    page = new_page()
    sign_in(page, cast.viewer, password)
    open_inbox(page, cast.org_a, f"/o/acme/inbox/?chat={chat.uuid}")
    page.locator(".msg.in", has_text="Hello?").wait_for()

    assert page.locator("#composer").count() == 0
    assert page.is_visible("#read-only")
    assert page.is_disabled("#conv-assignee") and page.is_disabled("#conv-resolve")
    chat.refresh_from_db()
    assert chat.unread_count == 1  # a viewer reading does not mark it read for the team


def test_a_cloud_api_chat_past_24_hours_only_takes_notes(new_page, cast, password):
    session = cloud_session(cast.org_a, cast.admin)
    chat = said(session, "Hi", start=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30))
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a, f"/o/acme/inbox/?chat={chat.uuid}")
    page.locator(".msg.in").wait_for()

    assert page.is_visible("#window-banner")
    assert page.is_disabled("#mode-reply")
    assert page.get_attribute("#composer", "data-mode") == "note"


def test_a_new_message_in_your_chat_notifies_you_and_counts_in_the_title(
    new_page, cast, password, session
):
    mine = said(session, "Hello", phone="85291234567", name="Mei Ling Chan")
    theirs = said(session, "Hi", phone="85298765432", name="Bo Li")
    Chat.objects.filter(pk=mine.pk).update(assignee=cast.agent, unread_count=0)
    Chat.objects.filter(pk=theirs.pk).update(assignee=cast.admin, unread_count=0)
    page = new_page()
    page.context.grant_permissions(["notifications"])
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)
    assert not page.title().startswith("(")

    said(session, "Are you there?", phone="85298765432", name="Bo Li")  # the admin's chat
    page.wait_for_function("document.title.startsWith('(1) ')")
    said(session, "Hello again", phone="85291234567", name="Mei Ling Chan")  # the agent's
    page.wait_for_function("document.title.startsWith('(2) ')")

    assert page.evaluate("window.parleyInbox.notified") == 1  # only for the agent's own chat


def test_a_reply_with_a_photo_quotes_the_message_it_answers(new_page, cast, password, session):
    chat = said(session, "What colour is the teapot?")
    question = Message.objects.get(chat=chat)
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a, f"/o/acme/inbox/?chat={chat.uuid}")
    page.locator(".msg.in").hover()
    page.click(".msg.in [data-action=reply]")
    assert "What colour is the teapot?" in page.inner_text("#reply-to")

    page.set_input_files(
        "#attach", files=[{"name": "teapot.png", "mimeType": "image/png", "buffer": PNG}]
    )
    assert page.inner_text("#attachment-name").startswith("teapot.png")
    page.fill("#composer-text", "This one, in celadon")
    page.click("#send")

    sent = page.locator(".msg.out")
    sent.wait_for()
    assert sent.locator(".quote").inner_text() == "What colour is the teapot?"
    assert sent.locator(".body").inner_text() == "This one, in celadon"
    sent.locator("img.image").wait_for()
    assert page.evaluate("document.querySelector('.msg.out img.image').naturalWidth") == 1
    message = Message.objects.get(direction="out")
    assert (message.type, message.caption, message.quoted_id) == (
        "image",
        "This one, in celadon",
        question.pk,
    )


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def test_filters_archive_mark_unread_and_more_chats_on_scroll(new_page, cast, password, session):
    people = [(f"8529{n:07d}", f"Customer {n:02d}") for n in range(60)]
    for phone, name in people:
        said(session, f"Hello from {name}", phone=phone, name=name)
    Chat.objects.filter(organization=cast.org_a).update(unread_count=0)
    busy = Chat.objects.get(contact__phone=people[-1][0])  # the newest
    Chat.objects.filter(contact__phone=people[3][0]).update(needs_human=True)
    vip = Tag.objects.create(organization=cast.org_a, name="VIP")
    tagged = Chat.objects.get(contact__phone=people[7][0])
    ContactTag.objects.create(organization=cast.org_a, contact=tagged.contact, tag=vip)
    page = new_page()
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)
    rows = page.locator(".chat-row")

    # A page of 50; scrolling the list down brings the rest
    assert rows.count() == 50
    page.locator(".inbox-list").evaluate("list => list.scrollTop = list.scrollHeight")
    page.wait_for_function("document.querySelectorAll('.chat-row').length === 60")

    # Needing a human, and a tag, narrow the list
    page.check("#filter-human")
    page.wait_for_function("document.querySelectorAll('.chat-row').length === 1")
    assert rows.locator(".chat-title").inner_text() == people[3][1]
    page.uncheck("#filter-human")
    page.select_option("#filter-tag", str(vip.pk))
    page.wait_for_selector(f".chat-row[data-chat='{tagged.uuid}']")
    assert rows.count() == 1
    page.select_option("#filter-tag", "")
    page.wait_for_function("document.querySelectorAll('.chat-row').length === 50")

    # Marked unread, a chat shows its badge and counts in the title; archived, it leaves the list
    page.click(f".chat-row[data-chat='{busy.uuid}']")
    page.locator(".msg.in").wait_for()
    page.click("#conv-unread")
    page.locator(f".chat-row[data-chat='{busy.uuid}'] [data-testid=unread]").wait_for()
    page.wait_for_function("document.title.startsWith('(1) ')")
    page.click("#conv-archive")
    page.wait_for_selector(f".chat-row[data-chat='{busy.uuid}']", state="detached")
    page.check("#filter-archived")
    page.wait_for_selector(f".chat-row[data-chat='{busy.uuid}']")
    assert rows.count() == 1
    assert Chat.objects.get(pk=busy.pk).archived is True


def test_after_its_socket_drops_the_inbox_reconnects_and_catches_up(
    new_page, cast, password, session
):
    # Given an open inbox whose socket passes frames through a proxy the test controls
    connections_made, dropped, passing = [], [], [True]

    def proxy(route):
        server = route.connect_to_server()
        connections_made.append(route)

        def to_page(frame):
            if passing[0] or len(connections_made) > 1:
                route.send(frame)
            else:
                dropped.append(frame)

        server.on_message(to_page)

    page = new_page()
    page.route_web_socket(re.compile(r"/ws/o/acme/inbox/$"), proxy)
    sign_in(page, cast.agent, password)
    open_inbox(page, cast.org_a)
    page.evaluate("window.__samePage = true")

    # When the network loses a new message's frame, then the connection itself
    passing[0] = False
    said(session, "Anyone there?", phone="85291234567", name="Mei Ling Chan")
    for _ in range(40):
        if any("inbox.update" in str(frame) for frame in dropped):
            break
        page.wait_for_timeout(250)
    assert any("inbox.update" in str(frame) for frame in dropped)
    assert page.locator(".chat-row", has_text="Mei Ling Chan").count() == 0
    connections_made[0].close(code=1001, reason="network lost")
    page.wait_for_function("document.getElementById('inbox').dataset.live === 'off'")

    # Then it reconnects by itself and shows what it missed, unread, with no reload
    page.wait_for_function("document.getElementById('inbox').dataset.live === 'on'", timeout=15000)
    row = page.locator(".chat-row", has_text="Mei Ling Chan")
    row.wait_for()
    assert row.locator(".chat-preview").inner_text() == "Anyone there?"
    assert row.locator("[data-testid=unread]").inner_text() == "1"
    page.wait_for_function("document.title.startsWith('(1) ')")
    assert len(connections_made) == 2
    assert page.evaluate("window.__samePage") is True
