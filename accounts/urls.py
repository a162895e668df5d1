"""Dashboard routes of one organization, mounted under /o/<org_slug>/."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.OrganizationHomeView.as_view(), name="org-home"),
    path("settings/", views.OrganizationSettingsView.as_view(), name="org-settings"),
    path("settings/transfer/", views.TransferOwnershipView.as_view(), name="org-transfer"),
    path("settings/delete/", views.OrganizationDeleteView.as_view(), name="org-delete"),
    path("members/", views.MemberListView.as_view(), name="org-members"),
    path(
        "members/<int:pk>/<slug:action>/",
        views.MemberActionView.as_view(),
        name="org-member-action",
    ),
    path("invitations/", views.InvitationListView.as_view(), name="org-invitations"),
    path(
        "invitations/<int:pk>/revoke/",
        views.InvitationRevokeView.as_view(),
        name="org-invitation-revoke",
    ),
    path("api-keys/", views.ApiKeyListView.as_view(), name="org-api-keys"),
    path("api-keys/<int:pk>/revoke/", views.ApiKeyRevokeView.as_view(), name="org-api-key-revoke"),
    path("audit/", views.AuditLogView.as_view(), name="org-audit"),
]
