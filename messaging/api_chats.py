"""The conversations API: chats (list, detail, mark read, archive, assign, status), messages (list
with a cursor, detail, search, send with ``Idempotency-Key``, react, retry), media behind a
tenant check, and per-session stats. Ids in URLs are the public uuids."""

from __future__ import annotations

import re
import uuid

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import (
    BooleanField,
    Count,
    F,
    Manager,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Sum,
)
from django.db.models.expressions import RawSQL
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.tenancy import TenantAPIMixin, scoped
from crm.api import StrictSerializer
from crm.uploads import accepts_uploads
from messaging import presence, search
from messaging.api_rows import Row, choice, current_zone, rows, shown, text, values_of, when
from messaging.models import (
    CannedReply,
    Chat,
    ChatKind,
    ChatNote,
    ChatStatus,
    Contact,
    Direction,
    MediaState,
    Message,
    Reaction,
)
from messaging.services import chats as chat_services
from messaging.services import inbox, outbox
from sessions_app.models import WhatsAppSession

# --- Serializers ---------------------------------------------------------------------------------


# The hot read serializers write their rows by hand, from model instances or from a list's
# ``Row``s (messaging/api_rows.py says why; tests/messaging/test_api_rows.py checks each row
# against DRF's own): a field added to ``Meta.fields`` must be added to the row too.


# For a serializer that writes its rows by hand: the time zone its times are written in,
# looked up once (a list's rows share their serializer). No docstring: the schema would take
# it for the serializers' description.
class _Rows:
    def _zone(self):
        try:
            return self._time_zone
        except AttributeError:
            self._time_zone = current_zone()
            return self._time_zone


