"""Error pages: JSON with the API's error body under /api/, templates elsewhere; the site icon."""

import threading

from django.core.exceptions import RequestDataTooBig
from django.db import connections
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from crm.api import error_body

MESSAGES = {
    400: _("Bad request."),
    403: _("You do not have permission to do this."),
    404: _("Not found."),
    413: _("The request body is too large."),
    500: _("Something went wrong on our side."),
}


def _respond(request, status: int):
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(
                status, str(MESSAGES[status]), code="server_error" if status == 500 else None
            ),
            status=status,
        )
    try:
        return render(
            request, "error.html", {"status": status, "message": MESSAGES[status]}, status=status
        )
    finally:
        if getattr(request, REQUEST_THREAD, threading.get_ident()) != threading.get_ident():
            connections.close_all()


# Under ASGI, Django renders the page of an exception a view raised (or of a path no route
# matched) in an executor thread of its own, not the request's: a connection the page opened
# there (the signed-in user's menu reads the session and the user) would stay open, or out of
# the pool, for good. ``ErrorPageMiddleware`` notes the request's thread; a page rendered
# elsewhere gives back that thread's connections when it is done.
REQUEST_THREAD = "_parley_thread"


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return _respond(request, 413)
    return _respond(request, 400)


def permission_denied(request, exception=None):
    return _respond(request, 403)


def page_not_found(request, exception=None):
    return _respond(request, 404)


def server_error(request):
    return _respond(request, 500)


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    """``/favicon.ico``, which browsers ask for on pages that name no icon (the admin, the API
    docs, a file): the site's icon. A temporary redirect: the static name changes with a deploy."""
    return HttpResponseRedirect(static("img/favicon.svg"))
