"""``crm.copying`` stores rows exactly as the ORM would, numbers them in order, and refuses a
conflict like any insert."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm import copying
from messaging.models import Chat, ChatKind, Contact, ContactIdentity
from sessions_app import services

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)
AWKWARD = ["plain", "tab\there", "line\nbreak\r\n", "back\\slash \\N", "", "陳大文 😀"]


def columns(instance, *skip: str) -> dict:
    return {
        f.attname: getattr(instance, f.attname)
        for f in type(instance)._meta.concrete_fields
        if f.attname not in {"id", *skip}
    }


def test_copied_rows_equal_what_the_orm_saves(cast):
    given = [
        {
            "organization_id": cast.org_a.pk,
            "name": name,
            "notify_name": AWKWARD[(n + 1) % len(AWKWARD)],
            "phone": f"85291234{n:03d}" if n % 2 else None,
            "custom_fields": {"note": name, "n": n, "nested": [None, True]} if n else {},
        }
        for n, name in enumerate(AWKWARD)
    ]
    with transaction.atomic():
        ids = copying.insert(Contact, given, NOW)
    orm = [Contact.objects.create(**row) for row in given]

    assert ids == sorted(ids) and len(set(ids)) == len(given)
    copied = Contact.objects.in_bulk(ids)
    for pk, saved in zip(ids, orm, strict=True):
        assert columns(copied[pk], "created_at", "updated_at") == columns(
            saved, "created_at", "updated_at"
        )
        assert copied[pk].created_at == copied[pk].updated_at == NOW
    assert copied[ids[3]].name == "back\\slash \\N" and copied[ids[0]].phone is None


def test_defaults_are_made_per_row_and_a_conflict_is_refused(cast):
    session = services.session_create(
        organization=cast.org_a, actor=cast.admin, data={"name": "Copy", "provider": "simulator"}
    )
    groups = [
        {
            "organization_id": cast.org_a.pk,
            "session_id": session.pk,
            "kind": ChatKind.GROUP,
            "jid": f"12036300{n}@g.us",
        }
        for n in range(3)
    ]
    with transaction.atomic():
        ids = copying.insert(Chat, groups, timezone.now())
    chats = list(Chat.objects.filter(pk__in=ids))
    assert len({chat.uuid for chat in chats}) == 3  # a default called per row
    assert all(c.participants == [] and c.status == "open" and c.unread_count == 0 for c in chats)

    contact = Contact.objects.create(organization=cast.org_a, name="Ann")
    taken = {"organization_id": cast.org_a.pk, "contact_id": contact.pk, "kind": "phone"}
    ContactIdentity.objects.create(**taken, value="85291234567")
    with pytest.raises(IntegrityError), transaction.atomic():
        copying.insert(ContactIdentity, [{**taken, "value": "85291234567"}], NOW, ids=False)
    assert ContactIdentity.objects.filter(contact=contact).count() == 1
