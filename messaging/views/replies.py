"""Dashboard: the organization's canned replies (settings, for admins and owners), which the
inbox's reply box offers after ``/``. Thin: a form, one service call, a flash message, a redirect;
another organization's reply is a 404 (``OrgViewMixin``)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import Role
from accounts.tenancy import OrgViewMixin
from crm.errors import ApplicationError
from messaging.forms import CannedReplyForm, apply_errors
from messaging.models import CannedReply
from messaging.selectors import canned_reply_list
from messaging.services import inbox as services


def _edit_form(reply: CannedReply, data=None) -> CannedReplyForm:
    return CannedReplyForm(
        data, prefix=f"reply-{reply.pk}", initial={"shortcut": reply.shortcut, "text": reply.text}
    )


class CannedReplyListView(OrgViewMixin, View):
    template_name = "messaging/settings/canned_replies.html"
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug):
        return self.render(CannedReplyForm())

    def render(self, form, status=200):
        replies = list(canned_reply_list(organization=self.request.organization))
        for reply in replies:
            reply.form = _edit_form(reply)
        return render(
            self.request, self.template_name, {"form": form, "replies": replies}, status=status
        )

    def post(self, request, org_slug):
        form = CannedReplyForm(request.POST)
        if form.is_valid():
            try:
                reply = services.canned_reply_create(
                    organization=request.organization, actor=request.user, **form.cleaned_data
                )
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Reply %(reply)s added.") % {"reply": reply})
                return redirect("canned-replies", org_slug=org_slug)
        return self.render(form, status=400)


class CannedReplyActionView(OrgViewMixin, View):
    """An edit or delete of one reply; GET goes back to the list."""

    model = CannedReply
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug, pk):
        return redirect("canned-replies", org_slug=org_slug)


class CannedReplyEditView(CannedReplyActionView):
    def post(self, request, org_slug, pk):
        form = _edit_form(self.object, request.POST)
        if not form.is_valid():
            problems = [e for errors in form.errors.values() for e in errors]
            messages.error(request, " ".join([_("The reply was not saved."), *problems]))
            return redirect("canned-replies", org_slug=org_slug)
        try:
            services.canned_reply_update(
                organization=request.organization,
                reply=self.object,
                actor=request.user,
                **form.cleaned_data,
            )
        except ApplicationError as exc:
            problems = [str(e) for errors in exc.fields.values() for e in errors]
            messages.error(request, " ".join([exc.message, *problems]))
        else:
            messages.success(request, _("Reply %(reply)s saved.") % {"reply": self.object})
        return redirect("canned-replies", org_slug=org_slug)


class CannedReplyDeleteView(CannedReplyActionView):
    def post(self, request, org_slug, pk):
        label = str(self.object)
        services.canned_reply_delete(
            organization=request.organization, reply=self.object, actor=request.user
        )
        messages.success(request, _("Reply %(reply)s deleted.") % {"reply": label})
        return redirect("canned-replies", org_slug=org_slug)


urlpatterns = [
    path("settings/replies/", CannedReplyListView.as_view(), name="canned-replies"),
    path(
        "settings/replies/<int:pk>/edit/", CannedReplyEditView.as_view(), name="canned-reply-edit"
    ),
    path(
        "settings/replies/<int:pk>/delete/",
        CannedReplyDeleteView.as_view(),
        name="canned-reply-delete",
    ),
]
