"""The address book: contacts, their identities, aliases, tags, groups, notes and custom fields.

Every row carries ``organization`` (first column of its indexes and unique constraints), so a
query is scoped without a join. On the rows that belong to a contact (identities, aliases, tags,
group memberships, notes) it is a copy of the contact's organization, written by the services with
the contact; the database enforces the key to the contact (and the contact's to its organization)
but not a second key to the organization, which would cost an import a lookup per row without
checking anything more (it would not catch a copy that differs from the contact's). Deleting an
organization still removes them (Django cascades along every key, enforced or not). The schema is portable (SQLite and PostgreSQL): aliases, tags and
identities are tables, not arrays; PostgreSQL-only indexes are added by vendor-conditional
migrations.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization


class ContactStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    BLOCKED = "blocked", _("Blocked")
    INVALID = "invalid", _("Invalid")


class IdentityKind(models.TextChoices):
    """How WhatsApp names a person. ``phone`` is E.164 digits without '+'."""

    PHONE = "phone", _("Phone")
    JID = "jid", _("WhatsApp JID")
    LID = "lid", _("Linked-device id (@lid)")
    WA_ID = "wa_id", _("Cloud API wa_id")
    BSUID = "bsuid", _("Business-scoped user id")


class Contact(models.Model):
    # Every index starts with the organization: a separate one on it would only slow writes.
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    name = models.CharField(_("name"), max_length=200, blank=True)
    notify_name = models.CharField(_("WhatsApp name"), max_length=200, blank=True)
    verified_name = models.CharField(_("verified business name"), max_length=200, blank=True)
    # name > notify name > verified name > phone: kept in one column to sort and show lists fast.
    display_name = models.CharField(max_length=200, blank=True, editable=False)
    phone = models.CharField(
        _("phone"), max_length=20, null=True, blank=True
    )  # E.164 digits, no '+'
    email = models.EmailField(_("email"), blank=True)
    favorite = models.BooleanField(_("favorite"), default=False)
    status = models.CharField(
        _("status"), max_length=10, choices=ContactStatus.choices, default=ContactStatus.ACTIVE
    )
    opted_out_at = models.DateTimeField(_("opted out at"), null=True, blank=True)
    opted_out_source = models.CharField(_("opt-out source"), max_length=40, blank=True)
    custom_fields = models.JSONField(_("custom fields"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Folded names, aliases, email, phones and identities (``messaging.text.search_text``), kept
    # by the services; search reads only this column (trigram-indexed on PostgreSQL).
    search_text = models.TextField(blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["display_name", "id"]
        indexes = [
            models.Index(fields=["organization", "display_name", "id"], name="contact_org_name"),
            models.Index(fields=["organization", "phone"], name="contact_org_phone"),
            models.Index(fields=["organization", "status"], name="contact_org_status"),
            models.Index(fields=["organization", "-updated_at"], name="contact_org_updated"),
        ]

    def __str__(self) -> str:
        return self.display_name or f"#{self.pk}"

    def compute_display_name(self) -> str:
        return (
            self.name.strip()
            or self.notify_name.strip()
            or self.verified_name.strip()
            or (f"+{self.phone}" if self.phone else "")
        )[:200]


class ContactIdentity(models.Model):
    """Authoritative: a message under any identity of a contact lands on that contact."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a copy of the contact's, whose own key is enforced (module doc)
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=8, choices=IdentityKind.choices)
    value = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact identity")
        verbose_name_plural = _("contact identities")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "value"], name="identity_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ContactAlias(models.Model):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a copy of the contact's, whose own key is enforced (module doc)
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=100)

    class Meta:
        verbose_name = _("contact alias")
        verbose_name_plural = _("contact aliases")
        constraints = [
            models.UniqueConstraint(
                "organization", "contact", Lower("alias"), name="alias_unique_per_contact"
            )
        ]

    def __str__(self) -> str:
        return self.alias


class Tag(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=60)
    color = models.CharField(_("colour"), max_length=7, default="#0f766e")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("organization", Lower("name"), name="tag_name_unique_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a copy of the contact's, whose own key is enforced (module doc)
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="contact_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact tag")
        verbose_name_plural = _("contact tags")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "contact", "tag"], name="contact_tag_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.contact_id}"


class ContactGroup(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact group")
        verbose_name_plural = _("contact groups")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("organization", Lower("name"), name="group_name_unique_per_org")
        ]

    def __str__(self) -> str:
        return self.name


class ContactGroupMember(models.Model):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a copy of the contact's, whose own key is enforced (module doc)
    )
    group = models.ForeignKey(ContactGroup, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="group_memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact group member")
        verbose_name_plural = _("contact group members")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "group", "contact"], name="group_member_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.group_id}"


class ContactNote(models.Model):
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a copy of the contact's, whose own key is enforced (module doc)
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(_("note"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contact note")
        verbose_name_plural = _("contact notes")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "contact", "-created_at"], name="note_org_contact")
        ]

    def __str__(self) -> str:
        return self.text[:60]


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")
    BOOLEAN = "boolean", _("Yes / no")


class CustomField(models.Model):
    """A typed field an organization defines for its contacts; values live in Contact.custom_fields."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(_("key"), max_length=50)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=8, choices=CustomFieldType.choices)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="custom_field_key_unique")
        ]

    def __str__(self) -> str:
        return self.label
