"""Dashboard forms of the address book. They shape input for the services, which validate for real.

A form only checks what the browser could not (types, lengths, required fields); the service
raises ``ApplicationError`` for the rest and ``apply_errors`` puts its per-field messages back on
the form, so one rule is never written twice.
"""

from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from crm.errors import ApplicationError
from messaging.models import ContactStatus, CustomField, CustomFieldType, IdentityKind
from messaging.services.inbox import MAX_TEXT, VARIABLES
from messaging.text import format_phone

CUSTOM_PREFIX = "cf_"


def split_names(text: str) -> list[str]:
    """'vip, Family ,, vip' → ['vip', 'Family', 'vip'] (the service removes duplicates)."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def apply_errors(form: forms.Form, exc: ApplicationError) -> None:
    """Put a service error on ``form``: its summary on top, its per-field messages on the fields.

    Service field names map to form fields: ``custom_fields.<key>`` → ``cf_<key>``, ``identities.N``
    → ``value``; a name the form does not have goes to the top.
    """
    form.add_error(None, exc.message)
    for name, errors in (exc.fields or {}).items():
        target = name
        if name.startswith("custom_fields."):
            target = CUSTOM_PREFIX + name.split(".", 1)[1]
        elif name.startswith("identities") and "value" in form.fields:
            target = "value"
        for error in errors:
            form.add_error(target if target in form.fields else None, error)


class ContactForm(forms.Form):
    """Create or edit a contact, custom fields included (one typed input per definition)."""

    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
        help_text=_("With the country code, e.g. +44 7957 189696."),
    )
    email = forms.EmailField(label=_("Email"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), choices=ContactStatus.choices, initial=ContactStatus.ACTIVE
    )
    aliases = forms.CharField(
        label=_("Aliases"),
        required=False,
        help_text=_("Other names people use, separated by commas."),
    )
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Separated by commas."))
    groups = forms.CharField(label=_("Groups"), required=False, help_text=_("Separated by commas."))

    def __init__(self, *args, custom_fields: list[CustomField] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.custom_definitions = list(custom_fields)
        for field in self.custom_definitions:
            self.fields[CUSTOM_PREFIX + field.key] = custom_form_field(field)

    @classmethod
    def initial_for(cls, contact) -> dict:
        """Initial values from a contact (its aliases, tags and groups prefetched or not)."""
        initial = {
            "name": contact.name,
            "phone": format_phone(contact.phone),
            "email": contact.email,
            "status": contact.status,
            "aliases": ", ".join(a.alias for a in contact.aliases.all()),
            "tags": ", ".join(ct.tag.name for ct in contact.contact_tags.all()),
            "groups": ", ".join(m.group.name for m in contact.group_memberships.all()),
        }
        for key, value in (contact.custom_fields or {}).items():
            initial[CUSTOM_PREFIX + key] = value
        return initial

    def custom_fields_fieldset(self) -> list:
        return [self[CUSTOM_PREFIX + f.key] for f in self.custom_definitions]

    def main_fieldset(self) -> list:
        return [self[name] for name in ("name", "phone", "email", "status")]

    def collections_fieldset(self) -> list:
        return [self[name] for name in ("aliases", "tags", "groups")]

    def service_data(self) -> dict:
        """The ``data`` argument of contact_create / contact_update."""
        data = self.cleaned_data
        custom = {}
        for field in self.custom_definitions:
            value = data.get(CUSTOM_PREFIX + field.key)
            if field.type == CustomFieldType.DATE and value:
                value = value.isoformat()
            elif field.type == CustomFieldType.NUMBER and value is not None:
                value = str(value)
            elif field.type != CustomFieldType.BOOLEAN and value in ("", None):
                value = None
            custom[field.key] = value
        return {
            "name": data["name"],
            "phone": data["phone"],
            "email": data["email"],
            "status": data["status"],
            "aliases": split_names(data["aliases"]),
            "tags": split_names(data["tags"]),
            "groups": split_names(data["groups"]),
            "custom_fields": custom,
        }


def custom_form_field(field: CustomField) -> forms.Field:
    """The typed input of one custom field definition."""
    common = {"label": field.label, "required": False}
    if field.type == CustomFieldType.NUMBER:
        return forms.DecimalField(**common, widget=forms.NumberInput(attrs={"step": "any"}))
    if field.type == CustomFieldType.DATE:
        return forms.DateField(
            **common,
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            input_formats=["%Y-%m-%d"],
            error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
        )
    if field.type == CustomFieldType.CHOICE:
        return forms.ChoiceField(
            **common, choices=[("", "—"), *[(choice, choice) for choice in field.choices]]
        )
    if field.type == CustomFieldType.BOOLEAN:
        return forms.BooleanField(**common)
    return forms.CharField(**common, max_length=1000)


class IdentityForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=IdentityKind.choices)
    value = forms.CharField(label=_("Value"), max_length=128)


class NoteForm(forms.Form):
    text = forms.CharField(
        label=_("Note"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )


class TagForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=60)
    color = forms.RegexField(
        label=_("Colour"),
        regex=r"^#[0-9a-fA-F]{6}$",
        initial="#0f766e",
        widget=forms.TextInput(attrs={"type": "color"}),
        error_messages={"invalid": _("Choose a colour like #0f766e.")},
    )


class GroupForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class CustomFieldForm(forms.Form):
    key = forms.SlugField(
        label=_("Key"),
        max_length=50,
        help_text=_("Used in imports, exports and the API; letters, digits, - and _."),
    )
    label = forms.CharField(label=_("Label"), max_length=100)
    type = forms.ChoiceField(label=_("Type"), choices=CustomFieldType.choices)
    choices = forms.CharField(
        label=_("Choices"),
        required=False,
        help_text=_("For a choice field: the options, separated by commas."),
    )

    def clean_choices(self) -> list[str]:
        return split_names(self.cleaned_data.get("choices", ""))


class CustomFieldEditForm(forms.Form):
    label = forms.CharField(label=_("Label"), max_length=100)
    choices = forms.CharField(label=_("Choices"), required=False)

    def clean_choices(self) -> list[str]:
        return split_names(self.cleaned_data.get("choices", ""))


class CannedReplyForm(forms.Form):
    """A canned reply, new or edited (an edit form per reply: ``prefix=f"reply-{pk}"``)."""

    shortcut = forms.CharField(
        label=_("Shortcut"),
        max_length=41,
        help_text=_("Type / and this in the inbox's reply box: letters, digits, - and _."),
    )
    text = forms.CharField(
        label=_("Text"),
        max_length=MAX_TEXT,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=format_lazy(
            _("Filled in with the chat's contact: {names}."),
            names=", ".join("{{" + name + "}}" for name in VARIABLES),
        ),
    )
