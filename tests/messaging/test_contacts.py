"""The address book's services: create, identities, merge, erase, custom fields, search ranking."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.test import TestCase

from accounts.models import AuditEvent
from crm.errors import ApplicationError, Conflict
from messaging import ingest
from messaging.models import (
    Chat,
    Contact,
    ContactAlias,
    ContactGroupMember,
    ContactIdentity,
    ContactNote,
    ContactTag,
    Message,
)
from messaging.selectors import contact_list, contact_search
from messaging.services import contacts as svc
from sessions_app import services as session_services
from sessions_app.providers import events as ev

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(cast):
    cast.org_a.default_country = "GB"
    cast.org_a.save()
    return cast.org_a


def test_it_creates_a_contact_with_its_phone_as_an_identity(org):
    contact = svc.contact_create(
        organization=org,
        data={
            "name": "Reem",
            "phone": "07957 189696",
            "aliases": ["Reemy", "Sister"],
            "tags": ["family"],
        },
    )
    assert contact.phone == "447957189696"
    assert contact.display_name == "Reem"
    assert ContactIdentity.objects.get(contact=contact).value == "447957189696"
    assert sorted(contact.aliases.values_list("alias", flat=True)) == ["Reemy", "Sister"]
    assert [t.tag.name for t in ContactTag.objects.filter(contact=contact)] == ["family"]


def test_it_names_a_contact_by_name_then_whatsapp_name_then_verified_name(org):
    assert (
        svc.contact_create(
            organization=org, data={"notify_name": "Rx", "verified_name": "Shop"}
        ).display_name
        == "Rx"
    )
    assert (
        svc.contact_create(organization=org, data={"verified_name": "Shop"}).display_name == "Shop"
    )
    assert (
        svc.contact_create(organization=org, data={"phone": "+852 9123 4567"}).display_name
        == "+85291234567"
    )


def test_an_identity_belongs_to_one_contact_only(org):
    first = svc.contact_create(organization=org, data={"name": "A", "phone": "+447957189696"})
    with pytest.raises(Conflict) as caught:
        svc.contact_create(organization=org, data={"name": "B", "phone": "07957189696"})
    assert "phone" in caught.value.fields
    assert Contact.objects.filter(organization=org).count() == 1
    assert ContactIdentity.objects.get().contact == first


def test_the_same_phone_in_two_organizations_is_two_contacts(cast, org):
    svc.contact_create(organization=org, data={"phone": "+447957189696"})
    svc.contact_create(organization=cast.org_b, data={"phone": "+447957189696"})
    assert ContactIdentity.objects.filter(value="447957189696").count() == 2


def test_an_unreadable_phone_is_a_field_error_and_nothing_is_written(org):
    with pytest.raises(ApplicationError) as caught:
        svc.contact_create(organization=org, data={"name": "X", "phone": "call me"})
    assert "phone" in caught.value.fields
    assert not Contact.objects.exists()


def test_custom_fields_are_typed_and_checked(org):
    svc.custom_field_define(organization=org, key="birthday", label="Birthday", type="date")
    svc.custom_field_define(
        organization=org, key="tier", label="Tier", type="choice", choices=["gold", "silver"]
    )
    svc.custom_field_define(organization=org, key="spend", label="Spend", type="number")
    svc.custom_field_define(organization=org, key="vip", label="VIP", type="boolean")
    contact = svc.contact_create(
        organization=org,
        data={
            "name": "C",
            "custom_fields": {
                "birthday": "1990-02-03",
                "tier": "gold",
                "spend": "12.50",
                "vip": "yes",
            },
        },
    )
    assert contact.custom_fields == {
        "birthday": "1990-02-03",
        "tier": "gold",
        "spend": 12.5,
        "vip": True,
    }
    with pytest.raises(ApplicationError) as caught:
        svc.contact_update(
            organization=org,
            contact=contact,
            data={"custom_fields": {"tier": "bronze", "spend": "lots", "shoe": 42}},
        )
    assert set(caught.value.fields) == {
        "custom_fields.tier",
        "custom_fields.spend",
        "custom_fields.shoe",
    }
    contact.refresh_from_db()
    assert contact.custom_fields["tier"] == "gold"


@pytest.mark.django_db(transaction=True)
def test_two_workers_creating_the_same_identity_end_with_one_contact(cast):
    # Given two workers that see the same new phone number at the same moment
    org = cast.org_a
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(5)
            contact, _created = svc.contact_get_or_create_by_identity(
                organization=org,
                kind="phone",
                value="+447957189696",
                defaults={"notify_name": "Reem"},
            )
            results.append(contact.pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    # Then both end with the same, single contact
    assert errors == []
    assert len(set(results)) == 1
    assert Contact.objects.filter(organization=org).count() == 1
    assert ContactIdentity.objects.filter(organization=org).count() == 1


def test_merging_moves_everything_to_the_survivor(cast, org):
    survivor = svc.contact_create(
        organization=org,
        data={"name": "Reem", "phone": "+447957189696", "aliases": ["R"], "tags": ["family"]},
    )
    other = svc.contact_create(
        organization=org,
        data={
            "notify_name": "Reemy",
            "email": "reem@example.com",
            "identities": [{"kind": "lid", "value": "1234@lid"}],
            "aliases": ["r", "Sister"],
            "tags": ["family", "vip"],
            "groups": ["Leeds"],
            "favorite": True,
        },
    )
    svc.note_add(organization=org, contact=other, text="Prefers mornings", author=cast.agent)

    merged = svc.contact_merge(organization=org, survivor=survivor, other=other, actor=cast.agent)

    assert not Contact.objects.filter(pk=other.pk).exists()
    assert merged.name == "Reem" and merged.email == "reem@example.com" and merged.favorite
    assert set(ContactIdentity.objects.filter(contact=merged).values_list("kind", "value")) == {
        ("phone", "447957189696"),
        ("lid", "1234@lid"),
    }
    assert sorted(ContactAlias.objects.filter(contact=merged).values_list("alias", flat=True)) == [
        "R",
        "Sister",
    ]
    assert sorted(
        ContactTag.objects.filter(contact=merged).values_list("tag__name", flat=True)
    ) == ["family", "vip"]
    assert list(
        ContactGroupMember.objects.filter(contact=merged).values_list("group__name", flat=True)
    ) == ["Leeds"]
    assert ContactNote.objects.get(contact=merged).text == "Prefers mornings"
    assert [c.pk for c in contact_search(organization=org, query="1234@lid")] == [merged.pk]
    assert AuditEvent.objects.filter(
        organization=org, action="contact.merged", target_id=str(merged.pk)
    ).exists()


def test_erasure_leaves_nothing_findable(cast, org):
    # Given a contact with everything a contact can have
    contact = svc.contact_create(
        organization=org,
        data={
            "name": "Zelda Quintana",
            "phone": "+447957189696",
            "email": "zelda@example.com",
            "aliases": ["Zee"],
            "tags": ["vip"],
            "groups": ["Leeds"],
        },
    )
    svc.note_add(
        organization=org,
        contact=contact,
        text="Zelda Quintana called about +447957189696",
        author=cast.owner,
    )
    other = svc.contact_create(
        organization=org, data={"name": "Old Zelda", "phone": "+447700900123"}
    )
    # ... and conversations: with each of her numbers, in a group, a reaction, a photo
    session = session_services.session_create(
        organization=org, actor=cast.owner, data={"name": "Desk", "provider": "simulator"}
    )
    photo_key = talk_with(session, org)
    contact = svc.contact_merge(organization=org, survivor=contact, other=other, actor=cast.owner)
    chat = Chat.objects.get(contact=contact)
    assert chat.messages.count() == 3  # her two numbers' chats are one conversation now

    # When she asks to be forgotten
    with TestCase.captureOnCommitCallbacks(execute=True):
        svc.contact_erase(organization=org, contact=contact, actor=cast.owner)
    assert not default_storage.exists(photo_key)
    assert Message.objects.filter(session=session).count() == 1  # someone else's, in the group

    # Then no table in the database holds her name, alias, email or numbers
    needles = ["zelda", "quintana", "zee", "7957189696", "7700900123"]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - catalog names
            for (row,) in cursor.fetchall():
                found = [n for n in needles if n in row.lower()]
                assert not found, f"{found} still in {table}: {row[:200]}"
    # And the audit log says only that an erasure happened
    assert AuditEvent.objects.filter(organization=org, action="contact.erased").count() == 1


def talk_with(session, org) -> str:
    """Zelda writes from both numbers, in a group, reacts, sends a photo (stored): its key."""
    zelda = ev.Party(phone="447957189696", jid="447957189696@s.whatsapp.net", name="Zelda Q")
    old = ev.Party(phone="447700900123", jid="447700900123@s.whatsapp.net", name="Old Zelda")
    other = ev.Party(phone="85291234567", jid="85291234567@s.whatsapp.net", name="Someone")
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    group = "120363000000000001@g.us"

    def said(n, sender, chat, **more):
        return ev.MessageUpserted(
            provider_message_id=f"Z{n}",
            chat_jid=chat,
            from_me=False,
            timestamp=at + dt.timedelta(minutes=n),
            body=f"Zelda Quintana here, call +447957189696 ({n})",
            sender=sender,
            chat_is_group=chat == group,
            **more,
        )

    photo = ev.Media(id="p1", mime_type="image/jpeg")
    with transaction.atomic():
        ingest.apply(
            session,
            [
                said(1, zelda, zelda.jid),
                said(2, zelda, zelda.jid, type="image", media=photo),
                said(3, old, old.jid),
                said(4, zelda, group),
                ev.MessageUpserted(
                    provider_message_id="G5",
                    chat_jid=group,
                    from_me=False,
                    timestamp=at,
                    body="hello group",
                    sender=other,
                    chat_is_group=True,
                ),
                ev.ReactionReceived(
                    provider_message_id="G5", chat_jid=group, emoji="👍", timestamp=at, sender=zelda
                ),
            ],
        )
    message = Message.objects.get(session=session, provider_message_id="Z2")
    key = default_storage.save(f"{org.pk}/{session.pk}/Z2.jpg", ContentFile(b"photo of zelda"))
    Message.objects.filter(pk=message.pk).update(media_state="stored", media_key=key)
    return key


# Search ranking on a fixed dataset: the expected order is written out, and SQLite must agree.
DATASET = [
    {"name": "Ana Silva", "phone": "+44 7957 189696"},
    {"name": "Anabel Ortiz", "aliases": ["Bel"]},
    {"name": "Mariana Costa"},
    {"name": "José Ánchez", "aliases": ["Pepe"]},
    {"name": "Joanna Lee", "phone": "+1 415 555 2671"},
    {"notify_name": "Big Ann", "aliases": ["annie"]},
    {"name": "陳大文", "aliases": ["Chan Tai Man"]},
    {"name": "Bob", "identities": [{"kind": "lid", "value": "99887766@lid"}]},
]
EXPECTED = {
    "ana": ["Ana Silva", "Anabel Ortiz", "Mariana Costa"],
    "ann": ["Big Ann", "Joanna Lee"],
    "jose": ["José Ánchez"],
    "ANCHEZ": ["José Ánchez"],
    "9696": ["Ana Silva"],
    "+44 7957 189 696": ["Ana Silva"],
    "415 555 2671": ["Joanna Lee"],
    "99887766@lid": ["Bob"],
    "大文": ["陳大文"],
    "tai man": ["陳大文"],
    "bel": ["Anabel Ortiz"],
    "zzz": [],
}

RANKING_SCRIPT = """
import json, sys
from accounts.models import User
from accounts.services import organization_create
from messaging.selectors import contact_search
from messaging.services import contacts as svc
owner = User.objects.create_user("rank@example.com", "rank password 99")
org = organization_create(name="Rank", owner=owner, default_country="GB")
for row in json.loads(sys.argv[1]):
    svc.contact_create(organization=org, data=row)
