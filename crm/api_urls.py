"""/api/v1/: every app's API routes, the schema and the docs."""

from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import SimpleRouter

from accounts import api as accounts_api
from crm.csp import API_DOCS_POLICY, with_policy
from messaging import api as messaging_api
from messaging import api_bulk as messaging_api_bulk
from messaging import api_chats as messaging_api_chats
from messaging import api_imports as messaging_api_imports
from messaging import api_stats as messaging_api_stats
from sessions_app import api as sessions_api

router = SimpleRouter(trailing_slash=True)
router.register("members", accounts_api.MemberViewSet, basename="member")
router.register("invitations", accounts_api.InvitationViewSet, basename="invitation")
router.register("api-keys", accounts_api.ApiKeyViewSet, basename="api-key")
router.register("audit-log", accounts_api.AuditEventViewSet, basename="audit-event")
router.register("contacts", messaging_api.ContactViewSet, basename="contact")
router.register("notes", messaging_api.NoteViewSet, basename="note")
router.register("identities", messaging_api.IdentityViewSet, basename="identity")
router.register("tags", messaging_api.TagViewSet, basename="tag")
router.register("groups", messaging_api.GroupViewSet, basename="group")
router.register("custom-fields", messaging_api.CustomFieldViewSet, basename="custom-field")
router.register("sessions", sessions_api.SessionViewSet, basename="session")
router.register("chats", messaging_api_chats.ChatViewSet, basename="chat")
router.register("messages", messaging_api_chats.MessageViewSet, basename="message")
router.register("canned-replies", messaging_api_chats.CannedReplyViewSet, basename="canned-reply")

urlpatterns = [
    path("me/", accounts_api.MeView.as_view(), name="api-me"),
    path("organization/", accounts_api.CurrentOrganizationView.as_view(), name="api-organization"),
    path(
        "organization/transfer-ownership/",
        accounts_api.TransferOwnershipView.as_view(),
        name="api-organization-transfer",
    ),
    *messaging_api_bulk.urlpatterns,  # before the router: contacts/bulk/ is not a contact id
    *messaging_api_imports.urlpatterns,  # before the router: contacts/export/ is not an id
    path(  # messaging's view of a session (sessions_app knows nothing of messages)
        "sessions/<str:uuid>/stats/",
        messaging_api_stats.SessionStatsView.as_view(),
        name="api-session-stats",
    ),
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script as a file (?script), not inline.
    path(
        "docs/",
        with_policy(API_DOCS_POLICY)(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "redoc/",
        with_policy(API_DOCS_POLICY)(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
]
