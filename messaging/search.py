"""Full-text search over message bodies and captions, within one organization.

Every word of the query must appear, as a word or the start of one ("deliv" finds "delivery"),
in the body or the caption, whatever its case. There the match is a
``tsvector`` expression with the ``simple`` configuration (no stemming: our users write in many
languages) served by a GIN index over the same expression (migration 0007, PostgreSQL only, so
the schema stays portable). SQLite, the embedded default, matches each word as a substring
instead: slower on a large table, the same results for whole words.

Results come newest first. For a word in few messages PostgreSQL reads them all from the GIN
index and sorts them; for a word in many it walks the organization's messages newest first
(``message_org_time``, migration 0011) until the page is full, choosing by its statistics of
the word's frequency. The walk assumes the matches are spread over time: for a fairly common
word whose matches are all old it would read most of the organization's messages, so
``paginate`` gives it a time budget and otherwise asks again with the GIN index
(bench/inbox_queries.py measures each case). ``highlight`` gives a short, HTML-escaped excerpt
with the matched words in ``<mark>``, the same on both databases.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
import unicodedata

from django.db import OperationalError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import Organization
from accounts.tenancy import scoped
from crm.errors import ApplicationError
from messaging.models import MediaState, Message

# The expression migration 0007 indexes: a query must spell it the same to use the index.
VECTOR = (
    "to_tsvector('simple'::regconfig, messaging_message.body || ' ' || messaging_message.caption)"
)
WORD = re.compile(r"\w+")
# How long a page may take before the newest-first walk is abandoned for the GIN index (ms).
WALK_BUDGET_MS = 50
MAX_WORDS = 8
EXCERPT = 160  # characters around the first match


def words_of(query: str) -> list[str]:
    """The query's words, lowercased, each once, in order (punctuation and operators ignored)."""
    found = dict.fromkeys(w.lower() for w in WORD.findall(query or ""))
    return list(found)[:MAX_WORDS]


def message_search(
    *,
    organization: Organization,
    query: str,
    chat=None,
    session=None,
    sender_id: int | None = None,
    type: str | None = None,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    has_media: bool | None = None,
) -> QuerySet[Message]:
    """The organization's messages matching every word of ``query`` and the filters, newest
    first. A query without a word is refused (searching for nothing lists everything)."""
    words = words_of(query)
    if not words:
        raise ApplicationError(
            "Type at least one word to search for.", fields={"q": ["No word to search for."]}
        )
    messages = scoped(Message, organization)
    if connection.vendor == "postgresql":
        terms = " & ".join(f"'{word}':*" for word in words)  # \w+ holds no quote
        matches = RawSQL(f"{VECTOR} @@ to_tsquery('simple'::regconfig, %s)", [terms])  # noqa: S611 - the terms a parameter
        messages = messages.filter(ExpressionWrapper(matches, output_field=BooleanField()))
    else:
        for word in words:
            messages = messages.filter(Q(body__icontains=word) | Q(caption__icontains=word))
    if chat is not None:
        messages = messages.filter(chat=chat)
    if session is not None:
        messages = messages.filter(session=session)
    if sender_id is not None:
        messages = messages.filter(sender_id=sender_id)
    if type:
        messages = messages.filter(type=type)
    if after is not None:
        messages = messages.filter(timestamp__gte=after)
    if before is not None:
        messages = messages.filter(timestamp__lt=before)
    if has_media is not None:
        with_media = ~Q(media_state=MediaState.NONE)
        messages = messages.filter(with_media if has_media else ~with_media)
    return messages.order_by("-timestamp", "-id")


def paginate(paginator, queryset: QuerySet, request, view) -> list:
    """``paginator.paginate_queryset`` for a search, with PostgreSQL's bet bounded. For a word
    it thinks common, PostgreSQL walks the messages newest first until the page is full; when
    the word's matches are all old, that walk reads most of the organization. So the page gets
    ``WALK_BUDGET_MS``; past it, it is asked again with index scans off, which leaves the GIN
    index (every match read, then sorted: proportional to the matches, not the organization).
    """
    if connection.vendor != "postgresql":
        return paginator.paginate_queryset(queryset, request, view=view)
    try:
        return _page_with("statement_timeout", WALK_BUDGET_MS, paginator, queryset, request, view)
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) != "57014":  # query_canceled
            raise
    return _page_with("enable_indexscan", "off", paginator, queryset, request, view)


def _page_with(setting: str, value, paginator, queryset, request, view) -> list:
    """The page, read with ``setting`` changed for it alone (in a transaction of its own, or a
    savepoint of the caller's, where it is put back before the savepoint is released)."""
    inside = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL {setting} = {value}")
        page = paginator.paginate_queryset(queryset, request, view=view)
        if inside:
            cursor.execute(f"SET LOCAL {setting} = DEFAULT")
        return page


def highlight(message: Message, words: list[str]) -> str:
    """An excerpt of the body (or the caption, if only it matches) around the first matched
    word, HTML-escaped, each word start that matched wrapped in ``<mark>``."""
    starts = _word_starts(tuple(words))
    text, first = message.body or message.caption, None
    for candidate in (message.body, message.caption):
        spans = _spans(candidate, starts) if candidate else []
        if spans:
            text, first = candidate, spans[0][0]
            break
    start = 0 if first is None else max(0, first - EXCERPT // 3)
    end = min(len(text), start + EXCERPT)
    excerpt = text[start:end]
    marked = []
    position = 0
    for begin, finish in _spans(excerpt, starts):
        marked.append(html.escape(excerpt[position:begin]))
        marked.append(f"<mark>{html.escape(excerpt[begin:finish])}</mark>")
        position = finish
    marked.append(html.escape(excerpt[position:]))
    prefix = "…" if start else ""
    suffix = "…" if end < len(text) else ""
    return prefix + "".join(marked) + suffix


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _spans(text: str, starts: re.Pattern | None) -> list[tuple[int, int]]:
    """Where ``starts`` (``_word_starts``) finds its words in ``text``, folded."""
    if starts is None:
        return []
    folded = _fold(text)
    if len(folded) != len(text):  # folding changed the length: no safe positions
        folded = text.lower()
    return [match.span() for match in starts.finditer(folded)]


@functools.lru_cache(maxsize=128)
def _word_starts(words: tuple[str, ...]) -> re.Pattern | None:
    """A pattern for one of ``words`` at the start of a word (``WORD``), the longest first: one
    scan of the text instead of a comparison of each of its words with each of ``words``. (A
    "word" that is not all word characters starts no word, so it is left out.)"""
    usable = sorted((w for w in words if WORD.fullmatch(w)), key=len, reverse=True)
    if not usable:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, usable)) + ")")
