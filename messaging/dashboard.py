"""Read helpers of the address book's dashboard pages (and the two deletes the services lack).

Small and additive: the list page's keyset pagination with its prefetches, the contact page's
activity timeline, the tag and group lists with their counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import AuditEvent, Organization
from accounts.tenancy import scoped
from messaging.models import Contact, ContactGroup, ContactGroupMember, ContactNote, ContactTag, Tag

PAGE_SIZE = 50


def with_collections(contacts: QuerySet[Contact]) -> QuerySet[Contact]:
    """Aliases, tags and groups in three more queries, whatever the number of contacts."""
    return contacts.prefetch_related(
        "aliases",
        Prefetch("contact_tags", queryset=ContactTag.objects.select_related("tag")),
        Prefetch("group_memberships", queryset=ContactGroupMember.objects.select_related("group")),
    )


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_after: int | None  # the id to pass as ``after`` for the next page, None on the last


def contact_page(
    contacts: QuerySet[Contact], *, after: str = "", ranked: bool, size: int = PAGE_SIZE
) -> ContactPage:
    """One page of ``contacts`` ordered by (display_name, id), or (rank, display_name, id) when
    ``ranked``; ``after`` is the id of the last contact of the previous page.

    Keyset, not OFFSET: the anchor row is read back from the same filtered queryset (one query),
    so a page deep in the list costs what the first one does. An unknown anchor starts over.
    """
    if after and after.isascii() and after.isdigit() and len(after) < 19:
        fields = ["display_name", "id", *(["rank"] if ranked else [])]
        anchor = contacts.filter(pk=int(after)).values(*fields).first()
        if anchor is not None:
            name, pk = anchor["display_name"], anchor["id"]
            later = Q(display_name__gt=name) | Q(display_name=name, id__gt=pk)
            if ranked:
                rank = anchor["rank"]
                later = Q(rank__gt=rank) | (Q(rank=rank) & later)
            contacts = contacts.filter(later)
    order = ("rank", "display_name", "id") if ranked else ("display_name", "id")
    rows = list(with_collections(contacts.order_by(*order))[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return ContactPage(contacts=rows, next_after=rows[-1].pk if more and rows else None)


@dataclass
class ActivityItem:
    kind: str  # "note" or "event"
    at: object
    who: str
    text: str


def contact_activity(
    *, organization: Organization, contact: Contact, limit: int = 50
) -> list[ActivityItem]:
    """Notes and audit events about ``contact``, newest first."""
    events = scoped(AuditEvent, organization).filter(
        target_type="contact", target_id=str(contact.pk)
    )[:limit]
    notes = (
        scoped(ContactNote, organization).filter(contact=contact).select_related("author")[:limit]
    )
    items = [
        ActivityItem(
            kind="event", at=e.created_at, who=e.actor_label, text=_event_text(e.action, e.data)
        )
        for e in events
    ] + [
        ActivityItem(
            kind="note",
            at=n.created_at,
            who=(n.author.email if n.author else ""),
            text=n.text,
        )
        for n in notes
    ]
    items.sort(key=lambda item: item.at, reverse=True)
    return items[:limit]


def _event_text(action: str, data: dict) -> str:
    from django.utils.translation import gettext as _

    if action == "contact.merged":
        return _("Merged with %(name)s (#%(id)s).") % {
            "name": data.get("merged_contact") or "—",
            "id": data.get("merged_contact_id", "?"),
        }
    return action


def tags_with_counts(organization: Organization) -> QuerySet[Tag]:
    return scoped(Tag, organization).annotate(contact_count=Count("contact_tags")).order_by("name")


def groups_with_counts(organization: Organization) -> QuerySet[ContactGroup]:
    return (
        scoped(ContactGroup, organization).annotate(member_count=Count("members")).order_by("name")
    )
