"""Who a provider's ``Party`` is in the address book, and which chat a message belongs to.

Both work on a whole batch at once (a live message is a batch of one, a history sync thousands):
a constant number of queries per batch, never one per message. Concurrency-safe: contacts are
created under a per-organization advisory lock on PostgreSQL (SQLite serializes writers anyway),
so a burst from one new person handled by several workers ends with one contact; new chats
are COPYed in a savepoint (``crm.copying``; SQLite: ``bulk_create``), and should another worker
have made one meanwhile, inserted with ``ON CONFLICT DO NOTHING`` and read back, so racing
workers end with one chat.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from accounts.tenancy import scoped
from crm import copying
from messaging.models import Chat, ChatKind, Contact, ContactIdentity, IdentityKind
from messaging.services.contacts import contact_search_terms, search_text_rebuild
from messaging.text import InvalidPhone, normalize_phone, search_text
from sessions_app.models import WhatsAppSession
from sessions_app.providers.events import Party

Pair = tuple[str, str]  # (identity kind, value)


@lru_cache(maxsize=65536)
def phone_of(digits: str) -> str:
    """A WhatsApp number (international digits) as the address book stores phones. Cached: a
    history sync names the same people thousands of times, and parsing one costs ~40 µs."""
    try:
        return normalize_phone("+" + digits, default_country="")
    except InvalidPhone:
        return digits  # still a stable key; WhatsApp knows numbers phonenumbers does not


def pairs_of(party: Party) -> list[Pair]:
    """The identities a party names, most authoritative first."""
    pairs: list[Pair] = []
    if party.phone and party.phone.isdigit():
        pairs.append((IdentityKind.PHONE, phone_of(party.phone)))
    if party.wa_id and party.wa_id != party.phone:
        pairs.append((IdentityKind.WA_ID, party.wa_id))
    if party.lid:
        pairs.append((IdentityKind.LID, party.lid))
    if party.bsuid:
        pairs.append((IdentityKind.BSUID, party.bsuid))
    if not pairs and party.jid:
        pairs.append((IdentityKind.JID, party.jid))
    return [(kind, value[:128]) for kind, value in pairs]


def _held(organization: Organization, pairs: Iterable[Pair]) -> dict[Pair, int]:
    pairs = list(set(pairs))
    held: dict[Pair, int] = {}
    step = in_list_size()
    for start in range(0, len(pairs), step):
        chunk = pairs[start : start + step]
        by_kind: dict[str, list[str]] = {}
        for kind, value in chunk:
            by_kind.setdefault(kind, []).append(value)
        query = Q()
        for kind, values in by_kind.items():
            query |= Q(kind=kind, value__in=values)
        for kind, value, contact_id in (
            scoped(ContactIdentity, organization)
            .filter(query)
            .values_list("kind", "value", "contact_id")
        ):
            held[(kind, value)] = contact_id
    return held


def contacts_for(organization: Organization, parties: Iterable[Party]) -> dict[Party, int]:
    """The contact id of every party that names someone (creating contacts for new people,
    adding identities a known person shows for the first time, and taking WhatsApp's names:
    a contact's own name wins, then the WhatsApp name, then the verified business name)."""
    wanted = {party: pairs for party in dict.fromkeys(parties) if (pairs := pairs_of(party))}
    if not wanted:
        return {}
    held = _held(organization, (pair for pairs in wanted.values() for pair in pairs))
    if any(not any(pair in held for pair in pairs) for pairs in wanted.values()):
        _lock_contacts(organization)
        held.update(_held(organization, (pair for pairs in wanted.values() for pair in pairs)))
        new = {p: pairs for p, pairs in wanted.items() if not _found(pairs, held)}
        created = _create(organization, new, held)
    else:
        created = set()
    found = {party: _found(pairs, held) for party, pairs in wanted.items()}
    _add_identities(organization, wanted, found, held)
    _take_names(organization, {p: pk for p, pk in found.items() if pk not in created})
    return found


def _found(pairs: list[Pair], held: dict[Pair, int]) -> int | None:
    return next((held[pair] for pair in pairs if pair in held), None)


def _lock_contacts(organization: Organization) -> None:
    """Held to the end of the transaction: one writer at a time creates this organization's
    contacts from WhatsApp (a burst from one new person must not make two)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"parley.contacts:{organization.pk}"],
            )


def _create(
    organization: Organization, parties: dict[Party, list[Pair]], held: dict[Pair, int]
) -> set[int]:
    """One contact per new person (parties sharing an identity are one person), written with
    its names (the last WhatsApp gave, as ``_take_names`` would take them) and its search text:
    nothing else names a contact made here yet. Returns their ids."""
    people: list[tuple[Contact, list[Pair]]] = []  # each new contact, the identities it holds
    claimed: dict[Pair, int] = {}  # → its index in ``people``
    for party, pairs in parties.items():
        same = next((claimed[pair] for pair in pairs if pair in claimed), None)
        if same is None:
            phone = next((v for k, v in pairs if k == IdentityKind.PHONE), None)
            same = len(people)
            people.append((Contact(organization=organization, phone=phone), []))
        contact = people[same][0]
        contact.notify_name = party.name[:200] or contact.notify_name
        contact.verified_name = party.verified_name[:200] or contact.verified_name
        for pair in pairs:
            if pair not in claimed:
                claimed[pair] = same
                people[same][1].append(pair)
    if not people:
        return set()
    for contact, pairs in people:
        contact.display_name = contact.compute_display_name()
        contact.search_text = search_text(contact_search_terms(contact, (), pairs))
    if connection.vendor == "postgresql":
        now = timezone.now()
        contact_ids = copying.insert(
            Contact, [_values(contact, _CONTACT_FIELDS) for contact, _pairs in people], now
        )
        for (contact, _pairs), pk in zip(people, contact_ids, strict=True):
            contact.pk = pk
        identities = [
            {"organization_id": organization.pk, "contact_id": contact.pk, "kind": k, "value": v}
            for contact, pairs in people
            for k, v in pairs
        ]
        copying.insert(ContactIdentity, identities, now, ids=False)
    else:
        Contact.objects.bulk_create([contact for contact, _pairs in people], batch_size=1000)
        ContactIdentity.objects.bulk_create(
            [
                ContactIdentity(organization=organization, contact=contact, kind=kind, value=value)
                for contact, pairs in people
                for kind, value in pairs
            ],
            batch_size=1000,
        )
    for contact, pairs in people:
        for pair in pairs:
            held[pair] = contact.pk
    return {contact.pk for contact, _pairs in people}


_CONTACT_FIELDS = [  # what a new Contact instance holds (the times are set when written)
    f.attname
    for f in Contact._meta.concrete_fields
    if not f.primary_key
    and not getattr(f, "auto_now", False)
    and not getattr(f, "auto_now_add", False)
]


def _values(instance, names: list[str]) -> dict:
    return {name: getattr(instance, name) for name in names}


def _add_identities(
    organization: Organization,
    wanted: dict[Party, list[Pair]],
    found: dict[Party, int | None],
    held: dict[Pair, int],
) -> None:
    """An identity a known person shows for the first time (an ``@lid`` with its phone) joins
    that person; one already held by someone else stays theirs."""
    new: dict[Pair, int] = {}
    for party, pairs in wanted.items():
        contact_id = found[party]
        for pair in pairs:
            if contact_id and pair not in held and pair not in new:
                new[pair] = contact_id
    if not new:
        return
    ContactIdentity.objects.bulk_create(
        [
            ContactIdentity(organization=organization, contact_id=cid, kind=kind, value=value)
            for (kind, value), cid in new.items()
        ],
        ignore_conflicts=True,
    )
    held.update(new)
    search_text_rebuild(organization=organization, contact_ids=set(new.values()))


def _take_names(organization: Organization, found: dict[Party, int | None]) -> None:
    """WhatsApp's names for known people, written only where they changed."""
    names: dict[int, Party] = {}
    for party, contact_id in found.items():
        if contact_id and (party.name or party.verified_name):
            names[contact_id] = party
    if not names:
        return
    changed = []
    for contact in (
        scoped(Contact, organization)
        .filter(pk__in=list(names))
        .only("id", "name", "notify_name", "verified_name", "phone", "display_name")
    ):
        party = names[contact.pk]
        notify = party.name[:200] or contact.notify_name
        verified = party.verified_name[:200] or contact.verified_name
        if (notify, verified) != (contact.notify_name, contact.verified_name):
            contact.notify_name, contact.verified_name = notify, verified
            contact.display_name = contact.compute_display_name()
            changed.append(contact)
    if changed:
        Contact.objects.bulk_update(changed, ["notify_name", "verified_name", "display_name"])
        search_text_rebuild(organization=organization, contact_ids=[c.pk for c in changed])


# --- Chats ----------------------------------------------------------------------------------------

ChatKey = tuple[str, object]  # ("direct", contact id) or ("group", group JID)


def chat_ids_for(session: WhatsAppSession, keys: dict[ChatKey, str]) -> dict[ChatKey, int]:
    """The id of the session's chat for each key (created if new, assigned to the session's
    default assignee if it has one); ``keys`` maps a key to the JID to send to."""
    if not keys:
        return {}
    ids = _chat_ids(session, keys)
    missing = {key: keys[key] for key in keys if key not in ids}
    if not missing:
        return ids
    new = [
        {
            "organization_id": session.organization_id,
            "session_id": session.pk,
            "kind": ChatKind.DIRECT if kind == "direct" else ChatKind.GROUP,
            "contact_id": ref if kind == "direct" else None,
            "jid": (jid if kind == "direct" else str(ref))[:128],
            "assignee_id": session.default_assignee_id,  # the session's, if it names one
        }
        for (kind, ref), jid in missing.items()
    ]
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():
                pks = copying.insert(Chat, new, timezone.now())
        except IntegrityError:  # another worker made one meanwhile: theirs, read back below
            pass
        else:
            return {**ids, **dict(zip(missing, pks, strict=True))}
    Chat.objects.bulk_create([Chat(**row) for row in new], ignore_conflicts=True, batch_size=1000)
    ids.update(_chat_ids(session, missing))
    return ids


def chats_for(session: WhatsAppSession, keys: dict[ChatKey, str]) -> dict[ChatKey, Chat]:
    """``chat_ids_for``, as chats with id, kind, contact_id, jid and name loaded."""
    ids = chat_ids_for(session, keys)
    chats = Chat.objects.filter(session=session).only("id", "kind", "contact_id", "jid", "name")
    by_id = {chat.pk: chat for chat in chats.filter(pk__in=list(ids.values()))}
    return {key: by_id[pk] for key, pk in ids.items()}


def _chat_ids(session: WhatsAppSession, keys: dict[ChatKey, str]) -> dict[ChatKey, int]:
    contact_ids = [ref for kind, ref in keys if kind == "direct"]
    jids = [ref for kind, ref in keys if kind != "direct"]
    found: dict[ChatKey, int] = {}
    chats = Chat.objects.filter(session=session)
    step = in_list_size()
    for start in range(0, len(contact_ids), step):
        found.update(
            (("direct", contact_id), pk)
            for pk, contact_id in chats.filter(
                kind=ChatKind.DIRECT, contact_id__in=contact_ids[start : start + step]
            ).values_list("id", "contact_id")
        )
    for start in range(0, len(jids), step):
        found.update(
            (("group", jid), pk)
            for pk, jid in chats.exclude(kind=ChatKind.DIRECT)
            .filter(jid__in=jids[start : start + step])
            .values_list("id", "jid")
        )
    return found


def in_list_size() -> int:
    """Values per ``IN (…)`` list: one statement for a whole batch on PostgreSQL; SQLite takes
    fewer parameters a statement."""
    return 10_000 if connection.vendor == "postgresql" else 500
