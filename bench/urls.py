"""The project's URLs plus two trivial views, the ceilings of bench/webhook_receive.py: the same
server answering a view that does nothing, through Django's middleware (``/bench/trivial/``) and
through the webhook receiver (``/webhooks/bench-trivial/``, served as the webhooks are)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from crm.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def trivial(request):
    request.read()
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
async def trivial_async(request):
    request.read()
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/trivial/", trivial),
    path("webhooks/bench-trivial/", trivial_async),
    *project_urlpatterns,
]

handler400 = "crm.views.bad_request"
handler403 = "crm.views.permission_denied"
handler404 = "crm.views.page_not_found"
handler500 = "crm.views.server_error"
