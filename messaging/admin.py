from django.contrib import admin

from messaging.models import (
    BulkJob,
    BulkJobItem,
    CannedReply,
    Chat,
    ChatNote,
    Contact,
    ContactAlias,
    ContactGroup,
    ContactGroupMember,
    ContactIdentity,
    ContactNote,
    ContactTag,
    CustomField,
    IdempotencyKey,
    ImportColumnMemory,
    ImportJob,
    Message,
    Reaction,
    Tag,
    WaitingEvent,
)


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    extra = 0
    exclude = ["organization"]


class AliasInline(admin.TabularInline):
    model = ContactAlias
    extra = 0
    exclude = ["organization"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    """Read and correct; writes that must keep search text and identities whole go through services."""

    list_display = [
        "display_name",
        "phone",
        "email",
        "status",
        "favorite",
        "opted_out_at",
        "organization",
        "updated_at",
    ]
    list_filter = ["organization", "status", "favorite"]
    search_fields = ["display_name", "name", "notify_name", "phone", "email"]
    list_select_related = ["organization"]
    readonly_fields = ["display_name", "created_at", "updated_at"]
    inlines = [IdentityInline, AliasInline]


@admin.register(ContactIdentity)
class ContactIdentityAdmin(admin.ModelAdmin):
    list_display = ["kind", "value", "contact", "organization"]
    list_filter = ["organization", "kind"]
    search_fields = ["value"]
    raw_id_fields = ["contact"]


@admin.register(ContactAlias)
class ContactAliasAdmin(admin.ModelAdmin):
    list_display = ["alias", "contact", "organization"]
    list_filter = ["organization"]
    search_fields = ["alias"]
    raw_id_fields = ["contact"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "color", "organization"]
    list_filter = ["organization"]
    search_fields = ["name"]


@admin.register(ContactTag)
class ContactTagAdmin(admin.ModelAdmin):
    list_display = ["tag", "contact", "organization"]
    list_filter = ["organization"]
    search_fields = ["tag__name", "contact__display_name"]
    raw_id_fields = ["contact", "tag"]


@admin.register(ContactGroup)
class ContactGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "created_at"]
    list_filter = ["organization"]
    search_fields = ["name", "description"]


@admin.register(ContactGroupMember)
class ContactGroupMemberAdmin(admin.ModelAdmin):
    list_display = ["group", "contact", "organization"]
    list_filter = ["organization"]
    search_fields = ["group__name", "contact__display_name"]
    raw_id_fields = ["contact", "group"]


@admin.register(ContactNote)
class ContactNoteAdmin(admin.ModelAdmin):
    list_display = ["contact", "author", "created_at", "organization"]
    list_filter = ["organization"]
    search_fields = ["text"]
    raw_id_fields = ["contact"]


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "type", "organization"]
    list_filter = ["organization", "type"]
    search_fields = ["label", "key"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "state",
        "processed_rows",
        "total_rows",
        "error_count",
        "organization",
        "created_at",
    ]
    list_filter = ["organization", "state"]
    search_fields = ["original_name", "token"]
    readonly_fields = ["token", "created_at", "started_at", "finished_at"]


@admin.register(ImportColumnMemory)
class ImportColumnMemoryAdmin(admin.ModelAdmin):
    list_display = ["header", "field", "organization", "updated_at"]
    list_filter = ["organization"]
    search_fields = ["header", "field"]


@admin.register(BulkJob)
class BulkJobAdmin(admin.ModelAdmin):
    list_display = [
        "action",
        "state",
        "processed",
        "total",
        "affected",
        "organization",
        "created_at",
    ]
    list_filter = ["organization", "action", "state"]
    search_fields = ["action"]


@admin.register(BulkJobItem)
class BulkJobItemAdmin(admin.ModelAdmin):
    list_display = ["job", "contact_id", "organization"]
    list_filter = ["organization"]
    search_fields = ["contact_id"]
    raw_id_fields = ["job"]


@admin.register(Chat)
class ChatAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "contact", "session", "status", "unread_count"]
    list_display += ["last_message_at", "organization"]
    list_filter = ["organization", "kind", "status", "archived"]
    search_fields = ["jid", "name", "contact__display_name"]
    list_select_related = ["organization", "session", "contact"]
    raw_id_fields = ["contact", "assignee"]
    readonly_fields = ["uuid", "created_at", "updated_at"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Read only: messages are what WhatsApp said; corrections would be lies."""

    list_display = ["timestamp", "direction", "type", "status", "chat", "session", "organization"]
    list_filter = ["organization", "direction", "type", "status", "media_state"]
    search_fields = ["provider_message_id", "body", "caption", "sender_jid", "push_name"]
    list_select_related = ["organization", "session", "chat"]
    raw_id_fields = ["chat", "sender", "quoted"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Reaction)
class ReactionAdmin(admin.ModelAdmin):
    list_display = ["emoji", "actor", "message", "timestamp", "organization"]
    list_filter = ["organization"]
    search_fields = ["actor", "emoji"]
    raw_id_fields = ["message", "sender"]


@admin.register(WaitingEvent)
class WaitingEventAdmin(admin.ModelAdmin):
    """Receipts and reactions whose message has not arrived (yet)."""

    list_display = ["provider_message_id", "session", "created_at", "organization"]
    list_filter = ["organization"]
    search_fields = ["provider_message_id"]
    raw_id_fields = ["session"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "message", "created_at", "expires_at", "organization"]
    list_filter = ["organization"]
    search_fields = ["key"]
    raw_id_fields = ["message"]


@admin.register(ChatNote)
class ChatNoteAdmin(admin.ModelAdmin):
    list_display = ["chat", "author", "created_at", "organization"]
    list_filter = ["organization"]
    search_fields = ["text"]
    raw_id_fields = ["chat"]


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["shortcut", "organization", "updated_at"]
    list_filter = ["organization"]
    search_fields = ["shortcut", "text"]
