"""The address book's part of the demo: a few dozen contacts with aliases, tags, groups and fields."""

from __future__ import annotations

from accounts.tenancy import scoped
from crm.demo import DemoContext, register_demo_step
from messaging.models import Contact, CustomField
from messaging.services import contacts as services

DEMO_CONTACTS = [
    {
        "name": "Reem Haddad",
        "phone": "+44 7957 189696",
        "aliases": ["Reemy", "Sister"],
        "tags": ["family", "vip"],
        "favorite": True,
    },
    {"name": "Nick Lane", "phone": "+44 7950 724774", "aliases": ["Nicky"], "tags": ["friends"]},
    {
        "name": "陳大文",
        "phone": "+852 9123 4567",
        "aliases": ["Chan Tai Man"],
        "tags": ["customer"],
        "groups": ["Hong Kong"],
    },
    {
        "name": "José Álvarez",
        "phone": "+34 612 345 678",
        "email": "jose@example.com",
        "tags": ["customer", "vip"],
        "groups": ["Spain"],
    },
    {"notify_name": "Ama", "phone": "+233 24 123 4567", "tags": ["lead"]},
    {
        "verified_name": "Harbour Tea Ltd",
        "phone": "+852 2123 4567",
        "tags": ["supplier"],
        "groups": ["Hong Kong"],
    },
    {
        "name": "Priya Nair",
        "phone": "+91 98765 43210",
        "email": "priya@example.com",
        "tags": ["customer"],
    },
    {"name": "Tom Becker", "phone": "+49 151 23456789", "status": "blocked"},
]


@register_demo_step
def address_book(ctx: DemoContext) -> None:
    organization = ctx.organization
    if scoped(Contact, organization).exists():
        return
    if not scoped(CustomField, organization).filter(key="tier").exists():
        services.custom_field_define(
            organization=organization,
            key="tier",
            label="Tier",
            type="choice",
            choices=["gold", "silver", "bronze"],
        )
    for index, data in enumerate(DEMO_CONTACTS):
        tier = ("gold", "silver", "bronze")[index % 3]
        services.contact_create(
            organization=organization, data={**data, "custom_fields": {"tier": tier}}
        )
    ctx.say(f"added {len(DEMO_CONTACTS)} contacts")


@register_demo_step
def conversations(ctx: DemoContext) -> None:
    """A few conversations on the demo phone: questions waiting, an answered one with its ticks,
    a group, a reaction. Applied through ingest, as a provider's events would be."""
    import datetime as dt

    from django.utils import timezone

    from messaging import ingest
    from messaging.models import Message
    from sessions_app.models import WhatsAppSession
    from sessions_app.providers import events as ev

    organization = ctx.organization
    session = scoped(WhatsAppSession, organization).filter(name__iexact="Demo phone").first()
    if session is None or scoped(Message, organization).exists():
        return
    now = timezone.now()

    def person(phone: str, name: str) -> ev.Party:
        return ev.Party(phone=phone, jid=f"{phone}@s.whatsapp.net", name=name)

    reem, chan, priya = (
        person("447957189696", "Reem"),
        person("85291234567", "Chan"),
        person("919876543210", "Priya"),
    )
    group = "120363000000000042@g.us"

    def said(n: int, who: ev.Party | None, chat: str, text: str, minutes_ago: int, **more):
        return ev.MessageUpserted(
            provider_message_id=f"DEMO{n}",
            chat_jid=chat,
            from_me=who is None,
            timestamp=now - dt.timedelta(minutes=minutes_ago),
            body=text,
            sender=who,
            chat_is_group=chat == group,
            **more,
        )

    events = [
        said(1, chan, chan.jid, "你好！Do you deliver to Kowloon?", 50),
        said(2, None, chan.jid, "Yes, every weekday. What would you like?", 45),
        said(3, chan, chan.jid, "Two boxes of oolong, please.", 40, quoted_id="DEMO2"),
        said(4, reem, reem.jid, "Is the shop open on Sunday?", 12),
        said(5, priya, group, "Welcome everyone to the tasting group!", 30),
        said(6, None, group, "Thanks for joining, the next tasting is on Friday.", 25),
        ev.MessageStatusChanged(
            provider_message_id="DEMO2", status="read", timestamp=now - dt.timedelta(minutes=44)
        ),
        ev.ReactionReceived(
            provider_message_id="DEMO6",
            chat_jid=group,
            emoji="🎉",
            timestamp=now - dt.timedelta(minutes=24),
            sender=priya,
        ),
        ev.GroupsUpdated(groups=[ev.Group(jid=group, name="Tea tasting", participants=[priya])]),
    ]
    ingest.apply(session, events)
    ctx.say("added demo conversations (3 chats, 6 messages)")
