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