class ChatSerializer(_Rows, serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    session = serializers.UUIDField(source="session.uuid", read_only=True)
    session_colour = serializers.CharField(source="session.colour", read_only=True)
    contact = serializers.SerializerMethodField()
    title = serializers.SerializerMethodField()
    initials = serializers.SerializerMethodField()
    last_message = serializers.SerializerMethodField()

    class Meta:
        model = Chat
        fields = [
            "id",
            "session",
            "session_colour",
            "kind",
            "contact",
            "title",
            "initials",
            "jid",
            "name",
            "status",
            "snoozed_until",
            "assignee",
            "needs_human",
            "unread_count",
            "last_message",
            "last_message_at",
            "last_incoming_at",
            "archived",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, chat) -> dict:
        title, zone = self.get_title(chat), self._zone()
        return {
            "id": text(chat.uuid),
            "session": text(shown(chat, "session", "uuid")),
            "session_colour": text(shown(chat, "session", "colour")),
            "kind": choice(chat.kind),
            "contact": self.get_contact(chat),
            "title": title,
            "initials": self.get_initials(chat, title),
            "jid": text(chat.jid),
            "name": text(chat.name),
            "status": choice(chat.status),
            "snoozed_until": when(chat.snoozed_until, zone),
            "assignee": chat.assignee_id,
            "needs_human": bool(chat.needs_human),
            "unread_count": int(chat.unread_count),
            "last_message": self.get_last_message(chat),
            "last_message_at": when(chat.last_message_at, zone),
            "last_incoming_at": when(chat.last_incoming_at, zone),
            "archived": bool(chat.archived),
            "created_at": when(chat.created_at, zone),
        }

    def get_contact(self, chat) -> dict | None:
        if chat.contact_id is None:
            return None
        phone = shown(chat, "contact", "phone")
        return {
            "id": chat.contact_id,
            "display_name": shown(chat, "contact", "display_name"),
            "phone": f"+{phone}" if phone else None,
        }

    def get_title(self, chat) -> str:
        """What the inbox calls the chat: the contact's name, a group's subject, else its JID."""
        if chat.contact_id is not None:
            return shown(chat, "contact", "display_name") or chat.jid
        return chat.name or chat.jid

    def get_initials(self, chat, title: str | None = None) -> str:
        """The first letters of the title's first and last words ("Mei Ling Chan": MC)."""
        title = self.get_title(chat) if title is None else title
        words = [w for w in title.replace("+", "").split() if w[:1].isalnum()]
        if not words:
            return "#"
        return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()

    def get_last_message(self, chat) -> dict | None:
        """The newest message, for the list's preview (loaded for a whole page at once)."""
        message = self.context.get("last_messages", {}).get(chat.pk)
        if message is None:
            return None
        return {
            "id": str(message.uuid),
            "direction": message.direction,
            "type": message.type,
            "preview": (message.body or message.caption)[:PREVIEW],
            "status": message.status,
            "revoked": message.revoked_at is not None,
            "timestamp": message.timestamp,
        }


PREVIEW = 120  # characters of a chat's last message in the list


# What a chat's preview shows of its last message (``ChatSerializer.get_last_message``).
PREVIEW_VALUES = values_of(
    Message,
    ("chat", "uuid", "direction", "type", "body", "caption", "status", "revoked_at", "timestamp"),
)


NEWEST = "newest_message_id"  # a chat's newest message, read with the chat (the list's rows)
_UNREAD = object()


def newest_message(organization) -> Subquery:
    """The id of a chat's newest message, as a subquery of the chat's query: one indexed look-up
    (``message_chat_time``, read backwards)."""
    messages = scoped(Message, organization).filter(chat=OuterRef("pk"))
    return Subquery(messages.order_by("-timestamp", "-id").values("pk")[:1])


def last_messages(organization, chats) -> dict[int, Row]:
    """Each chat's newest message (by chat id), as a ``Row`` of what its preview shows
    (``PREVIEW_VALUES``), in one query: by the ids read with the chats (``NEWEST``, the list's
    rows), or else with one ``newest_message`` look-up per chat inside it."""
    messages = scoped(Message, organization)
    known = [getattr(chat, NEWEST, _UNREAD) for chat in chats]
    if _UNREAD in known:
        chosen = scoped(Chat, organization).filter(pk__in=[chat.pk for chat in chats])
        ids = chosen.values(newest=newest_message(organization))
    else:
        ids = [pk for pk in known if pk is not None]
    found = messages.filter(pk__in=ids).order_by().values(*PREVIEW_VALUES)
    return {row.chat_id: row for row in rows(found)}


class _MessageList(serializers.ListSerializer):
    """Messages: their reactions read for the whole list at once (``load_reactions``)."""

    def to_representation(self, data) -> list[dict]:
        messages = list(data.all() if isinstance(data, Manager) else data)
        load_reactions(messages)
        return super().to_representation(messages)


def load_reactions(messages) -> None:
    """Gives each message (an instance or a ``Row``) its reactions, oldest first, as ``Row``s
    (``REACTIONS``, which ``MessageSerializer`` reads), with one query for all. A message given
    them already (a prefetch) is left alone."""
    pending = [message for message in messages if not hasattr(message, REACTIONS)]
    found: dict[int, list[Row]] = {}
    if pending:
        asked = [message.pk for message in pending]
        reactions = Reaction.objects.filter(message_id__in=asked).order_by("timestamp")
        for reaction in rows(reactions.values("message_id", "actor", "emoji", "timestamp")):
            found.setdefault(reaction.message_id, []).append(reaction)
    for message in pending:
        setattr(message, REACTIONS, found.get(message.pk, []))


class MessageSerializer(_Rows, serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    chat = serializers.UUIDField(source="chat.uuid", read_only=True)
    session = serializers.UUIDField(source="session.uuid", read_only=True)
    sender = serializers.SerializerMethodField()
    media = serializers.SerializerMethodField()
    quoted = serializers.SerializerMethodField()
    reactions = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = Message
        list_serializer_class = _MessageList
        fields = [
            "id",
            "chat",
            "session",
            "provider_message_id",
            "direction",
            "type",
            "body",
            "caption",
            "data",
            "sender",
            "sender_jid",
            "push_name",
            "media",
            "quoted",
            "quoted_provider_id",
            "edits",
            "revoked_at",
            "status",
            "sent_at",
            "delivered_at",
            "read_at",
            "played_at",
            "failed_at",
            "error",
            "timestamp",
            "history",
            "reactions",
        ]
        read_only_fields = fields

    def to_representation(self, message) -> dict:
        zone = self._zone()
        return {
            "id": text(message.uuid),
            "chat": text(shown(message, "chat", "uuid")),
            "session": text(shown(message, "session", "uuid")),
            "provider_message_id": text(message.provider_message_id),
            "direction": choice(message.direction),
            "type": text(message.type),
            "body": text(message.body),
            "caption": text(message.caption),
            "data": message.data,
            "sender": self.get_sender(message),
            "sender_jid": text(message.sender_jid),
            "push_name": text(message.push_name),
            "media": self.get_media(message),
            "quoted": self.get_quoted(message),
            "quoted_provider_id": text(message.quoted_provider_id),
            "edits": message.edits,
            "revoked_at": when(message.revoked_at, zone),
            "status": choice(message.status),
            "sent_at": when(message.sent_at, zone),
            "delivered_at": when(message.delivered_at, zone),
            "read_at": when(message.read_at, zone),
            "played_at": when(message.played_at, zone),
            "failed_at": when(message.failed_at, zone),
            "error": self.get_error(message),
            "timestamp": when(message.timestamp, zone),
            "history": bool(message.history),
            "reactions": self.get_reactions(message),
        }

    def get_sender(self, message) -> dict | None:
        if message.sender_id is None:
            return None
        return {"id": message.sender_id, "display_name": shown(message, "sender", "display_name")}

    def get_media(self, message) -> dict | None:
        if not message.media_state:
            return None
        return {
            "state": message.media_state,
            "mime_type": message.media_mime or message.media.get("mime_type", ""),
            "size": message.media_size,
            "filename": message.media.get("filename", ""),
            "url": f"/api/v1/messages/{message.uuid}/media/"
            if message.media_state == MediaState.STORED
            else None,
            "error": message.media.get("error", ""),
        }

    def get_quoted(self, message) -> str | None:
        quoted = shown(message, "quoted", "uuid") if message.quoted_id else None
        return str(quoted) if quoted else None

    def get_reactions(self, message) -> list[dict]:
        # A list's were read for all its messages (``load_reactions``); ``reactions.all()`` of
        # a prefetch would build a queryset per message to read that same list.
        reactions = getattr(message, REACTIONS, None)
        if reactions is None:
            reactions = message.reactions.all()
        return [
            {"actor": r.actor, "emoji": r.emoji, "timestamp": r.timestamp}
            for r in reactions
            if r.emoji
        ]

    def get_error(self, message) -> dict | None:
        if not message.error_code:
            return None
        return {"code": message.error_code, "message": message.error_text}


class SearchResultSerializer(MessageSerializer):
    highlight = serializers.SerializerMethodField()

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "highlight"]
        read_only_fields = fields

    def to_representation(self, message) -> dict:
        return {**super().to_representation(message), "highlight": self.get_highlight(message)}

    def get_highlight(self, message) -> str:
        """An HTML-escaped excerpt with the matched words in ``<mark>``."""
        return search.highlight(message, self.context["words"])


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=200)
    chat = serializers.UUIDField(required=False)
    session = serializers.UUIDField(required=False)
    sender = serializers.IntegerField(required=False, min_value=1, help_text="A contact's id")
    type = serializers.CharField(required=False, max_length=12)
    after = serializers.DateTimeField(required=False)
    before = serializers.DateTimeField(required=False)
    has_media = serializers.BooleanField(required=False, allow_null=True, default=None)


