"""Read paths of the address book: contact search with ranking, and filtered lists.

Search reads ``Contact.search_text`` (folded names, aliases, email, phones and identities, each
wrapped in its kind's marker; see ``messaging.text``) with LIKE patterns only, so it behaves the same
on SQLite and PostgreSQL (where a trigram index serves them). Rank: 0 = exact phone or identity (or phone ending for 4+ digits),
1 = a name or alias starting with the query (or one of its words), 2 = contains it.
"""

from __future__ import annotations

from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from accounts.tenancy import scoped
from crm.errors import ApplicationError
from messaging.models import (
    CannedReply,
    Contact,
    ContactGroupMember,
    ContactStatus,
    ContactTag,
    CustomField,
)
from messaging.text import SEARCH_MARKS, digits, search_term

PHONE_ENDING_MIN_DIGITS = 4


def contact_search(*, organization: Organization, query: str) -> QuerySet[Contact]:
    """Contacts matching ``query``, best first (rank, then name), annotated with ``rank``."""
    text = search_term(query)
    number = digits(query)
    if not text:
        return scoped(Contact, organization).none()
    name, alias, email, phone, identity = (
        SEARCH_MARKS[k] for k in ("name", "alias", "email", "phone", "identity")
    )
    matches = Q(search_text__contains=text)
    exact = Q(search_text__contains=f"{phone}{text}{phone}") | Q(
        search_text__contains=f"{identity}{text}{identity}"
    )
    if len(number) >= PHONE_ENDING_MIN_DIGITS:
        ending = Q(search_text__contains=f"{number}{phone}")  # only phone terms end in that mark
        matches |= ending
        exact |= ending
    # A space is only ever inside a name or an alias: " ann" is one of their words starting.
    starts = (
        Q(search_text__contains=f"{name}{text}")
        | Q(search_text__contains=f"{alias}{text}")
        | Q(search_text__contains=f"{email}{text}")
        | Q(search_text__contains=f" {text}")
    )
    rank = Case(
        When(exact, then=Value(0)),
        When(starts, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        scoped(Contact, organization)
        .filter(matches)
        .annotate(rank=rank)
        .order_by("rank", "display_name", "id")
    )


def contact_list(
    *,
    organization: Organization,
    query: str = "",
    tag_ids: list[int] | None = None,
    group_ids: list[int] | None = None,
    favorite: bool | None = None,
    status: str | None = None,
    opted_out: bool | None = None,
    custom: dict[str, str] | None = None,
) -> QuerySet[Contact]:
    """The address book filtered as the dashboard, the API, exports and bulk actions ask."""
    contacts = (
        contact_search(organization=organization, query=query)
        if query.strip()
        else scoped(Contact, organization)
    )
    for tag_id in tag_ids or []:
        contacts = contacts.filter(
            Exists(
                ContactTag.objects.filter(
                    organization=organization, contact=OuterRef("pk"), tag_id=tag_id
                )
            )
        )
    for group_id in group_ids or []:
        contacts = contacts.filter(
            Exists(
                ContactGroupMember.objects.filter(
                    organization=organization, contact=OuterRef("pk"), group_id=group_id
                )
            )
        )
    if favorite is not None:
        contacts = contacts.filter(favorite=favorite)
    if status:
        contacts = contacts.filter(status=status)
    if opted_out is not None:
        contacts = contacts.filter(opted_out_at__isnull=not opted_out)
    for key, value in custom_filters_clean(organization=organization, custom=custom or {}).items():
        contacts = contacts.filter(**{f"custom_fields__{key}": value})
    return contacts


def custom_filters_clean(*, organization: Organization, custom: dict[str, str]) -> dict:
    """``cf.<key>=<text>`` filters → typed values of the organization's defined fields.

    A key that is not a defined field (or tries an ORM lookup like ``size__regex``) or a value that
    does not fit the field's type is a field error, so the filter is never silently wrong.
    """
    if not custom:
        return {}
    from messaging.services.contacts import coerce_custom_value

    definitions = {f.key: f for f in scoped(CustomField, organization).filter(key__in=list(custom))}
    typed, errors = {}, {}
    for key, raw in custom.items():
        field = definitions.get(key)
        if field is None or "__" in key:
            errors[f"cf.{key}"] = [str(_("Unknown custom field."))]
            continue
        try:
            typed[key] = coerce_custom_value(field, raw)
        except ValueError as exc:
            errors[f"cf.{key}"] = [str(exc)]
    if errors:
        raise ApplicationError(str(_("Some filters are not valid.")), fields=errors)
    return typed


def contact_filters_from_params(params) -> dict:
    """Filters named in a query string (a QueryDict) → keyword arguments of ``contact_list``.

    Shared by the API, the dashboard, exports and bulk actions: ``q``, ``tag`` and ``group``
    (repeatable ids), ``favorite``, ``status``, ``opted_out`` and ``cf.<key>=<value>``.
    """
    errors: dict[str, list[str]] = {}

    def ids(name: str) -> list[int]:
        values = [v for v in params.getlist(name) if v != ""]
        if not all(v.isascii() and v.isdigit() and len(v) < 19 for v in values):
            errors[name] = [str(_("Use numeric ids."))]
            return []
        return [int(v) for v in values]

    def boolean(name: str) -> bool | None:
        raw = (params.get(name) or "").lower()
        if raw == "":
            return None
        if raw in {"true", "1", "yes", "on"}:
            return True
        if raw in {"false", "0", "no", "off"}:
            return False
        errors[name] = [str(_("Use true or false."))]
        return None

    status = params.get("status") or None
    if status and status not in ContactStatus.values:
        errors["status"] = [str(_("Choose active, blocked or invalid."))]
    filters = {
        "query": (params.get("q") or "")[:200],
        "tag_ids": ids("tag"),
        "group_ids": ids("group"),
        "favorite": boolean("favorite"),
        "status": status,
        "opted_out": boolean("opted_out"),
        "custom": {k[3:]: v for k, v in params.items() if k.startswith("cf.") and k[3:]},
    }
    if errors:
        raise ApplicationError(str(_("Some filters are not valid.")), fields=errors)
    return filters


def canned_reply_list(*, organization: Organization) -> QuerySet[CannedReply]:
    """The organization's canned replies, by shortcut (the inbox offers them in this order)."""
    return scoped(CannedReply, organization).order_by("shortcut", "id")
