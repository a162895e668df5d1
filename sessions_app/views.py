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
from sessions_app import actions, providers, services, simulation
from sessions_app.forms import SessionCreateForm, SessionSettingsForm
from sessions_app.models import SessionEvent, WhatsAppSession
from sessions_app.providers.base import Capability


class SessionListView(OrgViewMixin, View):
    write_role = "admin"

    def get(self, request, org_slug):
        return self.render(SessionCreateForm())

    def render(self, form: SessionCreateForm, status: int = 200):
        return render(
            self.request,
            "sessions_app/list.html",
            {
                "sessions": scoped(WhatsAppSession, self.request.organization),
                "can_manage": role_at_least(self.request.role, "admin"),
                "form": form,
            },
            status=status,
        )

    def post(self, request, org_slug):
        form = SessionCreateForm(request.POST)
        if not form.is_valid():
            return self.render(form, status=400)
        try:
            session = services.session_create(
                organization=request.organization,
                actor=request.user,
                data=form.data_for_service(),
            )
        except ApplicationError as error:
            form.apply_error(error)
            return self.render(form, status=400)
        messages.success(request, _("Session %(name)s created.") % {"name": session.name})
        return redirect("session-detail", org_slug=org_slug, session_uuid=session.uuid)


class SessionDetailView(OrgViewMixin, View):
    model = WhatsAppSession
    pk_url_kwarg = "session_uuid"
    object_field = "uuid"
    write_role = "admin"

    def get(self, request, org_slug, session_uuid):
        return self.render()

    def render(
        self,
        *,
        form: SessionSettingsForm | None = None,
        error: ApplicationError | None = None,
        confirm_fault: str = "",
        status: int = 200,
    ):
        session = self.object
        provider = providers.get(session.provider)
        can_manage = role_at_least(self.request.role, "admin")
        if can_manage and form is None:
            stored = services.credentials_of(session)
            form = SessionSettingsForm(
                initial=SessionSettingsForm.initial_for(session, stored),
                provider=session.provider,
                stored=stored,
                members=self.members(),
            )
        return render(
            self.request,
            "sessions_app/detail.html",
            {
                "session": session,
                "provider_label": provider.label,
                "checks_credentials": Capability.QR not in provider.capabilities,
                # each action's button: the states it shows in (live), and whether it shows now
                "action_states": {
                    str(a): " ".join(actions.states_allowing(session.provider, a))
                    for a in actions.Action
                },
                "allowed": [str(a) for a in actions.allowed(session.provider, session.status)],
                "can_manage": can_manage,
                "qr": services.qr_data(session) if can_manage and session.status == "qr" else None,
                "history": scoped(SessionEvent, self.request.organization)
                .filter(session=session)
                .select_related("actor")[:50],
                "webhook": _webhook(session, provider) if can_manage else None,
                "form": form,
                "faults": simulation.FAULT_CHOICES,
                "confirm_fault": confirm_fault,
                "confirm_fault_label": dict(simulation.FAULT_CHOICES).get(confirm_fault, ""),
                "error": error,
                # what was typed into an action's fields, shown again beside its error
                "typed": self.request.POST if error else {},
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
                fault = request.POST.get("fault", "")
                if (
                    fault in simulation.DESTRUCTIVE_FAULTS
                    and request.POST.get("confirmed") != "yes"
                ):
                    return self.render(confirm_fault=fault)
                simulation.simulate_fault(session=session, fault=fault)
            elif action == "settings":
                return self.save_settings()
            elif action == "rotate_secret":
                services.webhook_secret_rotate(
                    organization=organization, session=session, actor=actor
                )
                messages.success(request, _("A new webhook secret is set: update the provider."))
            elif action == "delete":
                if request.POST.get("confirm", "").strip() != session.name:
                    message = _("Type the session's name to delete it.")
                    raise ApplicationError(message, fields={"confirm": [message]})
                services.session_delete(organization=organization, session=session, actor=actor)
                messages.success(request, _("Session deleted."))
                return redirect("sessions", org_slug=org_slug)
            else:
                raise ApplicationError(_("Unknown action."))
        except ApplicationError as error:
            self.object.refresh_from_db()
            return self.render(error=error, status=error.status if error.status < 500 else 502)
        return self.back()

    def save_settings(self):
        session, request = self.object, self.request
        form = SessionSettingsForm(
            request.POST,
            provider=session.provider,
            stored=services.credentials_of(session),
            members=self.members(),
        )
        if form.is_valid():
            try:
                services.session_update(
                    organization=request.organization,
                    session=session,
                    actor=request.user,
                    data=form.data_for_service(),
                )
            except ApplicationError as error:
                form.apply_error(error)
            else:
                messages.success(request, _("Saved."))
                return self.back()
        self.object.refresh_from_db()
        return self.render(form=form, status=400)

    def members(self):
        return (
            scoped(Membership, self.request.organization)
            .filter(is_active=True)
            .select_related("user")
        )

    def back(self):
        return redirect(
            reverse(
                "session-detail",
                kwargs={
                    "org_slug": self.request.organization.slug,
                    "session_uuid": self.object.uuid,
                },
            )
        )


def _webhook(session: WhatsAppSession, provider) -> dict:
    """What the session page shows to paste into the provider: the URL and, where the provider
    sends Parley's per-session secret, that secret; otherwise which credential is the secret."""
    secret_field = next(
        (f for f in provider.credential_fields if f.name == provider.webhook_secret_credential),
        None,
    )
    return {
        "url": services.webhook_url(session),
        "secret": "" if secret_field else services.webhook_secret_of(session),
        "secret_field": secret_field,
        "help": provider.webhook_help,
    }


urlpatterns = [
    path("sessions/", SessionListView.as_view(), name="sessions"),
    path("sessions/<str:session_uuid>/", SessionDetailView.as_view(), name="session-detail"),
]
