"""The cross-tenant sweep's discovery: every route with a tenant object, found, not listed.

Routes come from the URL conf (dashboard pages and htmx partials under ``/o/<org_slug>/``), the
OpenAPI schema (``/api/v1/``) and the websocket routes (``crm.routing``). For each object parameter
the sweep needs to build an object of organization A: the model is read from the view
(``OrgViewMixin.model``, a viewset's ``queryset``, a consumer's ``model``) and the object is made by
the factory registered for that model with ``@sweep_factory(Model)``. A route whose object the sweep
cannot build is reported as a failure, so a later issue's new route is covered or loudly not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver

Factory = Callable[..., Model]
FACTORIES: dict[type[Model], Factory] = {}

# Non-object URL parameters and the value the sweep puts in them.
SAMPLE_VALUES: dict[str, str] = {"action": "deactivate"}

# Routes outside the sweep, each with its reason. Anything not here is swept.
EXCLUDED_PREFIXES: dict[str, str] = {
    "admin/": "Django admin: staff superusers only (tests/accounts/test_admin.py)",
    "api/v1/": "swept from the OpenAPI schema instead",
    "invitations/<str:token>/": "a secret token, not a tenant id",
    "media/<str:token>/": "a signed, expiring token naming one message's media (providers fetch "
    "what we send; tests/messaging/test_api_chats.py)",
    "password-reset/<uidb64>/<token>/": "Django's signed reset token",
    "static/": "static files",
    "webhooks/": "providers' webhooks: authenticated by signature or secret, not by a member "
    "(tests/sessions_app/test_webhooks.py)",
}


def sweep_factory(model: type[Model]):
    """Register ``factory(cast) -> object of cast.org_a`` for ``model``."""

    def register(factory: Factory) -> Factory:
        FACTORIES[model] = factory
        return factory

    return register


@dataclass
class DashboardRoute:
    pattern: str  # e.g. "o/<slug:org_slug>/members/<int:pk>/<slug:action>/"
    view: Callable
    params: list[str] = field(default_factory=list)

    @property
    def model(self) -> type[Model] | None:
        view_class = getattr(self.view, "view_class", None)
        return getattr(view_class, "model", None) or getattr(self.view, "sweep_model", None)

    @property
    def object_param(self) -> str | None:
        view_class = getattr(self.view, "view_class", None)
        name = getattr(view_class, "pk_url_kwarg", None) or "pk"
        return name if name in self.params else None

    def object_value(self, obj: Model):
        """What the URL carries for ``obj``: its pk, or the field the view looks it up by."""
        view_class = getattr(self.view, "view_class", None)
        return getattr(obj, getattr(view_class, "object_field", "pk"))

    def path(self, org_slug: str, object_id=None) -> str:
        values = {"org_slug": org_slug}
        for param in self.params:
            if param == "org_slug":
                continue
            if param == self.object_param:
                values[param] = str(object_id)
            elif param in SAMPLE_VALUES:
                values[param] = SAMPLE_VALUES[param]
            else:
                raise LookupError(
                    f"{self.pattern}: no sample value for parameter {param!r} (add it to SAMPLE_VALUES)"
                )
        return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], self.pattern)


PARAM = re.compile(r"<(?:\w+:)?(\w+)>")


def _walk(patterns, prefix: str = ""):
    for entry in patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + route)
        elif isinstance(entry, URLPattern):
            yield prefix + route, entry.callback


def dashboard_routes() -> tuple[list[DashboardRoute], list[str]]:
    """(tenant routes under /o/<org_slug>/, other parameterised routes not explained)."""
    tenant, unexplained = [], []
    for pattern, view in _walk(get_resolver().url_patterns):
        if any(pattern.startswith(prefix) for prefix in EXCLUDED_PREFIXES):
            continue
        params = PARAM.findall(pattern)
        if pattern.startswith("o/<slug:org_slug>/"):
            tenant.append(DashboardRoute(pattern=pattern, view=view, params=params))
        elif params:
            unexplained.append(pattern)
    return tenant, unexplained


@dataclass
class ApiRoute:
    path: str  # from the schema: /api/v1/members/{id}/
    methods: list[str]
    view: Callable

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def model(self) -> type[Model] | None:
        view_class = getattr(self.view, "cls", None) or getattr(self.view, "view_class", None)
        queryset = getattr(view_class, "queryset", None)
        if queryset is not None:
            return queryset.model
        return getattr(view_class, "model", None)

    def concrete(self, object_id) -> str:
        return re.sub(r"\{\w+\}", str(object_id), self.path)

    def object_value(self, obj: Model):
        view_class = getattr(self.view, "cls", None) or getattr(self.view, "view_class", None)
        return getattr(obj, getattr(view_class, "lookup_field", "pk") or "pk")


def api_routes() -> list[ApiRoute]:
    from django.urls import resolve
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = []
    for path, operations in schema["paths"].items():
        sample = "00000000-0000-4000-8000-000000000000" if "{uuid}" in path else "1"
        match = resolve(re.sub(r"\{\w+\}", sample, path))
        required = [
            p["name"]
            for p in operations.get("get", {}).get("parameters", [])
            if p.get("in") == "query" and p.get("required")
        ]
        query = "&".join(f"{name}={REQUIRED_QUERY[name]}" for name in required)
        routes.append(
            ApiRoute(
                path=f"{path}?{query}" if query else path,
                methods=[m.upper() for m in operations],
                view=match.func,
            )
        )
    return routes


# What the sweep asks where a GET needs it: it matches the canaries of organization A's objects.
REQUIRED_QUERY = {"q": "acme"}


@dataclass
class SocketRoute:
    pattern: str
    consumer: type
    params: list[str]

    @property
    def model(self) -> type[Model] | None:
        return getattr(self.consumer, "sweep_model", None)

    def path(self, org_slug: str, obj: Model | None = None) -> str:
        others = [p for p in self.params if p != "org_slug"]
        if others and (obj is None or len(others) > 1):
            raise LookupError(
                f"{self.pattern}: the sweep cannot build {others} (give the consumer a "
                "sweep_model and sweep_field)"
            )
        path = self.pattern.replace("<slug:org_slug>", org_slug)
        if others:
            value = getattr(obj, getattr(self.consumer, "sweep_field", "pk"))
            path = re.sub(r"<(?:\w+:)?" + others[0] + ">", str(value), path)
        return "/" + path


def socket_routes() -> list[SocketRoute]:
    from crm.routing import websocket_urlpatterns

    routes = []
    for entry in websocket_urlpatterns:
        pattern = str(entry.pattern)
        consumer = getattr(entry.callback, "consumer_class", entry.callback)
        routes.append(
            SocketRoute(pattern=pattern, consumer=consumer, params=PARAM.findall(pattern))
        )
    return routes