class ChatNoteSerializer(serializers.ModelSerializer):
    author = serializers.EmailField(
        source="author.email", read_only=True, default=None, allow_null=True
    )
    author_name = serializers.CharField(
        source="author.display_name", read_only=True, default=None, allow_null=True
    )
    chat = serializers.UUIDField(source="chat.uuid", read_only=True)

    class Meta:
        model = ChatNote
        fields = ["id", "chat", "text", "author", "author_name", "created_at"]
        read_only_fields = fields


class TextSerializer(StrictSerializer):
    text = serializers.CharField(max_length=10_000, trim_whitespace=False)


class CannedReplySerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedReply
        fields = ["id", "shortcut", "text", "created_at", "updated_at"]
        read_only_fields = fields


class CannedReplyWriteSerializer(StrictSerializer):
    shortcut = serializers.CharField(max_length=41)
    text = serializers.CharField(max_length=inbox.MAX_TEXT + 100, trim_whitespace=False)


class RenderedSerializer(serializers.Serializer):
    text = serializers.CharField()


class PresenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="A member's id")
    name = serializers.CharField()
    until = serializers.DateTimeField()


class UnreadSerializer(serializers.Serializer):
    chats = serializers.IntegerField()
    messages = serializers.IntegerField()


class SendSerializer(StrictSerializer):
    chat = serializers.UUIDField(required=False)
    session = serializers.UUIDField(required=False)
    contact = serializers.IntegerField(required=False)
    phone = serializers.CharField(required=False, max_length=40)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    media_url = serializers.URLField(required=False, max_length=2000)
    media_type = serializers.ChoiceField(choices=outbox.MEDIA_TYPES, required=False)
    reply_to = serializers.UUIDField(required=False)


class UploadSendSerializer(SendSerializer):
    file = serializers.FileField()


class ReactSerializer(StrictSerializer):
    emoji = serializers.CharField(allow_blank=True, max_length=40)


class ChatUpdateSerializer(StrictSerializer):
    archived = serializers.BooleanField(required=False)
    status = serializers.ChoiceField(choices=ChatStatus.choices, required=False)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True)
    assignee = serializers.IntegerField(required=False, allow_null=True)


# --- Querysets -----------------------------------------------------------------------------------


