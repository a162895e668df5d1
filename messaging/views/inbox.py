"""The shared inbox page: a shell the page script (``static/js/inbox.js``) fills from the REST API
and keeps live over ``/ws/o/<org>/inbox/``. What the script needs to draw without asking again
(members, sessions, tags, canned replies, who you are and what you may do) comes with the page."""

from __future__ import annotations

from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from accounts.models import Membership, Role, role_at_least
from accounts.tenancy import OrgViewMixin, scoped
from messaging.models import Tag
from messaging.presence import REFRESH
from messaging.selectors import canned_reply_list
from sessions_app.models import ProviderName, WhatsAppSession

MESSAGE_TYPES = [
    ("text", _("Text")),
    ("image", _("Image")),
    ("video", _("Video")),
    ("audio", _("Audio")),
    ("voice", _("Voice note")),
    ("document", _("Document")),
    ("sticker", _("Sticker")),
    ("location", _("Location")),
    ("contact", _("Contact card")),
]


class InboxView(OrgViewMixin, TemplateView):
    template_name = "messaging/inbox/inbox.html"

    def get_context_data(self, **kwargs):
        request, organization = self.request, self.request.organization
        members = (
            scoped(Membership, organization)
            .filter(is_active=True)
            .select_related("user")
            .order_by("user__email")
        )
        sessions = scoped(WhatsAppSession, organization).order_by("name", "id")
        config = {
            "org": organization.slug,
            "timezone": str(organization.timezone or "UTC"),
            "me": request.user.pk,
            "canSend": role_at_least(request.role, Role.AGENT),
            "presenceRefresh": REFRESH,
            "members": [{"id": m.user_id, "name": m.user.display_name} for m in members],
            "sessions": [
                {
                    "id": str(s.uuid),
                    "name": s.name,
                    "colour": s.colour,
                    "cloud": s.provider == ProviderName.CLOUD_API,
                }
                for s in sessions
            ],
            "tags": [
                {"id": t.pk, "name": t.name} for t in scoped(Tag, organization).order_by("name")
            ],
            "replies": [
                {"id": r.pk, "shortcut": r.shortcut, "text": r.text}
                for r in canned_reply_list(organization=organization)
            ],
            "chat": request.GET.get("chat", ""),
            "message": request.GET.get("message", ""),
        }
        return super().get_context_data(**kwargs, config=config, message_types=MESSAGE_TYPES)


urlpatterns = [path("inbox/", InboxView.as_view(), name="inbox")]
