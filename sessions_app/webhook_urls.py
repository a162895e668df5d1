from django.urls import path, re_path

from sessions_app import webhooks

app_name = "sessions_app"

urlpatterns = [
    path("cloud_api/", webhooks.cloud_api_app_webhook, name="cloud-api-app-webhook"),
    path("<str:provider>/<uuid:session_uuid>/", webhooks.session_webhook, name="webhook"),
    re_path(
        r"^(?P<provider>[a-z_]+)/(?P<session_uuid>[0-9a-f-]{36})/(?P<suffix>[a-z0-9-]{1,60})/?$",
        webhooks.session_webhook,
        name="webhook-suffix",
    ),
]
