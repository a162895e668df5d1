"""The conversations API: chats (list, detail, mark read, archive, assign, status), messages (list
with a cursor, detail, search, send with ``Idempotency-Key``, react, retry), media behind a
tenant check, and per-session stats. Ids in URLs are the public uuids."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import (
    BooleanField,
    Count,
    F,
    Prefetch,
    Sum,
)
from django.db.models.expressions import RawSQL
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Role
from accounts.tenancy import TenantAPIMixin, scoped
from crm.uploads import accepts_uploads
from messaging import presence, search
from messaging.api_media import media_response
from messaging.api_rows import Row, rows, values_of
from messaging.chat_serializers import (
    NEWEST,
    REACTIONS,
    CannedReplySerializer,
    CannedReplyWriteSerializer,
    ChatNoteSerializer,
    ChatSerializer,
    ChatUpdateSerializer,
    MessageSerializer,
    PresenceSerializer,
    ReactSerializer,
    RenderedSerializer,
    SearchQuerySerializer,
    SearchResultSerializer,
    SendSerializer,
    TextSerializer,
    UnreadSerializer,
    UploadSendSerializer,
    last_messages,
    message_rows,
    newest_message,
)
from messaging.models import (
    CannedReply,
    Chat,
    ChatKind,
    ChatNote,
    ChatStatus,
    Contact,
    MediaState,
    Message,
    Reaction,
)
from messaging.services import chats as chat_services
from messaging.services import inbox, outbox
from sessions_app.models import WhatsAppSession

# --- Look-ups ------------------------------------------------------------------------------------


def _messages_to_act_on(queryset):
    """``messages_queryset`` with every field of the message and the rows it names."""
    reactions = Prefetch(
        "reactions", queryset=Reaction.objects.order_by("timestamp"), to_attr=REACTIONS
    )
    return queryset.select_related("chat", "session", "sender", "quoted").prefetch_related(
        reactions
    )


def by_uuid(queryset, value):
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
        return by_uuid(self.get_queryset(), value)

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
        return by_uuid(self.get_queryset(), value)

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
