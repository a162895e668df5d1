"""Dashboard bulk actions: the contacts list posts a selection (or "all matching" its filters) here;
the job page shows the count, live progress and an Undo button.

The list includes ``messaging/bulk/_bulk_form.html``. Its filters travel as one hidden field,
``filters_query`` (the list's own query string: ``q=ana&tag=3``), so they never collide with the
action's own ``tag``, ``group`` and ``status`` fields; row checkboxes are
``<input name="ids" form="bulk-form">``.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import redirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.generic import TemplateView, View

from accounts.tenancy import OrgViewMixin
from crm.errors import ApplicationError
from messaging.models import BulkAction, BulkJob
from messaging.services import bulk as services


def _back(request) -> HttpResponseRedirect:
    """To the list the form was posted from (``next``), if it is a page of this organization."""
    target = request.POST.get("next", "")
    if target.startswith(f"/o/{request.organization.slug}/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect("org-home", org_slug=request.organization.slug)


class BulkStartView(OrgViewMixin, View):
    """POST only: start the job, then show its page. Mistakes go back to the list as a message."""

    write_role = "agent"

    def post(self, request, org_slug):
        post = request.POST
        action = post.get("action", "")
        params = {
            "tag": post.get("tag", "").strip(),
            "group": post.get("group", "").strip(),
            "status": post.get("status", ""),
            "source": post.get("source", "") or "dashboard",
        }
        try:
            if post.get("select_all_matching") in {"1", "on", "true"}:
                ids, filters = (
                    None,
                    services.bulk_filters_clean(QueryDict(post.get("filters_query", ""))),
                )
            else:
                raw = [v for v in post.getlist("ids") if v]
                if not raw:
                    raise ApplicationError(_("Select some contacts first."))
                if not all(v.isascii() and v.isdigit() and len(v) < 19 for v in raw):
                    raise ApplicationError(_("Some selected contacts are not valid."))
                ids, filters = [int(v) for v in raw], None
            job = services.bulk_start(
                organization=request.organization,
                actor=request.user,
                action=action,
                params=params,
                ids=ids,
                filters=filters,
            )
        except ApplicationError as exc:
            details = [m for messages_ in exc.fields.values() for m in messages_]
            messages.error(request, " ".join([exc.message, *details]))
            return _back(request)
        messages.success(
            request,
            _("%(action)s: %(count)d contacts selected.")
            % {"action": BulkAction(job.action).label, "count": job.total},
        )
        return redirect("contacts-bulk-job", org_slug=org_slug, pk=job.pk)


class BulkJobView(OrgViewMixin, TemplateView):
    """One job: state, counts, a progress bar fed by ``parley:bulk.progress`` events, Undo."""

    model = BulkJob
    template_name = "messaging/bulk/job.html"

    def get_context_data(self, **kwargs):
        job = self.object
        return {
            **super().get_context_data(**kwargs),
            "job": job,
            "action_label": BulkAction(job.action).label,
            "subject": job.params.get("tag")
            or job.params.get("group")
            or job.params.get("status", ""),
            "undoable": services.bulk_undoable(job),
            "finished": job.state not in {"queued", "running"},
        }


class BulkUndoView(OrgViewMixin, View):
    model = BulkJob
    write_role = "agent"

    def get(self, request, org_slug, pk):
        return redirect("contacts-bulk-job", org_slug=org_slug, pk=pk)

    def post(self, request, org_slug, pk):
        try:
            services.bulk_undo(
                organization=request.organization, job=self.object, actor=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Undone."))
        return redirect("contacts-bulk-job", org_slug=org_slug, pk=pk)


urlpatterns = [
    path("contacts/bulk/", BulkStartView.as_view(), name="contacts-bulk"),
    path("contacts/bulk/<int:pk>/", BulkJobView.as_view(), name="contacts-bulk-job"),
    path("contacts/bulk/<int:pk>/undo/", BulkUndoView.as_view(), name="contacts-bulk-undo"),
]