# The columns ``MessageSerializer`` reads, and of the rows a message names the values it
# shows (``shown``).
MESSAGE_FIELDS = (
    *("uuid", "chat", "session", "provider_message_id", "direction", "type", "body", "caption"),
    *("data", "sender", "sender_jid", "push_name", "media", "media_state", "media_mime"),
    *("media_size", "quoted", "quoted_provider_id", "edits", "revoked_at", "status", "sent_at"),
    *("delivered_at", "read_at", "played_at", "failed_at", "error_code", "error_text"),
    *("timestamp", "history"),
)
MESSAGE_VALUES = values_of(Message, MESSAGE_FIELDS)
MESSAGE_SHOWN = {
    "chat_uuid": F("chat__uuid"),
    "session_uuid": F("session__uuid"),
    "sender_display_name": F("sender__display_name"),
    "quoted_uuid": F("quoted__uuid"),
}
REACTIONS = "reaction_list"  # a message's reactions, oldest first (load_reactions, a prefetch)


def messages_queryset(queryset):
    """``queryset``'s messages to show (``MessageSerializer``), as instances: the fields it
    shows, with what it shows of their chat, session, sender and quoted message
    (``MESSAGE_SHOWN``), in one query; ``MessageSerializer(..., many=True)`` reads their
    reactions in one more (``load_reactions``). Another field is read from the database when
    touched, so a message to act on comes from ``_messages_to_act_on``."""
    return queryset.only(*MESSAGE_FIELDS).annotate(**MESSAGE_SHOWN)


def message_rows(queryset):
    """``messages_queryset`` as ``values()`` (a page turns them into ``Row``s): the API's
    lists, which need no instance."""
    return queryset.values(*MESSAGE_VALUES, **MESSAGE_SHOWN)


def _messages_to_act_on(queryset):
    """``messages_queryset`` with every field of the message and the rows it names."""
    reactions = Prefetch(
        "reactions", queryset=Reaction.objects.order_by("timestamp"), to_attr=REACTIONS
    )
    return queryset.select_related("chat", "session", "sender", "quoted").prefetch_related(
        reactions
    )


def _by_uuid(queryset, value):
    try:
        key = uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound() from None
    obj = _one(queryset.filter(uuid=key))
    if obj is None:
        raise exceptions.NotFound()
    return obj


def _one(queryset):
    """The row of a lookup by a unique key, or None: ``.first()`` without its ORDER BY (which
    sorted the one row, and cost more to build than the rest of the query)."""
    return next(iter(queryset.order_by()[:1]), None)


CHAT_FILTERS = [
    OpenApiParameter("session", str, description="A session's id"),
    OpenApiParameter("status", str, enum=list(ChatStatus.values)),
    OpenApiParameter("assignee", str, description="A member's id, `me` or `none`"),
    OpenApiParameter("unread", bool),
    OpenApiParameter("needs_human", bool),
    OpenApiParameter("tag", int, description="A tag's id: chats with a contact so tagged"),
    OpenApiParameter("archived", bool, description="Default: false"),
    OpenApiParameter("kind", str, enum=list(ChatKind.values)),
]


NEAR = [  # one of them at most
    OpenApiParameter("around", OpenApiTypes.UUID, description="A message's id: the page around it"),
    OpenApiParameter(
        "before", OpenApiTypes.UUID, description="A message's id: the page older than it"
    ),
    OpenApiParameter(
        "after", OpenApiTypes.UUID, description="A message's id: the page newer than it"
    ),
]


# --- Chats ---------------------------------------------------------------------------------------

# The columns ``ChatSerializer`` reads, and of the chat's session and contact the values it
# shows (``shown``).
CHAT_VALUES = values_of(
    Chat,
    (
        *("uuid", "session", "kind", "contact", "jid", "name", "status", "snoozed_until"),
        *("assignee", "needs_human", "unread_count", "last_message_at", "last_incoming_at"),
        *("archived", "created_at"),
    ),
)
CHAT_SHOWN = {
    "session_uuid": F("session__uuid"),
    "session_colour": F("session__colour"),
    "contact_display_name": F("contact__display_name"),
    "contact_phone": F("contact__phone"),
}


