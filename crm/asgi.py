"""ASGI entry point: HTTP through Django with bounded bodies (``crm.uploads.BodyLimit``; providers'
webhooks by ``sessions_app.webhooks.Receiver``), websockets through Channels (crm/routing.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from crm.logs import hide_query_strings  # noqa: E402
from crm.routing import websocket_urlpatterns  # noqa: E402
from crm.uploads import BodyLimit  # noqa: E402
from sessions_app.webhooks import Receiver  # noqa: E402

hide_query_strings()  # query strings can carry secrets (Meta's verify token)

application = ProtocolTypeRouter(
    {
        "http": Receiver(BodyLimit(django_asgi_app)),  # providers' webhooks, then Django
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
