from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as account_views
from crm import health, views
from messaging import api_media as messaging_api_media

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("readyz", health.readyz, name="readyz"),
    path("signup/", account_views.signup, name="signup"),
    path("login/", account_views.ParleyLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(template_name="accounts/password_reset.html"),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="accounts/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("invitations/<str:token>/", account_views.invitation_accept, name="invitation-accept"),
    path("orgs/new/", account_views.organization_create, name="organization-create"),
    path("o/<slug:org_slug>/", include("accounts.urls")),
    path("o/<slug:org_slug>/", include("messaging.urls")),
    path("o/<slug:org_slug>/", include("sessions_app.urls")),
    path("webhooks/", include("sessions_app.webhook_urls")),
    path("media/<str:token>/", messaging_api_media.media_link_view, name="media-link"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("crm.api_urls")),
]

handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.page_not_found
handler500 = views.server_error
