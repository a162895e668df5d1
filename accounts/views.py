"""Dashboard pages of accounts. Thin: a form, one service call, a message, a redirect."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from accounts import services
from accounts.forms import (
    ApiKeyForm,
    InvitationForm,
    InvitationSignupForm,
    LoginForm,
    OrganizationForm,
    RoleForm,
    SignupForm,
)
from accounts.models import (
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
    role_at_least,
)
from accounts.tenancy import OrgViewMixin, memberships_of, scoped
from crm.errors import ApplicationError


def _form_errors(form, exc: ApplicationError) -> None:
    for field, errors in exc.fields.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)
    if not exc.fields:
        form.add_error(None, exc.message)


# --- Signed-out pages ---------------------------------------------------------------------------


class ParleyLoginView(LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "signup_enabled": settings.PARLEY_SIGNUP_ENABLED,
        }


def signup(request):
    if not settings.PARLEY_SIGNUP_ENABLED:
        return render(request, "accounts/signup_disabled.html", status=403)
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user, organization = services.signup(**form.cleaned_data)
        except ApplicationError as exc:
            _form_errors(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request, _("Welcome to Parley. %(org)s is ready.") % {"org": organization.name}
            )
            return redirect("org-home", org_slug=organization.slug)
    return render(request, "accounts/signup.html", {"form": form})


def invitation_accept(request, token: str):
    invitation = services.invitation_by_token(token)
    if invitation is None or invitation.state != "pending":
        state = invitation.state if invitation else "invalid"
        return render(
            request,
            "accounts/invitation_invalid.html",
            {"state": state},
            status=410 if invitation else 404,
        )
    user = request.user if request.user.is_authenticated else None
    existing = User.objects.filter(email__iexact=invitation.email).first()
    form = None
    if user is None and existing is None:
        form = InvitationSignupForm(request.POST or None)
    if request.method == "POST":
        try:
            if user is None and existing is None and form.is_valid():
                user = services.user_create(email=invitation.email, **form.cleaned_data)
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if user is not None:
                membership = services.invitation_accept(token=token, user=user)
                messages.success(
                    request, _("You joined %(org)s.") % {"org": membership.organization.name}
                )
                return redirect("org-home", org_slug=membership.organization.slug)
        except ApplicationError as exc:
            if form is not None:
                _form_errors(form, exc)
            else:
                messages.error(request, exc.message)
    return render(
        request,
        "accounts/invitation_accept.html",
        {"invitation": invitation, "form": form, "existing": existing, "token": token},
    )


# --- Signed in, no organization yet ------------------------------------------------------------


@login_required
def home(request):
    memberships = list(memberships_of(request.user))
    preferred = next(
        (m for m in memberships if m.organization_id == request.user.last_organization_id), None
    )
    if preferred is None and len(memberships) == 1:
        preferred = memberships[0]
    if preferred is not None:
        return redirect("org-home", org_slug=preferred.organization.slug)
    return render(request, "accounts/choose_organization.html", {"memberships": memberships})


@login_required
def organization_create(request):
    form = OrganizationForm(
        request.POST or None,
        initial={"timezone": "UTC", "default_country": settings.PARLEY_DEFAULT_COUNTRY},
    )
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(
                name=form.cleaned_data["name"],
                owner=request.user,
                timezone_name=form.cleaned_data["timezone"],
                default_country=form.cleaned_data["default_country"],
            )
        except ApplicationError as exc:
            _form_errors(form, exc)
        else:
            return redirect("org-home", org_slug=organization.slug)
    return render(request, "accounts/organization_create.html", {"form": form})


# --- Organization pages -------------------------------------------------------------------------


def _back(request, name: str, **kwargs) -> HttpResponseRedirect:
    return redirect(name, org_slug=request.organization.slug, **kwargs)


class OrganizationHomeView(OrgViewMixin, TemplateView):
    template_name = "accounts/org_home.html"

    def get_context_data(self, **kwargs):
        org = self.request.organization
        return {
            **super().get_context_data(**kwargs),
            "member_count": scoped(Membership, org).filter(is_active=True).count(),
            "recent_events": scoped(AuditEvent, org)[:5]
            if role_at_least(self.request.role, Role.ADMIN)
            else [],
        }


class OrganizationSettingsView(OrgViewMixin, View):
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug):
        form = OrganizationForm(instance=request.organization)
        return self.render(form)

    def render(self, form):
        request = self.request
        candidates = (
            scoped(Membership, request.organization)
            .filter(is_active=True)
            .exclude(user=request.user)
        )
        return render(
            request,
            "accounts/org_settings.html",
            {"form": form, "candidates": candidates.select_related("user")},
        )

    def post(self, request, org_slug):
        # Bind a copy: a ModelForm writes the posted values onto its instance while validating, and
        # the service must see the organization as it was to save and audit the change.
        form = OrganizationForm(
            request.POST, instance=Organization.objects.get(pk=request.organization.pk)
        )
        if form.is_valid():
            try:
                services.organization_update(
                    organization=request.organization, actor=request.user, data=form.cleaned_data
                )
            except ApplicationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, _("Settings saved."))
                return _back(request, "org-settings")
        return self.render(form)


class TransferOwnershipView(OrgViewMixin, View):
    min_role = Role.OWNER
    write_role = Role.OWNER

    def post(self, request, org_slug):
        member_id = request.POST.get("member_id", "")
        valid = member_id.isascii() and member_id.isdigit() and len(member_id) < 19
        membership = (
            scoped(Membership, request.organization).filter(pk=member_id).first() if valid else None
        )
        if membership is None:
            messages.error(request, _("Choose a member."))
            return _back(request, "org-settings")
        try:
            services.ownership_transfer(
                organization=request.organization, new_owner=membership, actor=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("%(email)s now owns this organization.") % {"email": membership.user.email},
            )
        return _back(request, "org-home")


class OrganizationDeleteView(OrgViewMixin, View):
    min_role = Role.OWNER
    write_role = Role.OWNER

    def post(self, request, org_slug):
        name = request.organization.name
        try:
            services.organization_delete(
                organization=request.organization,
                actor=request.user,
                confirm=request.POST.get("confirm", ""),
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return _back(request, "org-settings")
        messages.success(request, _("%(org)s was deleted.") % {"org": name})
        return redirect("home")


class MemberListView(OrgViewMixin, TemplateView):
    template_name = "accounts/members.html"

    def get_context_data(self, **kwargs):
        org = self.request.organization
        return {
            **super().get_context_data(**kwargs),
            "members": scoped(Membership, org)
            .select_related("user")
            .order_by("-is_active", "user__email"),
            "can_manage": role_at_least(self.request.role, Role.ADMIN),
            "role_form": RoleForm(),
        }


class MemberActionView(OrgViewMixin, View):
    """POST /members/<pk>/<action>/: role, deactivate, reactivate, remove."""

    model = Membership
    write_role = Role.VIEWER  # anyone may leave; the service checks every other change

    def get(self, request, org_slug, pk, action=None):
        return _back(request, "org-members")

    def post(self, request, org_slug, pk, action):
        org, membership, actor = request.organization, self.object, request.user
        try:
            if action == "role":
                form = RoleForm(request.POST)
                if not form.is_valid():
                    raise ApplicationError(_("Choose a role."))
                services.member_set_role(
                    organization=org,
                    membership=membership,
                    role=form.cleaned_data["role"],
                    actor=actor,
                )
                messages.success(request, _("Role updated."))
            elif action == "deactivate":
                services.member_deactivate(organization=org, membership=membership, actor=actor)
                messages.success(
                    request, _("%(email)s was deactivated.") % {"email": membership.user.email}
                )
            elif action == "reactivate":
                services.member_reactivate(organization=org, membership=membership, actor=actor)
                messages.success(
                    request, _("%(email)s was reactivated.") % {"email": membership.user.email}
                )
            elif action == "remove":
                leaving = membership.user_id == actor.pk
                services.member_remove(organization=org, membership=membership, actor=actor)
                messages.success(
                    request, _("You left the organization.") if leaving else _("Member removed.")
                )
                if leaving:
                    return redirect("home")
            else:
                messages.error(request, _("Unknown action."))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return _back(request, "org-members")


class InvitationListView(OrgViewMixin, View):
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug):
        return self.render(InvitationForm())

    def render(self, form, status=200):
        invitations = scoped(Invitation, self.request.organization).select_related("invited_by")[
            :200
        ]
        return render(
            self.request,
            "accounts/invitations.html",
            {"form": form, "invitations": invitations},
            status=status,
        )

    def post(self, request, org_slug):
        form = InvitationForm(request.POST)
        if form.is_valid():
            try:
                invitation, _token = services.invitation_create(
                    organization=request.organization,
                    actor=request.user,
                    request_base=request.build_absolute_uri("/"),
                    **form.cleaned_data,
                )
            except ApplicationError as exc:
                _form_errors(form, exc)
            else:
                messages.success(
                    request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
                )
                return _back(request, "org-invitations")
        return self.render(form, status=400)


class InvitationRevokeView(OrgViewMixin, View):
    model = Invitation
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug, pk):
        return _back(request, "org-invitations")

    def post(self, request, org_slug, pk):
        try:
            services.invitation_revoke(
                organization=request.organization, invitation=self.object, actor=request.user
            )
            messages.success(request, _("Invitation revoked."))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return _back(request, "org-invitations")


class ApiKeyListView(OrgViewMixin, View):
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug):
        return self.render(ApiKeyForm())

    def render(self, form, created=None, raw=None, status=200):
        keys = scoped(ApiKey, self.request.organization).select_related("created_by")[:200]
        return render(
            self.request,
            "accounts/api_keys.html",
            {"form": form, "keys": keys, "created": created, "raw_key": raw},
            status=status,
        )

    def post(self, request, org_slug):
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                key, raw = services.api_key_create(
                    organization=request.organization, actor=request.user, **form.cleaned_data
                )
            except ApplicationError as exc:
                _form_errors(form, exc)
            else:
                # Shown once, in this response only; never stored, never redirected through a URL.
                return self.render(ApiKeyForm(), created=key, raw=raw)
        return self.render(form, status=400)


class ApiKeyRevokeView(OrgViewMixin, View):
    model = ApiKey
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug, pk):
        return _back(request, "org-api-keys")

    def post(self, request, org_slug, pk):
        services.api_key_revoke(
            organization=request.organization, api_key=self.object, actor=request.user
        )
        messages.success(request, _("Key %(prefix)s revoked.") % {"prefix": self.object.prefix})
        return _back(request, "org-api-keys")


class AuditLogView(OrgViewMixin, TemplateView):
    """The audit log; "Older" fetches the next rows as an htmx partial and appends them."""

    template_name = "accounts/audit_log.html"
    partial_template_name = "accounts/_audit_rows.html"
    min_role = Role.ADMIN
    page_size = 100

    def get_context_data(self, **kwargs):
        events = scoped(AuditEvent, self.request.organization).select_related("api_key")
        action = self.request.GET.get("action", "").strip()
        if action:
            events = events.filter(action__startswith=action)
        before = self.request.GET.get("before", "")
        if before.isascii() and before.isdigit() and len(before) < 19:
            events = events.filter(id__lt=int(before))
        page = list(events.order_by("-id")[: self.page_size + 1])
        more = len(page) > self.page_size
        page = page[: self.page_size]
        next_url = None
        if more:
            next_url = (
                reverse("org-audit", kwargs={"org_slug": self.request.organization.slug})
                + f"?before={page[-1].id}"
            )
            if action:
                next_url += f"&action={action}"
        return {
            **super().get_context_data(**kwargs),
            "events": page,
            "next_url": next_url,
            "action": action,
        }
