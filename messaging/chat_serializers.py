"""The conversations API's serializers and read querysets: what a chat, a message, a note or
a search result looks like to a client (and in the inbox's live frames), and the querysets
that read them in a constant number of queries."""

from __future__ import annotations

from django.db.models import (
    F,
    Manager,
    OuterRef,
    Subquery,
)
from rest_framework import serializers

from accounts.tenancy import scoped
from crm.api import StrictSerializer
from messaging import search
from messaging.api_rows import Row, choice, current_zone, rows, shown, text, values_of, when
from messaging.models import (
    CannedReply,
    Chat,
    ChatNote,
    ChatStatus,
    MediaState,
    Message,
    Reaction,
)
from messaging.services import inbox, outbox

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
