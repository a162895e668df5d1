"""THE one place that resolves and enforces the tenant.

Every request that touches tenant data gets its organization here, once:

- dashboard views and htmx partials: from the URL (``/o/<org_slug>/...``) and the user's active
  membership (``OrgViewMixin`` / ``org_view``);
- the API: from the bearer key (``ApiKeyAuthentication``), or for a signed-in browser from the
  ``X-Organization`` header, the organization opened last, or the only one (``TenantAPIMixin``);
- websockets: from the route's ``org_slug`` and the session user (``TenantConsumer``).

Then ``request.organization`` and ``request.role`` are set, the object named in the URL (if any) is
looked up *inside* that organization (another organization's object is a 404 for every verb, before
the role check and before the body is read), and the role is checked (403). Querysets come from
``scoped(model, organization)`` so the tenant is in the query, never checked after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, permissions

from accounts.models import ApiKey, Membership, Organization, User, role_at_least
from crm.live import member_group, org_group

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Tenant:
    organization: Organization
    role: str
    membership: Membership | None = None
    api_key: ApiKey | None = None


# --- Querysets ----------------------------------------------------------------------------------


def scoped(model_or_queryset: type[Model] | QuerySet, organization: Organization) -> QuerySet:
    """Rows of ``organization`` only. The one way tenant data is queried."""
    qs = (
        model_or_queryset
        if isinstance(model_or_queryset, QuerySet)
        else model_or_queryset._default_manager.all()
    )
    return qs.filter(organization=organization)


def memberships_of(user: User) -> QuerySet[Membership]:
    """The active memberships of a person, organizations included (the switcher, the home page)."""
    return (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("organization")
        .order_by("organization__name")
    )


def tenant_for_user(user: User, org_slug: str) -> Tenant:
    """The tenant a signed-in person reaches at ``/o/<org_slug>/``; 404 if not a member."""
    if not user.is_authenticated:
        raise Http404
    membership = memberships_of(user).filter(organization__slug=org_slug).first()
    if membership is None:
        raise Http404
    return Tenant(organization=membership.organization, role=membership.role, membership=membership)


def _remember(user: User, organization: Organization) -> None:
    if user.last_organization_id != organization.pk:
        User.objects.filter(pk=user.pk).update(last_organization=organization)
        user.last_organization_id = organization.pk


def _attach(request: HttpRequest, tenant: Tenant) -> None:
    request.tenant = tenant
    request.organization = tenant.organization
    request.role = tenant.role
    request.membership = tenant.membership


# --- Dashboard views and htmx partials ----------------------------------------------------------


class OrgViewMixin(LoginRequiredMixin):
    """Base for dashboard views under ``/o/<org_slug>/``.

    ``min_role`` guards reads, ``write_role`` guards POST/PUT/PATCH/DELETE. With ``model`` set and an
    object kwarg (``pk`` by default) in the URL, ``self.object`` is that object of this organization.
    htmx partials are the same views: with ``partial_template_name`` set, a request made by htmx
    (``HX-Request: true``) renders that fragment instead of the whole page, under the same checks.
    """

    min_role = "viewer"
    write_role = "agent"
    model: type[Model] | None = None
    pk_url_kwarg = "pk"
    object_field = "pk"  # the model field the URL's object kwarg names (e.g. a public uuid)
    partial_template_name: str | None = None

    def get_template_names(self) -> list[str]:
        if self.partial_template_name and is_htmx(self.request):
            return [self.partial_template_name]
        return super().get_template_names()

    def get_scoped_queryset(self) -> QuerySet:
        assert self.model is not None, f"{type(self).__name__} names no model"
        return scoped(self.model, self.request.organization)

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        tenant = tenant_for_user(request.user, kwargs["org_slug"])
        _attach(request, tenant)
        if self.model is not None and self.pk_url_kwarg in kwargs:
            try:
                self.object = (
                    self.get_scoped_queryset()
                    .filter(**{self.object_field: kwargs[self.pk_url_kwarg]})
                    .first()
                )
            except (ValueError, ValidationError):  # not an id at all (a malformed uuid)
                self.object = None
            if self.object is None:
                raise Http404
        needed = self.min_role if request.method in SAFE_METHODS else self.write_role
        if not role_at_least(tenant.role, needed):
            raise PermissionDenied
        _remember(request.user, tenant.organization)
        return super().dispatch(request, *args, **kwargs)


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def org_view(min_role: str = "viewer", write_role: str = "agent"):
    """The function-view form of ``OrgViewMixin`` (without the object lookup)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, org_slug, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            tenant = tenant_for_user(request.user, org_slug)
            _attach(request, tenant)
            needed = min_role if request.method in SAFE_METHODS else write_role
            if not role_at_least(tenant.role, needed):
                raise PermissionDenied
            _remember(request.user, tenant.organization)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def context(request: HttpRequest) -> dict:
    """Template context: the current organization, role, and the switcher's list."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    organization = getattr(request, "organization", None)
    return {
        "organization": organization,
        "role": getattr(request, "role", None),
        "switcher": memberships_of(request.user) if organization is not None else (),
    }


# --- API ----------------------------------------------------------------------------------------


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <key>``. An unknown or revoked key is a 401 at once."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        from accounts.services import api_key_authenticate

        key = api_key_authenticate(raw.strip())
        if key is None or key.created_by is None:
            raise exceptions.AuthenticationFailed(_("Unknown or revoked API key."))
        return key.created_by, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


def tenant_for_api(request) -> Tenant:
    if isinstance(request.auth, ApiKey):
        key = request.auth
        return Tenant(organization=key.organization, role=key.effective_role, api_key=key)
    user = request.user
    slug = request.headers.get("X-Organization", "").strip()
    memberships = memberships_of(user)
    membership = None
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
        if membership is None:
            raise exceptions.NotFound(_("No such organization."))
    elif user.last_organization_id:
        membership = memberships.filter(organization_id=user.last_organization_id).first()
    if membership is None:
        found = list(memberships[:2])
        if not found:
            raise exceptions.PermissionDenied(_("You belong to no organization."))
        if len(found) > 1:
            raise exceptions.ParseError(_("Name the organization in the X-Organization header."))
        membership = found[0]
    return Tenant(organization=membership.organization, role=membership.role, membership=membership)


class RolePermission(permissions.BasePermission):
    """Reads need ``view.read_role``, writes ``view.write_role``; ``view.action_roles`` overrides."""

    message = _("Your role does not allow this.")

    def has_permission(self, request, view) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return False
        needed = getattr(view, "action_roles", {}).get(getattr(view, "action", None))
        if needed is None:
            needed = view.read_role if request.method in SAFE_METHODS else view.write_role
        return role_at_least(tenant.role, needed)


class TenantAPIMixin:
    """Base for DRF views and viewsets. ``get_queryset`` is scoped; the URL's object is found first.

    Subclasses set ``queryset`` (or ``model``) and may override ``filter_tenant_queryset``.
    """

    read_role = "viewer"
    write_role = "agent"
    action_roles: dict[str, str] = {}
    permission_classes = [permissions.IsAuthenticated, RolePermission]

    def initial(self, request, *args, **kwargs):
        self.format_kwarg = self.get_format_suffix(**kwargs)
        self.perform_authentication(request)
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        _attach(request, tenant_for_api(request))
        lookup = self.lookup_url_kwarg or self.lookup_field
        if lookup in kwargs:
            # 404 before the role check, the method check and the body: another org's id reveals nothing.
            self._tenant_object = self.get_object_in_tenant(kwargs[lookup])
        super().initial(request, *args, **kwargs)

    def get_object_in_tenant(self, value):
        lookup = self.lookup_field
        obj = self.get_queryset().filter(**{lookup: value}).first() if _valid_id(value) else None
        if obj is None:
            raise exceptions.NotFound()
        return obj

    def get_object(self):
        obj = getattr(self, "_tenant_object", None)
        if obj is None:
            obj = self.get_object_in_tenant(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        self.check_object_permissions(self.request, obj)
        return obj

    def base_queryset(self) -> QuerySet:
        queryset = getattr(self, "queryset", None)
        return queryset.all() if queryset is not None else self.model._default_manager.all()

    def get_queryset(self) -> QuerySet:
        return scoped(self.base_queryset(), self.request.organization)

    def read_back(self, obj) -> dict:
        """``obj`` as this view lists it, read again through ``get_queryset`` (annotations such
        as counts included), in ``serializer_class``'s shape: for answers to writes."""
        return self.get_serializer_class()(self.get_queryset().get(pk=obj.pk)).data


