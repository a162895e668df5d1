"""Objects of organization A for the cross-tenant sweep; later issues add their models here."""

from __future__ import annotations

from accounts import services
from accounts.models import ApiKey, AuditEvent, Invitation, Membership
from messaging.models import (
    CannedReply,
    Chat,
    ChatNote,
    Contact,
    ContactGroup,
    ContactIdentity,
    ContactNote,
    CustomField,
    Message,
    Tag,
)
from messaging.services import contacts as contact_services
from sessions_app import services as session_services
from sessions_app.models import WhatsAppSession
from tests.support.people import Cast, make_user
from tests.support.sweep import sweep_factory


@sweep_factory(Membership)
def a_membership(cast: Cast) -> Membership:
    person = make_user("swept-member@a.example")
    return Membership.objects.create(organization=cast.org_a, user=person, role="agent")


@sweep_factory(Invitation)
def an_invitation(cast: Cast) -> Invitation:
    invitation, _token = services.invitation_create(
        organization=cast.org_a, email="swept-invitee@a.example", role="agent", actor=cast.owner
    )
    return invitation


@sweep_factory(ApiKey)
def an_api_key(cast: Cast) -> ApiKey:
    key, _raw = services.api_key_create(
        organization=cast.org_a, name="swept key", role="agent", actor=cast.owner
    )
    return key


@sweep_factory(AuditEvent)
def an_audit_event(cast: Cast) -> AuditEvent:
    return services.audit_record(organization=cast.org_a, action="sweep.probe", actor=cast.owner)


# --- messaging: the address book ----------------------------------------------------------------


@sweep_factory(Contact)
def a_contact(cast: Cast) -> Contact:
    return contact_services.contact_create(
        organization=cast.org_a,
        data={"name": "Acme Swept Contact", "phone": "+447700900555", "email": "swept@a.example"},
    )


@sweep_factory(ContactIdentity)
def an_identity(cast: Cast) -> ContactIdentity:
    contact = contact_services.contact_create(
        organization=cast.org_a,
        data={"name": "Acme Lid", "identities": [{"kind": "lid", "value": "acme-lid@lid"}]},
    )
    return contact.identities.get()


@sweep_factory(ContactNote)
def a_note(cast: Cast) -> ContactNote:
    contact = contact_services.contact_create(organization=cast.org_a, data={"name": "Acme Noted"})
    return contact_services.note_add(
        organization=cast.org_a, contact=contact, text="acme note", author=cast.owner
    )


@sweep_factory(Tag)
def a_tag(cast: Cast) -> Tag:
    return contact_services.tag_create(organization=cast.org_a, name="acme-tag")


@sweep_factory(ContactGroup)
def a_group(cast: Cast) -> ContactGroup:
    return contact_services.group_create(organization=cast.org_a, name="Acme group")


@sweep_factory(CustomField)
def a_custom_field(cast: Cast) -> CustomField:
    return contact_services.custom_field_define(
        organization=cast.org_a, key="acme_field", label="Acme field", type="text"
    )


# --- messaging: bulk actions --------------------------------------------------------------------

from messaging.models import BulkJob  # noqa: E402 - appended section keeps its own import
from messaging.services import bulk as bulk_services  # noqa: E402


@sweep_factory(BulkJob)
def a_bulk_job(cast: Cast) -> BulkJob:
    """A finished tag job over one contact of A (undoable, so every bulk-job route answers)."""
    contact = contact_services.contact_create(organization=cast.org_a, data={"name": "Acme Bulk"})
    job = bulk_services.bulk_start(
        organization=cast.org_a,
        actor=cast.owner,
        action="tag",
        params={"tag": "acme-bulk-tag"},
        ids=[contact.pk],
    )
    bulk_services.bulk_run(job.pk)
    return BulkJob.objects.get(pk=job.pk)


# --- messaging: CSV imports ---------------------------------------------------------------------

from messaging.models import ImportJob  # noqa: E402 - appended section keeps its own import


