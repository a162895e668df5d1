"""Django admin for sessions: status and history to read; credentials never shown (they are
encrypted, non-editable fields, and writes that change them go through the services)."""

from django.contrib import admin

from sessions_app.models import SessionEvent, WebhookEvent, WhatsAppSession


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "provider", "status", "phone_number", "last_seen_at"]
    list_filter = ["organization", "provider", "status"]
    search_fields = ["name", "phone_number", "uuid"]
    readonly_fields = [
        "uuid",
        "provider",
        "status",
        "status_reason",
        "status_changed_at",
        "phone_number",
        "jid",
        "display_name",
        "last_seen_at",
        "forged_requests",
    ]
    exclude = ["credentials_encrypted", "webhook_secret_encrypted", "qr_text", "qr_image"]
    raw_id_fields = ["default_assignee"]


@admin.register(SessionEvent)
class SessionEventAdmin(admin.ModelAdmin):
    list_display = ["session", "from_status", "to_status", "reason", "actor", "created_at"]
    list_filter = ["organization", "to_status"]
    search_fields = ["session__name", "reason"]
    raw_id_fields = ["session", "actor"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "provider", "session", "state", "attempts", "received_at"]
    list_filter = ["organization", "provider", "state"]
    search_fields = ["session__name", "dedupe_key"]
    raw_id_fields = ["session"]
    readonly_fields = ["dedupe_key", "received_at", "processed_at"]
