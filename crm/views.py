"""Error pages: JSON with the API's error body under /api/, templates elsewhere."""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

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
    return render(
        request, "error.html", {"status": status, "message": MESSAGES[status]}, status=status
    )


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