def _valid_id(value) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) < 19


# --- Websockets ---------------------------------------------------------------------------------


class TenantConsumer(AsyncJsonWebsocketConsumer):
    """Base for consumers on ``/ws/o/<org_slug>/...``: authorize in ``connect``, join derived groups.

    Subclasses set ``min_role`` and implement ``groups_for(tenant)`` returning group names built by
    ``crm.live``; the client never names a group. Close codes: 4401 not signed in, 4404 not a
    member (or no such organization), 4403 role too low.
    """

    min_role = "viewer"

    def groups_for(self, tenant: Tenant) -> list[str]:
        raise NotImplementedError

    async def authorize(self, tenant: Tenant) -> bool:
        """Subclasses check the URL's object here (in the tenant); False closes with 4404."""
        return True

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        slug = self.scope["url_route"]["kwargs"].get("org_slug", "")
        try:
            self.tenant = await database_sync_to_async(tenant_for_user)(user, slug)
        except Http404:
            await self.close(code=4404)
            return
        if not role_at_least(self.tenant.role, self.min_role):
            await self.close(code=4403)
            return
        if not await self.authorize(self.tenant):
            await self.close(code=4404)
            return
        organization_id = self.tenant.organization.pk
        self.joined = [
            *self.groups_for(self.tenant),
            member_group(organization_id, user.pk),
            org_group(organization_id, "access"),
        ]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def access_changed(self, message):
        """The person's membership changed (role, deactivation, removal, deletion): re-check now."""
        user, slug = self.scope["user"], self.scope["url_route"]["kwargs"].get("org_slug", "")
        try:
            tenant = await database_sync_to_async(tenant_for_user)(user, slug)
        except Http404:
            await self.close(code=4404)
            return
        if not role_at_least(tenant.role, self.min_role):
            await self.close(code=4403)
            return
        self.tenant = tenant

    async def live_event(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})
