"""A throwaway organization for the API fuzzer (tests/crm/test_api_fuzz.py): its owner's key, and
its objects, made through the services, in the states a client meets them in."""

from __future__ import annotations

import datetime as dt
import io
import itertools

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from accounts import services as accounts
from accounts.models import Membership
from messaging import ingest
from messaging.models import CannedReply, ImportJob, Message
from messaging.services import bulk, imports
from messaging.services import contacts as address_book
from sessions_app import services as sessions
from sessions_app.providers import events as ev
from tests.support.people import key_for, make_user

DROP = object()  # ``named``: leave the generated parameter out


class World:
    """The throwaway organization: its owner's key, and its objects made through the services, in
    the states a client meets them in (a draft import and a cancelled one, a message with media
    and a failed one...). ``pools[kind]`` are the ids to reuse, ``new(kind)`` makes one more, and
    ``named(field)`` is a real value for a field or parameter of that name."""

    def __init__(self) -> None:
        self.count = itertools.count(1)
        self.owner = make_user("fuzz-owner@fuzz.example", "Fuzz Owner")
        self.org = accounts.organization_create(
            name="Fuzz", owner=self.owner, slug="fuzz-throwaway-org"
        )
        self.key = key_for(self.owner, self.org)
        self.contact = self.new_contact()
        self.tag = address_book.tag_create(organization=self.org, name="fuzz-tag")
        self.group = address_book.group_create(organization=self.org, name="Fuzz group")
        address_book.group_add_contacts(
            organization=self.org, group=self.group, contact_ids=[self.contact.pk]
        )
        self.session = self.new_session()
        qr_session = self.new_session(waiting=True)
        self.message = self._incoming_with_media()
        self.chat = self.message.chat
        cancelled = self.new("imports")
        imports.import_cancel(organization=self.org, job=ImportJob.objects.get(pk=cancelled))
        audit = accounts.audit_record(organization=self.org, action="fuzz.probe", actor=self.owner)
        self.pools = {  # what a path names; a kind with no pool here is left to the fuzzer
            "api-keys": [self.new("api-keys")],
            "audit-log": [audit.pk],
            "bulk-jobs": [self.new("bulk-jobs")],
            "canned-replies": [self.new("canned-replies")],
            "chats": [self.chat.uuid],
            "contacts": [self.contact.pk],
            "custom-fields": [self.new("custom-fields")],
            "groups": [self.group.pk],
            "identities": [self.new("identities")],
            "imports": [self.new("imports"), cancelled],
            "invitations": [self.new("invitations")],
            "members": [self.new("members")],
            "messages": [self.message.uuid, self.new("messages")],
            "notes": [self.new("notes")],
            "sessions": [self.session.uuid, qr_session.uuid],
            "tags": [self.tag.pk],
        }

    def _n(self) -> int:
        return next(self.count)

    def hand_over(self, membership_id: int) -> None:
        """Ownership went to this member: requests go on with a key of theirs."""
        owner = Membership.objects.select_related("user").get(pk=membership_id)
        self.key = key_for(owner.user, self.org)

    # --- One more of each kind (ids as the API names them) ---

    def new(self, kind: str, *, waiting: bool = False):
        """One more object of ``kind``; a session is disconnected, or ``waiting`` for a scan."""
        made = {
            "api-keys": lambda: self.new_key().pk,
            "bulk-jobs": lambda: self.new_bulk_job().pk,
            "canned-replies": lambda: self.new_canned_reply().pk,
            "contacts": lambda: self.new_contact().pk,
            "custom-fields": lambda: self.new_custom_field().pk,
            "groups": lambda: (
                address_book.group_create(organization=self.org, name=f"Group {self._n()}").pk
            ),
            "identities": lambda: self.new_identity().pk,
            "imports": lambda: self.new_import().pk,
            "invitations": lambda: self.new_invitation().pk,
            "members": lambda: self.new_member().pk,
            "messages": lambda: self.new_failed_message().uuid,
            "notes": lambda: self.new_note().pk,
            "sessions": lambda: self.new_session(waiting=waiting).uuid,
            "tags": lambda: address_book.tag_create(organization=self.org, name=f"t{self._n()}").pk,
        }[kind]
        return made()

    def new_contact(self):
        n = self._n()
        return address_book.contact_create(
            organization=self.org,
            data={"name": f"Fuzz Person {n}", "phone": f"+4477009{n:05d}"},
        )

    def new_key(self):
        key, _raw = accounts.api_key_create(
            organization=self.org, name=f"key {self._n()}", role="agent", actor=self.owner
        )
        return key

    def new_member(self):
        person = make_user(f"member{self._n()}@fuzz.example")
        return Membership.objects.create(organization=self.org, user=person, role="agent")

    def new_invitation(self):
        invitation, _token = accounts.invitation_create(
            organization=self.org,
            email=f"invitee{self._n()}@fuzz.example",
            role="agent",
            actor=self.owner,
        )
        return invitation

    def new_note(self):
        return address_book.note_add(
            organization=self.org, contact=self.new_contact(), text="a note", author=self.owner
        )

    def new_identity(self):
        contact = address_book.contact_create(
            organization=self.org,
            data={"name": "Lid", "identities": [{"kind": "lid", "value": f"{self._n()}@lid"}]},
        )
        return contact.identities.get()

    def new_custom_field(self):
        return address_book.custom_field_define(
            organization=self.org, key=f"field_{self._n()}", label="Field", type="text"
        )

    def new_canned_reply(self):
        return CannedReply.objects.create(
            organization=self.org, shortcut=f"reply{self._n()}", text="Thanks, {{first_name}}"
        )

    def new_bulk_job(self):
        job = bulk.bulk_start(
            organization=self.org,
            actor=self.owner,
            action="tag",
            params={"tag": f"bulk-{self._n()}"},
            ids=[self.new_contact().pk],
        )
        return bulk.bulk_run(job.pk)

    def new_import(self):
        return imports.import_upload(
            organization=self.org,
            actor=self.owner,
            fileobj=io.BytesIO(b"name,phone\nImported Person,+447700900777\n"),
            filename="people.csv",
        )

    def new_session(self, *, waiting: bool = False):
        session = sessions.session_create(
            organization=self.org,
            actor=self.owner,
            data={"name": f"Number {self._n()}", "provider": "simulator"},
        )
        if waiting:
            session = sessions.session_connect(
                organization=self.org, session=session, actor=self.owner
            )
        return session

    def new_failed_message(self):
        return Message.objects.create(
            organization=self.org,
            session=self.chat.session,
            chat=self.chat,
            direction="out",
            type="text",
            body="did not go",
            status="failed",
            error_code="network-error",
            timestamp=dt.datetime.now(dt.UTC),
        )

    def _incoming_with_media(self):
        upserted = ev.MessageUpserted(
            provider_message_id="FUZZ1",
            chat_jid="85290000099@s.whatsapp.net",
            from_me=False,
            timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            type="image",
            caption="an order, photographed",
            media=ev.Media(id="m1", mime_type="image/jpeg"),
            sender=ev.Party(phone="85290000099", jid="85290000099@s.whatsapp.net", name="Cu"),
        )
        with transaction.atomic():
            ingest.apply(self.session, [upserted])
        message = Message.objects.get(session=self.session, provider_message_id="FUZZ1")
        key = default_storage.save(
            f"{self.org.pk}/{self.session.pk}/FUZZ1.jpg", ContentFile(b"jpg")
        )
        Message.objects.filter(pk=message.pk).update(
            media_state="stored", media_key=key, media_mime="image/jpeg", media_size=3
        )
        return message

    # --- What fields and parameters name ---

    def named(self, name: str):
        """A real value for a body field or query parameter called ``name``, or None."""
        return {
            "contact": lambda: self.contact.pk,
            "sender": lambda: self.contact.pk,
            "contact_ids": lambda: [self.contact.pk],
            "chat": lambda: str(self.chat.uuid),
            "session": lambda: str(self.session.uuid),
            "reply_to": lambda: str(self.message.uuid),
            "assignee": lambda: self.owner.pk,
            "default_assignee": lambda: self.owner.pk,
            "tag": lambda: self.tag.pk,
            "group": lambda: self.group.pk,
            "around": lambda: str(self.message.uuid),
            "before": lambda: str(self.message.uuid),
            "after": lambda: str(self.message.uuid),
            "phone": lambda: "85291234567",
            "phone_number": lambda: "+85291234567",
            "mapping": lambda: {"name": "name", "phone": "phone"},  # new_import's columns
            "cursor": lambda: DROP,  # a generated cursor is none we issued (a 404)
            # Objects the operation may use up (merge, bulk delete, a transfer): always new ones,
            # so no generated id there ever removes one of the objects above.
            "other_id": lambda: self.new("contacts"),
            "ids": lambda: [self.new("contacts")],
            "member_id": lambda: self.new("members"),
        }.get(name, lambda: None)()
