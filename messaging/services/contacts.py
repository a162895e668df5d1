"""Every write path of the address book: contacts, identities, aliases, tags, groups, notes, fields.

Keyword-only functions taking the organization explicitly; each runs in one transaction and raises
``crm.errors.ApplicationError`` (with per-field messages) for what a user got wrong. Every write
rebuilds the contact's search text (messaging/selectors.py reads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from accounts.services import audit_record, audit_scrub_target
from accounts.tenancy import scoped
from crm.errors import ApplicationError, Conflict
from messaging.models import (
    Contact,
    ContactAlias,
    ContactGroup,
    ContactGroupMember,
    ContactIdentity,
    ContactNote,
    ContactStatus,
    ContactTag,
    CustomField,
    CustomFieldType,
    IdentityKind,
    Tag,
)
from messaging.services.chats import (
    chats_merge_contacts,
    contact_messages_erase,
    media_delete_on_commit,
)
from messaging.text import InvalidPhone, normalize_phone, search_text
from sessions_app import queue

MAX_ALIASES = 50


# --- Custom fields ------------------------------------------------------------------------------


def custom_field_values_clean(
    *, organization: Organization, values: dict, partial: bool = False
) -> dict:
    """Validate ``values`` against the organization's definitions → typed JSON-ready values.

    Unknown keys, wrong types and choices outside the list are per-field errors. ``None`` or ""
    clears a value.
    """
    if not isinstance(values, dict):
        raise ApplicationError(
            _("Custom fields must be an object."),
            fields={"custom_fields": [_("Expected an object.")]},
        )
    definitions = {f.key: f for f in scoped(CustomField, organization).filter(key__in=list(values))}
    cleaned, errors = {}, {}
    for key, raw in values.items():
        field = definitions.get(key)
        if field is None:
            errors[f"custom_fields.{key}"] = [_("Unknown custom field.")]
            continue
        if raw is None or raw == "":
            cleaned[key] = None
            continue
        try:
            cleaned[key] = coerce_custom_value(field, raw)
        except ValueError as exc:
            errors[f"custom_fields.{key}"] = [str(exc)]
    if errors:
        raise ApplicationError(_("Some custom fields are not valid."), fields=errors)
    return cleaned


NUMBER_LIMIT = Decimal("1e15")  # beyond this a "number" is an id or a mistake (use a text field)


def _plain_text(raw) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError(_("Enter text, not a list or an object."))
    text = str(raw)
    if "\x00" in text:
        raise ValueError(_("Text may not contain NUL characters."))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(_("Text contains characters that are not valid Unicode.")) from None
    return text


def coerce_custom_value(field: CustomField, raw):
    """One custom field value, typed; ``ValueError`` with a readable message if it does not fit."""
    if field.type == CustomFieldType.TEXT:
        text = _plain_text(raw)
        if len(text) > 1000:
            raise ValueError(_("At most 1000 characters."))
        return text
    if field.type == CustomFieldType.NUMBER:
        if isinstance(raw, (bool, dict, list)):
            raise ValueError(_("Enter a number."))
        text = _plain_text(raw).strip()
        if len(text) > 40:
            raise ValueError(_("Enter a number of at most 15 digits."))
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(_("Enter a number.")) from None
        if not number.is_finite() or abs(number) >= NUMBER_LIMIT:
            raise ValueError(_("Enter a number of at most 15 digits."))
        if number == number.to_integral_value():
            return int(number)
        value = float(number)
        if value == 0.0:
            raise ValueError(_("That number is too small to store."))
        return value
    if field.type == CustomFieldType.DATE:
        if not isinstance(raw, str):
            raise ValueError(_("Enter a date as YYYY-MM-DD."))
        try:
            return dt.date.fromisoformat(raw.strip()).isoformat()
        except ValueError:
            raise ValueError(_("Enter a date as YYYY-MM-DD.")) from None
    if field.type == CustomFieldType.CHOICE:
        text = _plain_text(raw)
        if text not in field.choices:
            raise ValueError(
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(field.choices)}
            )
        return text
    if field.type == CustomFieldType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = _plain_text(raw).strip().lower()
        if text in {"true", "yes", "1", "y"}:
            return True
        if text in {"false", "no", "0", "n"}:
            return False
        raise ValueError(_("Enter yes or no."))
    raise ValueError(_("Unknown field type."))  # pragma: no cover


@transaction.atomic
def custom_field_define(
    *, organization: Organization, key: str, label: str, type: str, choices: list | None = None
) -> CustomField:
    if type not in CustomFieldType.values:
        raise ApplicationError(
            _("Unknown field type."),
            fields={"type": [_("Choose text, number, date, choice or boolean.")]},
        )
    if "__" in (key or ""):
        raise ApplicationError(
            _("A key may not contain a double underscore."),
            fields={"key": [_("Use single underscores.")]},
        )
    if type == CustomFieldType.CHOICE and not choices:
        raise ApplicationError(
            _("A choice field needs choices."), fields={"choices": [_("Give at least one.")]}
        )
    field = CustomField(
        organization=organization,
        key=key,
        label=label,
        type=type,
        choices=[str(c) for c in (choices or [])] if type == CustomFieldType.CHOICE else [],
    )
    try:
        field.full_clean(exclude=["organization"], validate_unique=False)
    except ValidationError as exc:
        raise ApplicationError(_("Some fields are not valid."), fields=exc.message_dict) from None
    if scoped(CustomField, organization).filter(key=key).exists():
        raise Conflict(_("A field with this key exists."), fields={"key": [_("Already in use.")]})
    field.save()
    return field


@transaction.atomic
def custom_field_update(
    *,
    organization: Organization,
    field: CustomField,
    label: str | None = None,
    choices: list | None = None,
) -> CustomField:
    if label is not None:
        field.label = label
    if choices is not None and field.type == CustomFieldType.CHOICE:
        cleaned = [str(c) for c in choices if str(c).strip()]
        if not cleaned:
            raise ApplicationError(
                _("A choice field needs choices."), fields={"choices": [_("Give at least one.")]}
            )
        field.choices = cleaned
    field.save()
    return field


@transaction.atomic
def custom_field_delete(*, organization: Organization, field: CustomField) -> None:
    """Delete the definition and its values on every contact."""
    for contact in (
        scoped(Contact, organization)
        .filter(custom_fields__has_key=field.key)
        .only("id", "custom_fields")
    ):
        contact.custom_fields.pop(field.key, None)
        Contact.objects.filter(pk=contact.pk).update(custom_fields=contact.custom_fields)
    field.delete()


# --- Tags and groups ----------------------------------------------------------------------------


def _same_name(queryset, name: str):
    """Rows whose name equals ``name`` ignoring case, compared as the unique constraint compares
    (the database's LOWER), so a pre-check and the constraint never disagree (e.g. 'İstanbul')."""
    return queryset.annotate(_lower=Lower("name")).filter(_lower=Lower(Value(name)))


def _clean_name(value: str, what: str, max_length: int) -> str:
    name = " ".join(str(value or "").split())
    if not name:
        raise ApplicationError(
            _("A %(what)s needs a name.") % {"what": what}, fields={"name": [_("Required.")]}
        )
    if len(name) > max_length:
        raise ApplicationError(
            _("That name is too long."),
            fields={"name": [_("At most %(n)d characters.") % {"n": max_length}]},
        )
    return name


def tags_get_or_create(*, organization: Organization, names: Iterable[str]) -> list[Tag]:
    wanted = {}
    for raw in names:
        name = _clean_name(raw, "tag", 60)
        wanted.setdefault(name.lower(), name)
    existing = {t.name.lower(): t for t in scoped(Tag, organization) if t.name.lower() in wanted}
    for key, name in wanted.items():
        if key in existing:
            continue
        try:
            with transaction.atomic():
                existing[key] = Tag.objects.create(organization=organization, name=name)
        except IntegrityError:  # created meanwhile, or equal to another under the database's LOWER
            existing[key] = _same_name(scoped(Tag, organization), name).get()
    return list({tag.pk: tag for tag in (existing[key] for key in wanted)}.values())


@transaction.atomic
def tag_create(*, organization: Organization, name: str, color: str = "#0f766e") -> Tag:
    name = _clean_name(name, "tag", 60)
    if _same_name(scoped(Tag, organization), name).exists():
        raise Conflict(_("This tag exists."), fields={"name": [_("Already in use.")]})
    return Tag.objects.create(organization=organization, name=name, color=color or "#0f766e")


@transaction.atomic
def tag_update(
    *, organization: Organization, tag: Tag, name: str | None = None, color: str | None = None
) -> Tag:
    if name is not None:
        name = _clean_name(name, "tag", 60)
        if _same_name(scoped(Tag, organization), name).exclude(pk=tag.pk).exists():
            raise Conflict(_("This tag exists."), fields={"name": [_("Already in use.")]})
        tag.name = name
    if color:
        tag.color = color
    tag.save()
    return tag


@transaction.atomic
def tag_delete(*, organization: Organization, tag: Tag) -> None:
    """Delete a tag; its links to contacts go with it, the contacts stay."""
    scoped(Tag, organization).filter(pk=tag.pk).delete()


def groups_get_or_create(*, organization: Organization, names: Iterable[str]) -> list[ContactGroup]:
    groups = []
    for raw in names:
        name = _clean_name(raw, "group", 120)
        group = _same_name(scoped(ContactGroup, organization), name).first()
        if group is None:
            try:
                with transaction.atomic():
                    group = ContactGroup.objects.create(organization=organization, name=name)
            except IntegrityError:
                group = _same_name(scoped(ContactGroup, organization), name).get()
        if group not in groups:
            groups.append(group)
    return groups


@transaction.atomic
def group_create(*, organization: Organization, name: str, description: str = "") -> ContactGroup:
    name = _clean_name(name, "group", 120)
    if _same_name(scoped(ContactGroup, organization), name).exists():
        raise Conflict(_("A group with this name exists."), fields={"name": [_("Already in use.")]})
    return ContactGroup.objects.create(
        organization=organization, name=name, description=description or ""
    )


@transaction.atomic
def group_update(
    *,
    organization: Organization,
    group: ContactGroup,
    name: str | None = None,
    description: str | None = None,
) -> ContactGroup:
    if name is not None:
        name = _clean_name(name, "group", 120)
        if _same_name(scoped(ContactGroup, organization), name).exclude(pk=group.pk).exists():
            raise Conflict(
                _("A group with this name exists."), fields={"name": [_("Already in use.")]}
            )
        group.name = name
    if description is not None:
        group.description = description
    group.save()
    return group


@transaction.atomic
def group_delete(*, organization: Organization, group: ContactGroup) -> None:
    """Delete a group; its memberships go with it, the contacts stay."""
    scoped(ContactGroup, organization).filter(pk=group.pk).delete()


@transaction.atomic
def group_add_contacts(
    *, organization: Organization, group: ContactGroup, contact_ids: Iterable[int]
) -> int:
    ids = set(
        scoped(Contact, organization).filter(pk__in=list(contact_ids)).values_list("pk", flat=True)
    )
    present = set(
        scoped(ContactGroupMember, organization)
        .filter(group=group, contact_id__in=ids)
        .values_list("contact_id", flat=True)
    )
    rows = [
        ContactGroupMember(organization=organization, group=group, contact_id=cid)
        for cid in ids - present
    ]
    ContactGroupMember.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@transaction.atomic
def group_remove_contacts(
    *, organization: Organization, group: ContactGroup, contact_ids: Iterable[int]
) -> int:
    deleted, _unused = (
        scoped(ContactGroupMember, organization)
        .filter(group=group, contact_id__in=list(contact_ids))
        .delete()
    )
    return deleted


# --- Contacts -----------------------------------------------------------------------------------


def _clean_scalars(data: dict) -> dict:
    cleaned, errors = {}, {}
    for field in ("name", "notify_name", "verified_name"):
        if field in data:
            value = " ".join(str(data[field] or "").split())
            if len(value) > 200:
                errors[field] = [_("At most 200 characters.")]
            cleaned[field] = value
    if "email" in data:
        email = str(data["email"] or "").strip().lower()
        if email:
            try:
                validate_email(email)
            except ValidationError:
                errors["email"] = [_("Enter a valid email address.")]
        cleaned["email"] = email
    if "favorite" in data:
        cleaned["favorite"] = bool(data["favorite"])
    if "status" in data:
        if data["status"] not in ContactStatus.values:
            errors["status"] = [_("Choose active, blocked or invalid.")]
        cleaned["status"] = data["status"]
    if errors:
        raise ApplicationError(_("Some fields are not valid."), fields=errors)
    return cleaned


def _clean_identities(organization: Organization, data: dict) -> list[tuple[str, str]]:
    """(kind, value) pairs from ``phone`` and ``identities``; phones normalized."""
    pairs: list[tuple[str, str]] = []
    errors: dict[str, list[str]] = {}
    if data.get("phone"):
        try:
            pairs.append(
                (
                    IdentityKind.PHONE,
                    normalize_phone(
                        str(data["phone"]), default_country=organization.default_country
                    ),
                )
            )
        except InvalidPhone as exc:
            errors["phone"] = [exc.message]
    for index, item in enumerate(data.get("identities") or []):
        kind, value = (item or {}).get("kind"), str((item or {}).get("value") or "").strip()
        if kind not in IdentityKind.values or not value or len(value) > 128:
            errors[f"identities.{index}"] = [
                _("Give a kind (phone, jid, lid, wa_id, bsuid) and a value.")
            ]
            continue
        if kind == IdentityKind.PHONE:
            try:
                value = normalize_phone(value, default_country=organization.default_country)
            except InvalidPhone as exc:
                errors[f"identities.{index}"] = [exc.message]
                continue
        pairs.append((kind, value))
    if errors:
        raise ApplicationError(_("Some fields are not valid."), fields=errors)
    return list(dict.fromkeys(pairs))


def _claim_identities(
    organization: Organization, contact: Contact, pairs: list[tuple[str, str]]
) -> None:
    """Attach identities to ``contact``; one held by another contact is a 409 naming it."""
    if not pairs:
        return
    taken = (
        scoped(ContactIdentity, organization)
        .filter(_pairs_q(pairs))
        .exclude(contact=contact)
        .select_related("contact")
    )
    clash = next(iter(taken), None)
    if clash is not None:
        field = "phone" if clash.kind == IdentityKind.PHONE else "identities"
        raise Conflict(
            _("%(value)s already belongs to %(name)s.")
            % {"value": clash.value, "name": clash.contact.display_name or f"#{clash.contact_id}"},
            code="identity_taken",
            fields={field: [_("Already belongs to contact %(id)s.") % {"id": clash.contact_id}]},
        )
    have = set(
        scoped(ContactIdentity, organization).filter(contact=contact).values_list("kind", "value")
    )
    rows = [
        ContactIdentity(organization=organization, contact=contact, kind=k, value=v)
        for k, v in pairs
        if (k, v) not in have
    ]
    try:
        with transaction.atomic():
            ContactIdentity.objects.bulk_create(rows)
    except IntegrityError:
        raise Conflict(
            _("That identity was just given to another contact."), code="identity_taken"
        ) from None


def _pairs_q(pairs: list[tuple[str, str]]) -> Q:
    query = Q()
    for kind, value in pairs:
        query |= Q(kind=kind, value=value)
    return query


def _set_aliases(organization: Organization, contact: Contact, aliases: Iterable[str]) -> None:
    wanted: dict[str, str] = {}
    for raw in aliases:
        alias = " ".join(str(raw or "").split())[:100]
        if alias:
            wanted.setdefault(alias.lower(), alias)
    if len(wanted) > MAX_ALIASES:
        raise ApplicationError(
            _("Too many aliases."), fields={"aliases": [_("At most %(n)d.") % {"n": MAX_ALIASES}]}
        )
    scoped(ContactAlias, organization).filter(contact=contact).delete()
    ContactAlias.objects.bulk_create(
        [ContactAlias(organization=organization, contact=contact, alias=a) for a in wanted.values()]
    )


def _set_tags(organization: Organization, contact: Contact, names: Iterable[str]) -> None:
    tags = tags_get_or_create(organization=organization, names=names)
    scoped(ContactTag, organization).filter(contact=contact).exclude(tag__in=tags).delete()
    ContactTag.objects.bulk_create(
        [ContactTag(organization=organization, contact=contact, tag=t) for t in tags],
        ignore_conflicts=True,
    )


def _set_groups(organization: Organization, contact: Contact, names: Iterable[str]) -> None:
    groups = groups_get_or_create(organization=organization, names=names)
    scoped(ContactGroupMember, organization).filter(contact=contact).exclude(
        group__in=groups
    ).delete()
    ContactGroupMember.objects.bulk_create(
        [ContactGroupMember(organization=organization, contact=contact, group=g) for g in groups],
        ignore_conflicts=True,
    )


def contact_search_terms(contact, aliases: Iterable[str], identities: Iterable[tuple[str, str]]):
    """``(kind, value)`` search terms of a contact: its names, email, aliases and identities."""
    yield from (("name", v) for v in (contact.name, contact.notify_name, contact.verified_name))
    yield "email", contact.email
    yield from (("alias", a) for a in aliases)
    for kind, value in identities:
        yield ("phone" if kind == IdentityKind.PHONE else "identity"), value


def search_text_rebuild(*, organization: Organization, contact_ids: Iterable[int]) -> None:
    """Recompute the search text of these contacts (three reads and one write for any number)."""
    ids = list(contact_ids)
    if not ids:
        return
    aliases: dict[int, list[str]] = {}
    for contact_id, alias in (
        scoped(ContactAlias, organization)
        .filter(contact_id__in=ids)
        .values_list("contact_id", "alias")
    ):
        aliases.setdefault(contact_id, []).append(alias)
    identities: dict[int, list[tuple[str, str]]] = {}
    for contact_id, kind, value in (
        scoped(ContactIdentity, organization)
        .filter(contact_id__in=ids)
        .values_list("contact_id", "kind", "value")
    ):
        identities.setdefault(contact_id, []).append((kind, value))
    contacts = list(
        scoped(Contact, organization)
        .filter(pk__in=ids)
        .only("id", "name", "notify_name", "verified_name", "email", "search_text")
    )
    changed = []
    for contact in contacts:
        text = search_text(
            contact_search_terms(
                contact, aliases.get(contact.pk, ()), identities.get(contact.pk, ())
            )
        )
        if text != contact.search_text:
            contact.search_text = text
            changed.append(contact)
    Contact.objects.bulk_update(changed, ["search_text"], batch_size=1000)


def _primary_phone(organization: Organization, contact: Contact) -> str | None:
    phones = list(
        scoped(ContactIdentity, organization)
        .filter(contact=contact, kind=IdentityKind.PHONE)
        .order_by("created_at", "id")
        .values_list("value", flat=True)[:1]
    )
    return phones[0] if phones else None


@transaction.atomic
def contact_create(*, organization: Organization, data: dict, actor: User | None = None) -> Contact:
    """Create a contact from ``data`` (name, notify_name, verified_name, phone, email, favorite,
    status, custom_fields, aliases, tags, groups, identities)."""
    scalars = _clean_scalars(data)
    pairs = _clean_identities(organization, data)
    custom = custom_field_values_clean(
        organization=organization, values=data.get("custom_fields") or {}
    )
    contact = Contact(organization=organization, **scalars)
    contact.custom_fields = {k: v for k, v in custom.items() if v is not None}
    contact.phone = next((v for k, v in pairs if k == IdentityKind.PHONE), None)
    contact.display_name = contact.compute_display_name()
    contact.save()
    _claim_identities(organization, contact, pairs)
    _apply_collections(organization, contact, data)
    search_text_rebuild(organization=organization, contact_ids=[contact.pk])
    return contact


def _apply_collections(organization: Organization, contact: Contact, data: dict) -> None:
    if "aliases" in data:
        _set_aliases(organization, contact, data.get("aliases") or [])
    if "tags" in data:
        _set_tags(organization, contact, data.get("tags") or [])
    if "groups" in data:
        _set_groups(organization, contact, data.get("groups") or [])


@transaction.atomic
def contact_update(
    *, organization: Organization, contact: Contact, data: dict, actor: User | None = None
) -> Contact:
    """Change what ``data`` names; collections given are replaced, identities given are added."""
    scalars = _clean_scalars(data)
    pairs = _clean_identities(organization, data)
    for field, value in scalars.items():
        setattr(contact, field, value)
    if "custom_fields" in data:
        custom = custom_field_values_clean(
            organization=organization, values=data.get("custom_fields") or {}
        )
        merged = {**contact.custom_fields, **custom}
        contact.custom_fields = {k: v for k, v in merged.items() if v is not None}
    _claim_identities(organization, contact, pairs)
    if "phone" in data and not data.get("phone"):
        scoped(ContactIdentity, organization).filter(
            contact=contact, kind=IdentityKind.PHONE, value=contact.phone
        ).delete()
    new_phone = next((v for k, v in pairs if k == IdentityKind.PHONE and "phone" in data), None)
    contact.phone = new_phone or _primary_phone(organization, contact)
    contact.display_name = contact.compute_display_name()
    contact.save()
    _apply_collections(organization, contact, data)
    search_text_rebuild(organization=organization, contact_ids=[contact.pk])
    return contact


@transaction.atomic
def contact_get_or_create_by_identity(
    *, organization: Organization, kind: str, value: str, defaults: dict | None = None
) -> tuple[Contact, bool]:
    """The contact holding (kind, value), creating it if nobody does. Safe under concurrency: two
    workers racing on the same identity end with one contact (the unique constraint decides)."""
    if kind == IdentityKind.PHONE:
        value = normalize_phone(value, default_country=organization.default_country)
    existing = (
        scoped(ContactIdentity, organization)
        .filter(kind=kind, value=value)
        .select_related("contact")
        .first()
    )
    if existing is not None:
        return existing.contact, False
    defaults = defaults or {}
    contact = Contact(organization=organization, **_clean_scalars(defaults))
    if kind == IdentityKind.PHONE:
        contact.phone = value
    contact.display_name = contact.compute_display_name()
    try:
        with transaction.atomic():
            contact.save()
            ContactIdentity.objects.create(
                organization=organization, contact=contact, kind=kind, value=value
            )
    except IntegrityError:
        winner = ContactIdentity.objects.select_related("contact").get(
            organization=organization, kind=kind, value=value
        )
        return winner.contact, False
    search_text_rebuild(organization=organization, contact_ids=[contact.pk])
    return contact, True


@transaction.atomic
def identity_remove(*, organization: Organization, identity: ContactIdentity) -> None:
    contact = identity.contact
    identity.delete()
    if identity.kind == IdentityKind.PHONE and contact.phone == identity.value:
        contact.phone = _primary_phone(organization, contact)
        contact.display_name = contact.compute_display_name()
        contact.save(update_fields=["phone", "display_name", "updated_at"])
    search_text_rebuild(organization=organization, contact_ids=[contact.pk])


@transaction.atomic
def contact_delete(
    *, organization: Organization, contact: Contact, actor: User | None = None
) -> None:
    contact.delete()


@transaction.atomic
def contact_merge(
    *, organization: Organization, survivor: Contact, other: Contact, actor: User | None = None
) -> Contact:
    """``other`` becomes part of ``survivor``: identities, aliases, tags, groups and notes move;
    blank fields of the survivor are filled from the other; custom fields are united (the
    survivor's values win); the earliest opt-out stands. Recorded in the audit log."""
    if survivor.pk == other.pk:
        raise ApplicationError(_("A contact cannot be merged into itself."), code="same_contact")
    survivor = Contact.objects.select_for_update().get(pk=survivor.pk, organization=organization)
    other = Contact.objects.select_for_update().get(pk=other.pk, organization=organization)
    for field in ("name", "notify_name", "verified_name", "email"):
        if not getattr(survivor, field) and getattr(other, field):
            setattr(survivor, field, getattr(other, field))
    survivor.favorite = survivor.favorite or other.favorite
    survivor.custom_fields = {**other.custom_fields, **survivor.custom_fields}
    if other.opted_out_at and (
        not survivor.opted_out_at or other.opted_out_at < survivor.opted_out_at
    ):
        survivor.opted_out_at, survivor.opted_out_source = (
            other.opted_out_at,
            other.opted_out_source,
        )
    if survivor.status == ContactStatus.ACTIVE and other.status != ContactStatus.ACTIVE:
        survivor.status = other.status

    scoped(ContactIdentity, organization).filter(contact=other).update(contact=survivor)
    have_aliases = {
        a.lower()
        for a in scoped(ContactAlias, organization)
        .filter(contact=survivor)
        .values_list("alias", flat=True)
    }
    moving = [
        a
        for a in scoped(ContactAlias, organization).filter(contact=other)
        if a.alias.lower() not in have_aliases
    ]
    ContactAlias.objects.filter(pk__in=[a.pk for a in moving]).update(contact=survivor)
    tag_ids = set(
        scoped(ContactTag, organization).filter(contact=survivor).values_list("tag_id", flat=True)
    )
    scoped(ContactTag, organization).filter(contact=other).exclude(tag_id__in=tag_ids).update(
        contact=survivor
    )
    group_ids = set(
        scoped(ContactGroupMember, organization)
        .filter(contact=survivor)
        .values_list("group_id", flat=True)
    )
    scoped(ContactGroupMember, organization).filter(contact=other).exclude(
        group_id__in=group_ids
    ).update(contact=survivor)
    scoped(ContactNote, organization).filter(contact=other).update(contact=survivor)
    chats_merge_contacts(organization=organization, survivor_id=survivor.pk, other_id=other.pk)
    merged_id, merged_label = other.pk, other.display_name
    other.delete()

    survivor.phone = survivor.phone or _primary_phone(organization, survivor)
    survivor.display_name = survivor.compute_display_name()
    survivor.save()
    search_text_rebuild(organization=organization, contact_ids=[survivor.pk])
    audit_record(
        organization=organization,
        action="contact.merged",
        actor=actor,
        target=survivor,
        data={"merged_contact_id": merged_id, "merged_contact": merged_label},
    )
    return survivor


@transaction.atomic
def contact_erase(
    *, organization: Organization, contact: Contact, actor: User | None = None
) -> None:
    """The right to be forgotten: the contact and everything about them go; the audit log keeps
    only that an erasure happened (no name, no number)."""
    contact_id = contact.pk
    needles = list(
        scoped(ContactIdentity, organization)
        .filter(contact_id=contact_id)
        .values_list("value", flat=True)
    )
    queue.forget(organization_id=organization.pk, needles=[*needles, contact.phone or ""])
    media_delete_on_commit(contact_messages_erase(organization=organization, contact_id=contact_id))
    Contact.objects.filter(
        pk=contact_id, organization=organization
    ).delete()  # cascades to every child
    audit_scrub_target(organization=organization, target_type="contact", target_id=str(contact_id))
    audit_record(
        organization=organization,
        action="contact.erased",
        actor=actor,
        data={"contact_id": contact_id},
    )


@transaction.atomic
def contact_opt_out(
    *, organization: Organization, contact: Contact, source: str, at: dt.datetime | None = None
) -> Contact:
    if contact.opted_out_at is None:
        contact.opted_out_at = at or timezone.now()
        contact.opted_out_source = source[:40]
        contact.save(update_fields=["opted_out_at", "opted_out_source", "updated_at"])
    return contact


@transaction.atomic
def contact_opt_in(*, organization: Organization, contact: Contact) -> Contact:
    contact.opted_out_at, contact.opted_out_source = None, ""
    contact.save(update_fields=["opted_out_at", "opted_out_source", "updated_at"])
    return contact


@transaction.atomic
def note_add(
    *, organization: Organization, contact: Contact, text: str, author: User | None
) -> ContactNote:
    text = (text or "").strip()
    if not text:
        raise ApplicationError(_("A note needs text."), fields={"text": [_("Required.")]})
    if len(text) > 10_000:
        raise ApplicationError(
            _("That note is too long."), fields={"text": [_("At most 10,000 characters.")]}
        )
    return ContactNote.objects.create(
        organization=organization, contact=contact, text=text, author=author
    )
