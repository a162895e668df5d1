"""Message search through the API: every word (or its start) in a body or caption, filters,
highlighted excerpts, newest first, within the organization only."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.db import connection, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging import ingest, search
from messaging.models import Contact, Message
from sessions_app import services
from sessions_app.providers import events as ev

T0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
SEARCH = "/api/v1/messages/search/"


def make_session(cast, organization=None, name="Desk"):
    return services.session_create(
        organization=organization or cast.org_a,
        actor=cast.admin if organization is None else cast.b_member,
        data={"name": name, "provider": "simulator"},
    )


def say(session, n, body, *, phone="85291234567", name="Ann", caption="", **fields):
    message = ev.MessageUpserted(
        provider_message_id=f"S{session.pk}-{n}",
        chat_jid=f"{phone}@s.whatsapp.net",
        from_me=False,
        timestamp=T0 + dt.timedelta(minutes=n),
        body=body,
        caption=caption,
        sender=ev.Party(phone=phone, jid=f"{phone}@s.whatsapp.net", name=name),
        **fields,
    )
    with transaction.atomic():
        ingest.apply(session, [message])


def bodies(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [m["body"] or m["caption"] for m in response.json()["results"]]


@pytest.fixture
def desk(cast):
    session = make_session(cast)
    say(session, 1, "Your ORDER 1042 ships tomorrow")
    say(session, 2, "Delivery was late, where is my order?", phone="85298765432", name="Bo")
    say(session, 3, "Thanks! <b>great</b> delivery")
    say(
        session,
        4,
        "",
        caption="Invoice for order 1042",
        type="image",
        media=ev.Media(url="https://files.example/i.jpg", mime_type="image/jpeg"),
    )
    say(session, 5, "nothing to see here")
    return session


def test_every_word_or_its_start_matches_newest_first_with_marks(cast, api, desk):
    client = api(cast.viewer)  # reading is enough

    assert bodies(client.get(SEARCH, {"q": "order"})) == [
        "Invoice for order 1042",
        "Delivery was late, where is my order?",
        "Your ORDER 1042 ships tomorrow",
    ]
    assert bodies(client.get(SEARCH, {"q": "deliv ORDER"})) == [
        "Delivery was late, where is my order?"
    ]
    assert bodies(client.get(SEARCH, {"q": "1042"})) == [
        "Invoice for order 1042",
        "Your ORDER 1042 ships tomorrow",
    ]
    assert bodies(client.get(SEARCH, {"q": "refund"})) == []

    results = client.get(SEARCH, {"q": "deliv"}).json()["results"]
    assert results[0]["highlight"] == "Thanks! &lt;b&gt;great&lt;/b&gt; <mark>deliv</mark>ery"
    assert results[1]["highlight"] == "<mark>Deliv</mark>ery was late, where is my order?"
    caption = client.get(SEARCH, {"q": "invoice"}).json()["results"][0]
    assert caption["highlight"] == "<mark>Invoice</mark> for order 1042"
    assert caption["chat"] and caption["id"] and caption["type"] == "image"


def test_filters_narrow_the_results(cast, api, desk):
    client = api(cast.agent)
    bo = Contact.objects.get(organization=cast.org_a, phone="85298765432")
    other = make_session(cast, name="Second")
    say(other, 9, "an order on the other number")

    def found(**params):
        return bodies(client.get(SEARCH, {"q": "order", **params}))

    assert found(session=str(other.uuid)) == ["an order on the other number"]
    assert found(sender=bo.pk) == ["Delivery was late, where is my order?"]
    assert found(type="image") == ["Invoice for order 1042"]
    assert found(has_media="true") == ["Invoice for order 1042"]
    assert len(found(has_media="false")) == 3
    assert found(after="2026-11-01T09:02:00Z", before="2026-11-01T09:04:00Z") == [
        "Delivery was late, where is my order?"
    ]
    ann_chat = client.get(SEARCH, {"q": "tomorrow"}).json()["results"][0]["chat"]
    assert found(chat=ann_chat) == ["Invoice for order 1042", "Your ORDER 1042 ships tomorrow"]


def test_another_organizations_messages_are_never_found(cast, api, desk):
    theirs = make_session(cast, organization=cast.org_b)
    say(theirs, 1, "order 1042 of the other organization")

    assert len(bodies(api(cast.agent).get(SEARCH, {"q": "order"}))) == 3
    assert bodies(api(cast.b_member, cast.org_b).get(SEARCH, {"q": "order"})) == [
        "order 1042 of the other organization"
    ]
    refused = api(cast.agent).get(SEARCH, {"q": "order", "session": str(theirs.uuid)})
    assert refused.status_code == 400 and refused.json()["error"]["fields"]["session"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": "!!! ..."}, "q"), ({}, "q"), ({"q": "x", "after": "yesterday"}, "after")],
)
def test_a_search_without_words_or_with_a_bad_filter_is_a_clear_400(cast, api, desk, params, field):
    response = api(cast.agent).get(SEARCH, params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_results_page_with_a_cursor(cast, api, desk):
    client = api(cast.agent)
    first = client.get(SEARCH, {"q": "order", "page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    rest = client.get(first["next"]).json()
    assert [m["body"] for m in rest["results"]] == ["Your ORDER 1042 ships tomorrow"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index is PostgreSQL's")
def test_the_search_uses_its_gin_index(cast, desk):
    from messaging.search import message_search

    query = message_search(organization=cast.org_a, query="deliv order")
    sql, params = query.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # The other way to a page: the newest-first walk (migration 0011), for common words.
        cursor.execute("DROP INDEX message_org_time")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)  # the index back
    assert "message_text_search" in plan, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the walk's budget is PostgreSQL's")
def test_a_page_past_its_time_budget_is_asked_again_without_the_walk(cast, api, desk, monkeypatch):
    from crm.api import CursorPagination

    real = CursorPagination.paginate_queryset
    asked = []

    def slow_the_first_time(self, queryset, request, view=None):
        with connection.cursor() as cursor:
            cursor.execute("SHOW enable_indexscan")
            asked.append(cursor.fetchone()[0])
            if len(asked) == 1:
                cursor.execute("SELECT pg_sleep(1)")  # past the budget: cancelled
        return real(self, queryset, request, view)

    monkeypatch.setattr(CursorPagination, "paginate_queryset", slow_the_first_time)
    response = api(cast.agent).get(SEARCH, {"q": "order"})

    assert response.status_code == 200
    assert [m["body"] for m in response.json()["results"]][-1] == "Your ORDER 1042 ships tomorrow"
    assert asked == ["on", "off"]


def word_by_word(text: str, words: list[str]) -> list[tuple[int, int]]:
    """Where ``search.highlight`` marks ``words`` in ``text``, found the plain way: each word of
    the folded text compared with each query word, the longest that starts it kept."""
    folded = search._fold(text)
    if len(folded) != len(text):
        folded = text.lower()
    found = []
    for token in search.WORD.finditer(folded):
        longest = max((w for w in words if token.group().startswith(w)), key=len, default=None)
        if longest:
            found.append((token.start(), token.start() + len(longest)))
    return found


def highlight_word_by_word(body: str, caption: str, words: list[str]) -> str:
    """``search.highlight`` as it was written first, on ``word_by_word``."""
    text = next((t for t in (body, caption) if t and word_by_word(t, words)), body or caption)
    first = next((begin for begin, _end in word_by_word(text, words)), None)
    start = 0 if first is None else max(0, first - search.EXCERPT // 3)
    end = min(len(text), start + search.EXCERPT)
    excerpt, marked, position = text[start:end], [], 0
    for begin, finish in word_by_word(excerpt, words):
        marked.append(html.escape(excerpt[position:begin]))
        marked.append(f"<mark>{html.escape(excerpt[begin:finish])}</mark>")
        position = finish
    marked.append(html.escape(excerpt[position:]))
    return ("…" if start else "") + "".join(marked) + ("…" if end < len(text) else "")


# Letters whose folding (NFKC, lower case) changes, or changes the length: ligatures, a
# dotted capital I, a sharp s, a title-case digraph, a Roman numeral, a combining accent; and
# what HTML escapes.
LETTERS = st.sampled_from([*"abcdeé Éİiıßẞﬁ-_1·\u0301ǅﬀⅫ\n<&"])
SAMPLE = st.text(alphabet=LETTERS, max_size=40)


@settings(max_examples=400, deadline=None)
@given(text=SAMPLE, query=SAMPLE)
def test_it_marks_the_words_a_word_by_word_comparison_would(text, query):
    words = search.words_of(query)

    marked = search._spans(text, search._word_starts(tuple(words)))

    assert marked == word_by_word(text, words)


# Text whose first match may be anywhere: after up to 100 words no query here has.
LONG = st.builds(lambda n, text: "zz " * n + text, st.integers(0, 100), SAMPLE)


@settings(max_examples=300, deadline=None)
@given(body=LONG, caption=LONG, query=SAMPLE)
def test_it_highlights_as_the_word_by_word_comparison_would(body, caption, query):
    words = search.words_of(query)

    excerpt = search.highlight(Message(body=body, caption=caption), words)

    assert excerpt == highlight_word_by_word(body, caption, words)