print(json.dumps({q: [c.display_name for c in contact_search(organization=org, query=q)] for q in json.loads(sys.argv[2])}))
"""


def ranked(org) -> dict[str, list[str]]:
    for row in DATASET:
        svc.contact_create(organization=org, data=row)
    return {
        q: [c.display_name for c in contact_search(organization=org, query=q)] for q in EXPECTED
    }


def test_search_ranks_exact_then_prefix_then_contains_on_postgresql(org):
    assert connection.vendor == "postgresql"
    assert ranked(org) == EXPECTED


def test_search_ranks_the_same_on_sqlite(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "PARLEY_ENV"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "crm.settings", "PARLEY_DATA_DIR": str(tmp_path)})
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=120)
    script = tmp_path / "rank.py"
    script.write_text(
        "import os, sys, django\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'crm.settings')\n"
        f"sys.path.insert(0, {str(ROOT)!r})\ndjango.setup()\n" + RANKING_SCRIPT
    )
    result = subprocess.run(
        [sys.executable, str(script), json.dumps(DATASET), json.dumps(list(EXPECTED))],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == EXPECTED


def test_filters_combine_with_search(org):
    svc.contact_create(
        organization=org, data={"name": "Ana Silva", "tags": ["vip"], "favorite": True}
    )
    svc.contact_create(organization=org, data={"name": "Ana Lopes", "tags": ["lead"]})
    vip = svc.tags_get_or_create(organization=org, names=["vip"])[0]
    assert [c.name for c in contact_list(organization=org, query="ana", tag_ids=[vip.pk])] == [
        "Ana Silva"
    ]
    assert [c.name for c in contact_list(organization=org, favorite=False)] == ["Ana Lopes"]