class ChatViewSet(TenantAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Conversations, newest activity first."""

    queryset = Chat.objects.select_related("session", "contact")
    serializer_class = ChatSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "uuid"
    ordering = ("-last_message_at", "-id")

    def get_object_in_tenant(self, value):
        return _by_uuid(self.get_queryset(), value)

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "messages":  # the chat only names the messages to read
            return queryset.select_related(None).only("pk")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        queryset = queryset.filter(last_message_at__isnull=False)
        if params.get("session"):
            queryset = queryset.filter(session__uuid=_uuid(params["session"], "session"))
        if params.get("status"):
            queryset = queryset.filter(status=params["status"])
        if params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        assignee = params.get("assignee")
        if assignee == "me":
            queryset = queryset.filter(assignee=self.request.user)
        elif assignee == "none":
            queryset = queryset.filter(assignee__isnull=True)
        elif assignee:
            if not assignee.isdigit():
                raise exceptions.ValidationError({"assignee": ["A member's id, me or none."]})
            queryset = queryset.filter(assignee_id=int(assignee))
        if params.get("unread") in ("true", "1"):
            queryset = queryset.filter(unread_count__gt=0)
        if params.get("needs_human") in ("true", "1"):
            queryset = queryset.filter(needs_human=True)
        if params.get("tag"):
            if not params["tag"].isdigit():
                raise exceptions.ValidationError({"tag": ["A tag's id."]})
            queryset = queryset.filter(contact__contact_tags__tag_id=int(params["tag"]))
        queryset = queryset.filter(archived=params.get("archived") in ("true", "1"))
        newest = {NEWEST: newest_message(self.request.organization)}  # for the previews
        return queryset.select_related(None).values(*CHAT_VALUES, **CHAT_SHOWN, **newest)

    @extend_schema(parameters=CHAT_FILTERS)
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._chats_data(rows(page)))

    def retrieve(self, request, uuid=None):
        return Response(self._chats_data([self.get_object()])[0])

    def _chats_data(self, chats) -> list[dict]:
        context = {"last_messages": last_messages(self.request.organization, chats)}
        return ChatSerializer(chats, many=True, context=context).data

    @extend_schema(responses=UnreadSerializer)
    @action(detail=False, methods=["get"])
    def unread(self, request):
        """Unread totals over the open, unarchived chats (for the page title and badges)."""
        totals = (
            scoped(Chat, request.organization)
            .filter(unread_count__gt=0, archived=False)
            .aggregate(chats=Count("id"), messages=Sum("unread_count"))
        )
        return Response({"chats": totals["chats"], "messages": totals["messages"] or 0})

    @extend_schema(request=None, responses=ChatSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, uuid=None):
        """Mark the chat read: its unread count goes to 0 (the contact gets read receipts where the
        session's policy allows)."""
        chat = self.get_object()
        chat_services.chat_mark_read(organization=request.organization, chat=chat)
        return Response(self._chats_data([self.get_queryset().get(pk=chat.pk)])[0])

    @extend_schema(request=None, responses=ChatSerializer)
    @action(detail=True, methods=["post"], url_path="unread")
    def mark_unread(self, request, uuid=None):
        """Back on the unread list (for whoever picks it up next); the contact sees nothing."""
        chat = self.get_object()
        chat_services.chat_mark_unread(organization=request.organization, chat=chat)
        return Response(self._chats_data([self.get_queryset().get(pk=chat.pk)])[0])

    @extend_schema(request=ChatUpdateSerializer, responses=ChatSerializer)
    def partial_update(self, request, uuid=None):
        data = ChatUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "assignee" in values:
            values["assignee_id"] = values.pop("assignee")
        with transaction.atomic():
            chat = chat_services.chat_update(
                organization=request.organization, chat=self.get_object(), **values
            )
        return Response(self._chats_data([self.get_queryset().get(pk=chat.pk)])[0])

    @extend_schema(parameters=NEAR, responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="messages")
    def messages(self, request, uuid=None):
        """The chat's messages, newest first; follow ``next`` for older ones. With ``around``,
        ``before`` or ``after`` (a message's id): the page with that message in its middle, or
        the page just older or newer than it; from there ``next`` is older, ``previous`` newer."""
        chat = self.get_object()
        messages = scoped(Message, request.organization).filter(chat=chat)
        named = [key for key in ("around", "before", "after") if request.query_params.get(key)]
        if len(named) > 1:
            raise exceptions.ValidationError({named[1]: ["Give one of around, before, after."]})
        if named:
            return self._messages_near(request, messages, named[0])
        paginator = self.paginator
        view = _Ordered(("-timestamp", "-id"))
        page = rows(paginator.paginate_queryset(message_rows(messages), request, view=view))
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)

    def _messages_near(self, request, messages, key: str) -> Response:
        """Keyset pages on (timestamp, id) next to a message (the message_chat_time index)."""
        queryset = message_rows(messages)
        named = messages.filter(uuid=_uuid(request.query_params[key], key))
        # Around, it is on the page; before or after, only its position is needed.
        anchor = _one(message_rows(named) if key == "around" else named.values("id", "timestamp"))
        if anchor is None:
            raise exceptions.ValidationError({key: ["No such message in this chat."]})
        anchor = Row(anchor)
        size = self.paginator.get_page_size(request)
        at, pk = anchor.timestamp, anchor.pk
        older, newer = _keyset(queryset, "<", at, pk), _keyset(queryset, ">", at, pk)
        take_newer = {"around": size // 2, "before": 0, "after": size}[key]
        take_older = {"around": size - take_newer - 1, "before": size, "after": 0}[key]
        newer_rows = rows(newer.order_by("timestamp", "id")[: take_newer + 1]) if take_newer else []
        older_rows = (
            rows(older.order_by("-timestamp", "-id")[: take_older + 1]) if take_older else []
        )
        page = [
            *reversed(newer_rows[:take_newer]),
            *([anchor] if key == "around" else []),
            *older_rows[:take_older],
        ]
        more_older = len(older_rows) > take_older if take_older else True
        more_newer = len(newer_rows) > take_newer if take_newer else True
        return Response(
            {
                "next": _near_link(request, "before", page[-1]) if page and more_older else None,
                "previous": _near_link(request, "after", page[0]) if page and more_newer else None,
                "results": MessageSerializer(page, many=True).data,
            }
        )

    @extend_schema(
        methods=["GET", "POST", "DELETE"],
        request=None,
        responses={200: PresenceSerializer(many=True)},  # DELETE too: who is left
    )
    @action(detail=True, methods=["get", "post", "delete"], pagination_class=None)
    def presence(self, request, uuid=None):
        """Who of the team has the chat open. POST: you are viewing it (for a minute; repeat
        to stay); DELETE: you left. Members' inboxes are told (``presence`` frames)."""
        chat = self.get_object()
        organization = request.organization
        if request.method == "POST":
            viewers = presence.viewing(organization.pk, chat, request.user)
        elif request.method == "DELETE":
            viewers = presence.left(organization.pk, chat, request.user)
        else:
            viewers = presence.viewers(organization.pk, chat)
        return Response(viewers)

    @extend_schema(
        methods=["GET"], responses=ChatNoteSerializer(many=True), description="Oldest first."
    )
    @extend_schema(methods=["POST"], request=TextSerializer, responses={201: ChatNoteSerializer})
    @action(detail=True, methods=["get", "post"])
    def notes(self, request, uuid=None):
        """Private notes in the conversation: the team's, never sent to the contact."""
        chat = self.get_object()
        if request.method == "POST":
            data = TextSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            note = inbox.chat_note_add(
                organization=request.organization,
                chat=chat,
                text=data.validated_data["text"],
                author=request.user,
            )
            return Response(ChatNoteSerializer(note).data, status=status.HTTP_201_CREATED)
        notes = scoped(ChatNote, request.organization).filter(chat=chat).select_related("author")
        page = self.paginator.paginate_queryset(
            notes.select_related("chat"), request, view=_Ordered(("created_at", "id"))
        )
        return self.paginator.get_paginated_response(ChatNoteSerializer(page, many=True).data)


def _keyset(queryset, operator: str, at, pk):
    """Messages before or after (at, pk) in (timestamp, id) order, as a row comparison: one range
    of ``message_chat_time`` (an OR of the two columns was planned as a read of the whole chat)."""
    assert operator in ("<", ">")
    condition = RawSQL(  # noqa: S611 - the operator is one of two constants; values are parameters
        f'("messaging_message"."timestamp", "messaging_message"."id") {operator} (%s, %s)',
        (at, pk),
        output_field=BooleanField(),
    )
    return queryset.filter(condition)


def _near_link(request, key: str, message: Message) -> str:
    query = request.query_params.copy()
    for name in ("around", "before", "after", "cursor"):
        query.pop(name, None)
    query[key] = str(message.uuid)
    return request.build_absolute_uri(request.path) + "?" + query.urlencode()


class _Ordered:
    def __init__(self, ordering):
        self.ordering = ordering


def _uuid(value: str, field: str):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.ValidationError({field: ["Not a valid id."]}) from None


# --- Canned replies ------------------------------------------------------------------------------


class CannedReplyViewSet(TenantAPIMixin, viewsets.ModelViewSet):
    """Replies the team types by shortcut; ``{{name}}``, ``{{first_name}}``, ``{{phone}}`` and
    ``{{email}}`` are filled in with the chat's contact (``render``). Every member reads them;
    admins and owners write them (the organization's settings, as on the dashboard)."""

    queryset = CannedReply.objects.all()
    serializer_class = CannedReplySerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering = ("shortcut", "id")
    write_role = Role.ADMIN

    @extend_schema(request=CannedReplyWriteSerializer, responses={201: CannedReplySerializer})
    def create(self, request):
        data = CannedReplyWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reply = inbox.canned_reply_create(
            organization=request.organization, actor=request.user, **data.validated_data
        )
        return Response(CannedReplySerializer(reply).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CannedReplyWriteSerializer, responses=CannedReplySerializer)
    def partial_update(self, request, pk=None):
        data = CannedReplyWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        reply = inbox.canned_reply_update(
            organization=request.organization,
            reply=self.get_object(),
            shortcut=data.validated_data.get("shortcut"),
            text=data.validated_data.get("text"),
            actor=request.user,
        )
        return Response(CannedReplySerializer(reply).data)

    def perform_destroy(self, instance):
        inbox.canned_reply_delete(
            organization=self.request.organization, reply=instance, actor=self.request.user
        )

    @extend_schema(
        parameters=[OpenApiParameter("chat", str, description="The chat whose contact fills it")],
        responses=RenderedSerializer,
    )
    @action(detail=True, methods=["get"])
    def render(self, request, pk=None):
        """The reply's text as it would be sent in a chat."""
        chat, named = None, request.query_params.get("chat")
        if named:
            chats = Chat.objects.select_related("contact")
            chat = _find(chats, request.organization, "chat", _uuid(named, "chat"))
        return Response({"text": inbox.canned_reply_render(self.get_object(), chat)})


# --- Messages ------------------------------------------------------------------------------------


class MessageViewSet(TenantAPIMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages, by id: read one, send (text, a media URL or an upload), search, react, retry."""

    queryset = Message.objects.all()
    serializer_class = MessageSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "uuid"

    def get_queryset(self):
        return _messages_to_act_on(super().get_queryset())

    def get_object_in_tenant(self, value):
        return _by_uuid(self.get_queryset(), value)

    @extend_schema(
        request=SendSerializer,
        responses={201: MessageSerializer, 200: MessageSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                description="Same key → the same message for 24 h; another body → 422",
            )
        ],
    )
    def create(self, request):
        """Send a message to a chat, or to a contact or phone number from a session."""
        data = SendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        organization = request.organization

        def send() -> Message:
            return self._send(values, media_url=values.get("media_url", ""))

        key = request.headers.get("Idempotency-Key")
        if key is None:
            message, replayed = send(), False
        else:
            body = {k: str(v) for k, v in values.items()}
            message, replayed = chat_services.idempotent(
                organization=organization, key=key, body=body, create=send
            )
        return Response(
            MessageSerializer(self.get_queryset().get(pk=message.pk)).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )

    def _send(self, values: dict, **media) -> Message:
        """``outbox.message_send`` with what the request names, found in its organization."""
        organization = self.request.organization
        return outbox.message_send(
            organization=organization,
            actor=self.request.user,
            text=values.get("text", ""),
            session=_find(WhatsAppSession, organization, "session", values.get("session")),
            chat=_find(Chat, organization, "chat", values.get("chat")),
            contact=_find_contact(organization, values.get("contact")),
            phone=values.get("phone", ""),
            media_type=values.get("media_type", ""),
            reply_to=_find(Message, organization, "reply_to", values.get("reply_to")),
            **media,
        )

    @extend_schema(parameters=[SearchQuerySerializer], responses=SearchResultSerializer(many=True))
    @action(detail=False, methods=["get"])
    def search(self, request):
        """Messages of the organization with every word of ``q`` in their text (a word or its
        start), newest first; ``highlight`` shows where. Follow ``next`` for older ones."""
        params = SearchQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        organization = request.organization
        found = search.message_search(
            organization=organization,
            query=values["q"],
            chat=_find(Chat, organization, "chat", values.get("chat")),
            session=_find(WhatsAppSession, organization, "session", values.get("session")),
            sender_id=values.get("sender"),
            type=values.get("type"),
            after=values.get("after"),
            before=values.get("before"),
            has_media=values.get("has_media"),
        )
        page = search.paginate(
            self.paginator, message_rows(found), request, view=_Ordered(("-timestamp", "-id"))
        )
        page = rows(page)
        context = {"request": request, "words": search.words_of(values["q"])}
        return self.paginator.get_paginated_response(
            SearchResultSerializer(page, many=True, context=context).data
        )

    @extend_schema(
        request={"multipart/form-data": UploadSendSerializer}, responses={201: MessageSerializer}
    )
    @action(detail=False, methods=["post"], parser_classes=[parsers.MultiPartParser])
    @accepts_uploads("PARLEY_MEDIA_MAX_BYTES")
    def upload(self, request):
        """Send a file (multipart: ``file`` and the fields of a send; ``text`` is the caption)."""
        data = UploadSendSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = self._send(data.validated_data, upload=data.validated_data["file"])
        return Response(
            MessageSerializer(self.get_queryset().get(pk=message.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=ReactSerializer, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def react(self, request, uuid=None):
        """React with an emoji; an empty ``emoji`` takes the reaction back. The message must have
        reached WhatsApp (409 otherwise)."""
        data = ReactSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = self.get_object()
        with transaction.atomic():
            chat_services.reaction_send(
                organization=request.organization,
                message=message,
                emoji=data.validated_data["emoji"],
                actor=request.user,
            )
        return Response(MessageSerializer(self.get_queryset().get(pk=message.pk)).data)

    @extend_schema(request=None, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, uuid=None):
        """Send a failed outgoing message again (one more attempt); 409 if it has not failed."""
        message = self.get_object()
        with transaction.atomic():
            outbox.message_retry(
                organization=request.organization, message=message, actor=request.user
            )
        return Response(MessageSerializer(self.get_queryset().get(pk=message.pk)).data)

    @extend_schema(request=None, responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def media(self, request, uuid=None):
        """The media: a redirect to a short-lived signed URL on S3, or the bytes (with HTTP range
        support) from local storage. Only members of the message's organization get here."""
        message = self.get_object()
        if message.media_state != MediaState.STORED or not message.media_key:
            raise exceptions.NotFound("This message has no stored media.")
        return media_response(request, message)


def _find(model_or_queryset, organization, field: str, value):
    """An object named in the request by its uuid, in the organization; another's is unknown."""
    if value is None:
        return None
    found = scoped(model_or_queryset, organization).filter(uuid=value).first()
    if found is None:
        raise exceptions.ValidationError({field: ["Not found."]})
    return found


def _find_contact(organization, value) -> Contact | None:
    if value is None:
        return None
    found = scoped(Contact, organization).filter(pk=value).first()
    if found is None:
        raise exceptions.ValidationError({"contact": ["Not found."]})
    return found


# --- Media ---------------------------------------------------------------------------------------

RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
SIGNED_URL_SECONDS = 300


def media_response(request, message: Message) -> HttpResponse:
    storage = default_storage
    filename = f"{message.provider_message_id or message.uuid}".replace('"', "")
    if hasattr(storage, "bucket_name"):  # S3: the bytes never pass through us
        url = storage.url(
            message.media_key,
            parameters={"ResponseContentType": message.media_mime or "application/octet-stream"},
            expire=SIGNED_URL_SECONDS,
        )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"
        return response
    size = message.media_size if message.media_size is not None else storage.size(message.media_key)
    handle = storage.open(message.media_key, "rb")
    match = RANGE.match(request.headers.get("Range", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last) if last else size - 1, size - 1)
        else:
            start, end = max(size - int(last), 0), size - 1
        if start > end or start >= size:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        handle.seek(start)
        response = StreamingHttpResponse(
            _chunks(handle, end - start + 1), status=206, content_type=message.media_mime
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(handle, content_type=message.media_mime or None)
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _chunks(handle, length: int, size: int = 64 * 1024):
    try:
        while length > 0:
            chunk = handle.read(min(size, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


# --- Stats ---------------------------------------------------------------------------------------


class SessionStatsSerializer(serializers.Serializer):
    session = serializers.UUIDField()
    contacts = serializers.IntegerField()
    chats = serializers.IntegerField()
    groups = serializers.IntegerField(help_text="Group and broadcast chats")
    messages = serializers.IntegerField()
    incoming = serializers.IntegerField()
    outgoing = serializers.IntegerField()
    attachments = serializers.IntegerField()
    attachments_by_type = serializers.DictField(child=serializers.IntegerField())
    media_failed = serializers.IntegerField()


class SessionStatsView(TenantAPIMixin, APIView):
    """What a session holds: contacts, chats, messages, attachments by type (the seeds' db-check)."""

    model = WhatsAppSession  # for the cross-tenant sweep: the object named in the URL
    lookup_field = lookup_url_kwarg = "uuid"

    def get_queryset(self):
        return scoped(WhatsAppSession, self.request.organization)

    def get_object_in_tenant(self, value):
        return _by_uuid(self.get_queryset(), value)

    @extend_schema(responses=SessionStatsSerializer)
    def get(self, request, uuid=None):
        session = self._tenant_object
        messages = scoped(Message, request.organization).filter(session=session)
        totals = messages.aggregate(
            messages=Count("id"),
            incoming=Count("id", filter=Q(direction=Direction.IN)),
            outgoing=Count("id", filter=Q(direction=Direction.OUT)),
        )
        attachments = dict(
            messages.exclude(media_state="")
            .values_list("type")
            .annotate(n=Count("id"))
            .values_list("type", "n")
        )
        chats = scoped(Chat, request.organization).filter(session=session)
        contacts = (
            scoped(Contact, request.organization)
            .filter(Q(chats__session=session) | Q(pk__in=messages.values("sender_id")))
            .distinct()
            .count()
        )
        return Response(
            {
                "session": str(session.uuid),
                "contacts": contacts,
                "chats": chats.count(),
                "groups": chats.exclude(kind="direct").count(),
                **totals,
                "attachments": sum(attachments.values()),
                "attachments_by_type": attachments,
                "media_failed": messages.filter(media_state=MediaState.FAILED).count(),
            }
        )


def media_link_view(request, token: str) -> HttpResponse:
    """``/media/<signed token>/``: a provider fetching media we send (no login: the token is the
    authority, and it expires)."""
    from django.http import Http404

    from messaging.media import message_for_link

    message = message_for_link(token)
    if message is None or not message.media_key:
        raise Http404
    return media_response(request, message)
