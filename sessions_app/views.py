"""Dashboard: the sessions list (live status badges), a new session, and a session's page: pairing
(the QR code refreshes live and flips to "Connected as +852 …" with no reload), settings
(credentials write-only, pacing, default assignee), the webhook URL to paste, the history.

Everyone in the organization sees sessions and their status; admins manage them and see QR codes.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views import View

from accounts.models import Membership, role_at_least
from accounts.tenancy import OrgViewMixin, scoped
from crm.errors import ApplicationError
from sessions_app import providers, services, simulation
from sessions_app.models import ProviderName, SessionEvent, WhatsAppSession


def _provider_choices():
    return [(name, providers.get(name)) for name in providers.names()]


class SessionListView(OrgViewMixin, View):
    write_role = "admin"

    def get(self, request, org_slug):
        return self.render()

    def render(self, error: ApplicationError | None = None, form: dict | None = None, status=200):
        sessions = scoped(WhatsAppSession, self.request.organization)
        return render(
            self.request,
            "sessions_app/list.html",
            {
                "sessions": sessions,
                "providers": _provider_choices(),
                "can_manage": role_at_least(self.request.role, "admin"),
                "error": error,
                "form": form or {"provider": ProviderName.SIMULATOR},
            },
            status=status,
        )

    def post(self, request, org_slug):
        provider = request.POST.get("provider", "")
        form = {
            "name": request.POST.get("name", ""),
            "provider": provider,
            "colour": request.POST.get("colour", ""),
        }
        prefix = f"cred-{provider}-"
        credentials = {
            key[len(prefix) :]: value
            for key, value in request.POST.items()
            if key.startswith(prefix)
        }
        try:
            session = services.session_create(
                organization=request.organization,
                actor=request.user,
                data={**form, "colour": form["colour"] or None, "credentials": credentials},
            )
        except ApplicationError as error:
            return self.render(error=error, form=form, status=400)
        messages.success(request, _("Session %(name)s created.") % {"name": session.name})
        return redirect("session-detail", org_slug=org_slug, session_uuid=session.uuid)


class SessionDetailView(OrgViewMixin, View):
    model = WhatsAppSession
    pk_url_kwarg = "session_uuid"
    object_field = "uuid"
    write_role = "admin"

    def get(self, request, org_slug, session_uuid):
        return self.render()

    def render(self, error: ApplicationError | None = None, status: int = 200):
        session = self.object
        provider = providers.get(session.provider)
        can_manage = role_at_least(self.request.role, "admin")
        stored = services.credentials_of(session) if can_manage else {}
        return render(
            self.request,
            "sessions_app/detail.html",
            {
                "session": session,
                "provider": provider,
                "capabilities": {str(c) for c in provider.capabilities},
                "credential_fields": [
                    (
                        field,
                        bool(stored.get(field.name)),
                        "" if field.secret else stored.get(field.name, ""),
                    )
                    for field in provider.credential_fields
                ],
                "can_manage": can_manage,
                "qr": services.qr_data(session) if can_manage and session.status == "qr" else None,
                "history": scoped(SessionEvent, self.request.organization)
                .filter(session=session)
                .select_related("actor")[:50],
                "webhook_url": services.webhook_url(session) if can_manage else "",
                "members": scoped(Membership, self.request.organization)
                .filter(is_active=True)
                .select_related("user"),
                "faults": simulation.PUBLIC_FAULTS,
                "error": error,
            },
            status=status,
        )

    def post(self, request, org_slug, session_uuid):
        session, organization, actor = self.object, request.organization, request.user
        action = request.POST.get("action", "")
        try:
            if action == "connect":
                services.session_connect(organization=organization, session=session, actor=actor)
            elif action == "pairing_code":
                services.session_pairing_code(
                    organization=organization,
                    session=session,
                    actor=actor,
                    phone_number=request.POST.get("phone_number", ""),
                )
            elif action == "disconnect":
                services.session_disconnect(organization=organization, session=session, actor=actor)
            elif action == "logout":
                services.session_logout(organization=organization, session=session, actor=actor)
            elif action == "scan":
                simulation.simulate_scan(session=session)
            elif action == "inbound":
                simulation.simulate_inbound(
                    session=session,
                    phone=request.POST.get("phone", ""),
                    text=request.POST.get("text", ""),
                    name=request.POST.get("name", ""),
                )
                messages.success(request, _("A message is on its way in."))
            elif action == "fault":
                simulation.simulate_fault(session=session, fault=request.POST.get("fault", ""))
            elif action == "settings":
                prefix = "cred-"
                services.session_update(
                    organization=organization,
                    session=session,
                    actor=actor,
                    data={
                        "name": request.POST.get("name", ""),
                        "colour": request.POST.get("colour", ""),
                        "default_assignee": request.POST.get("default_assignee") or None,
                        "settings": _pacing(request.POST),
                        "credentials": {
                            k[len(prefix) :]: v
                            for k, v in request.POST.items()
                            if k.startswith(prefix) and v
                        },
                    },
                )
                messages.success(request, _("Saved."))
            elif action == "rotate_secret":
                services.webhook_secret_rotate(
                    organization=organization, session=session, actor=actor
                )
                messages.success(request, _("A new webhook secret is set: update the provider."))
            elif action == "delete":
                if request.POST.get("confirm", "").strip() != session.name:
                    raise ApplicationError(_("Type the session's name to delete it."))
                services.session_delete(organization=organization, session=session, actor=actor)
                messages.success(request, _("Session deleted."))
                return redirect("sessions", org_slug=org_slug)
            else:
                raise ApplicationError(_("Unknown action."))
        except ApplicationError as error:
            self.object.refresh_from_db()
            return self.render(error=error, status=400 if error.status < 500 else 502)
        return redirect(
            reverse("session-detail", kwargs={"org_slug": org_slug, "session_uuid": session.uuid})
        )


def _pacing(post) -> dict:
    pacing = {}
    for key in ("messages_per_minute", "jitter_seconds"):
        raw = post.get(key, "").strip()
        if raw:
            try:
                pacing[key] = float(raw) if "." in raw else int(raw)
            except ValueError:
                raise ApplicationError(
                    _("Pacing must be a number."), fields={key: [_("A number.")]}
                ) from None
    return pacing


urlpatterns = [
    path("sessions/", SessionListView.as_view(), name="sessions"),
    path("sessions/<str:session_uuid>/", SessionDetailView.as_view(), name="session-detail"),
]