@sweep_factory(ImportJob)
def an_import(cast: Cast) -> ImportJob:
    """A small draft import of organization A (uploaded, mapping proposed, not started)."""
    import io

    from messaging.services.imports import import_upload

    data = b"name,phone\nAcme Importee,+447700900777\n"
    return import_upload(
        organization=cast.org_a,
        actor=cast.owner,
        fileobj=io.BytesIO(data),
        filename="acme-contacts.csv",
    )


# --- sessions_app: WhatsApp sessions ------------------------------------------------------------


GATEWAY_CREDENTIALS = {  # gateways at an address where nothing listens: no call is made
    "evolution": {"server_url": "http://127.0.0.1:9", "api_key": "k", "instance_name": "shop"},
    "gowa": {
        "server_url": "http://127.0.0.1:9",
        "username": "u",
        "password": "kept-password",
        "webhook_secret": "a-real-secret-1",
    },
}


def gateway_session(cast: Cast, provider: str, **credentials: str) -> WhatsAppSession:
    """A session named "Gateway" of org A on a linked-device gateway (``GATEWAY_CREDENTIALS``,
    with ``credentials`` replacing some)."""
    return session_services.session_create(
        organization=cast.org_a,
        actor=cast.admin,
        data={
            "name": "Gateway",
            "provider": provider,
            "credentials": {**GATEWAY_CREDENTIALS[provider], **credentials},
        },
    )


@sweep_factory(WhatsAppSession)
def a_session(cast: Cast) -> WhatsAppSession:
    return session_services.session_create(
        organization=cast.org_a,
        actor=cast.owner,
        data={"name": "Acme Swept Session", "provider": "simulator"},
    )


# --- messaging: chats and messages ----------------------------------------------------------------


@sweep_factory(Message)
def a_message(cast: Cast) -> Message:
    """An incoming image (its media stored, so the media route has something to refuse)."""
    import datetime as dt

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from messaging import ingest
    from sessions_app.providers import events as ev

    session = WhatsAppSession.objects.filter(
        organization=cast.org_a, name="Acme Swept Messages"
    ).first() or session_services.session_create(
        organization=cast.org_a,
        actor=cast.owner,
        data={"name": "Acme Swept Messages", "provider": "simulator"},
    )
    if Message.objects.filter(session=session, provider_message_id="SWEPT1").exists():
        return Message.objects.get(session=session, provider_message_id="SWEPT1")
    ingest.apply(
        session,
        [
            ev.MessageUpserted(
                provider_message_id="SWEPT1",
                chat_jid="85290000099@s.whatsapp.net",
                from_me=False,
                timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                type="image",
                caption="Acme order, photographed",  # found by the sweep's search
                media=ev.Media(id="m1", mime_type="image/jpeg"),
                sender=ev.Party(
                    phone="85290000099", jid="85290000099@s.whatsapp.net", name="Acme Customer"
                ),
            )
        ],
    )
    message = Message.objects.get(session=session, provider_message_id="SWEPT1")
    key = default_storage.save(f"{cast.org_a.pk}/{session.pk}/SWEPT1.jpg", ContentFile(b"jpeg"))
    Message.objects.filter(pk=message.pk).update(
        media_state="stored", media_key=key, media_mime="image/jpeg", media_size=4
    )
    message.refresh_from_db()
    return message


@sweep_factory(Chat)
def a_chat(cast: Cast) -> Chat:
    return a_message(cast).chat


@sweep_factory(ChatNote)
def a_chat_note(cast: Cast) -> ChatNote:
    return ChatNote.objects.create(
        organization=cast.org_a, chat=a_chat(cast), author=cast.owner, text="Acme note"
    )


@sweep_factory(CannedReply)
def a_canned_reply(cast: Cast) -> CannedReply:
    return CannedReply.objects.create(
        organization=cast.org_a, shortcut="acme", text="Acme thanks you, {{first_name}}"
    )
