"""The project's URLs plus ``/bench/trivial/``: the same server and middleware answering a view
that does nothing (the ceiling of bench/webhook_receive.py)."""

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from crm.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def trivial(request):
    request.read()
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/trivial/", trivial), *project_urlpatterns]

handler400 = "crm.views.bad_request"
handler403 = "crm.views.permission_denied"
handler404 = "crm.views.page_not_found"
handler500 = "crm.views.server_error"
