"""Dashboard forms of sessions: a new session (a provider and that provider's credentials) and a
session's settings. They shape input for the services, which validate for real; ``apply_error``
puts a service's per-field messages beside the fields, so one rule is never written twice.

Every provider's credential fields come from its ``credential_fields``: a visible label, its help
text, and a password input for a secret, which is never rendered back (not even after an error).
The new-session form holds the fields of every provider, each set under its own radio button;
the chosen provider's are the ones read (CSS shows only those, no script needed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.errors import ApplicationError
from sessions_app import providers
from sessions_app.models import ProviderName
from sessions_app.providers.base import CredentialField

DEFAULT_COLOUR = "#0f766e"


class ColourInput(forms.TextInput):
    input_type = "color"


def credential_form_field(field: CredentialField, *, is_set: bool = False) -> forms.CharField:
    """A form field for one credential. Never ``required`` in HTML: the fields of providers not
    chosen are hidden, and the service says what is missing, beside the field."""
    attrs = {"autocomplete": "off", "spellcheck": "false"}
    if field.required:
        attrs["aria-required"] = "true"
    if field.secret:
        attrs["autocomplete"] = "new-password"
        if is_set:
            attrs["placeholder"] = _("Set. Type a new one to replace it.")
        widget: forms.Widget = forms.PasswordInput(attrs=attrs, render_value=False)
    else:
        widget = forms.TextInput(attrs=attrs)
    return forms.CharField(
        label=field.label, help_text=field.help, required=False, max_length=2000, widget=widget
    )


@dataclass
class CredentialInput:
    field: forms.BoundField
    optional: bool


@dataclass
class ProviderChoice:
    """One provider in the new-session form: its radio button and its credential inputs."""

    name: str
    label: str
    radio: forms.boundfield.BoundWidget
    inputs: list[CredentialInput]


class SessionCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    colour = forms.CharField(
        label=_("Label colour"), required=False, initial=DEFAULT_COLOUR, widget=ColourInput
    )
    provider = forms.ChoiceField(
        label=_("How it connects"), widget=forms.RadioSelect, initial=ProviderName.SIMULATOR
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(n, providers.get(n).label) for n in providers.names()]
        for name in providers.names():
            for field in providers.get(name).credential_fields:
                self.fields[self.credential_key(name, field.name)] = credential_form_field(field)

    @staticmethod
    def credential_key(provider: str, field: str) -> str:
        return f"cred-{provider}-{field}"

    def choices(self) -> list[ProviderChoice]:
        radios = {radio.data["value"]: radio for radio in self["provider"].subwidgets}
        return [
            ProviderChoice(
                name=name,
                label=providers.get(name).label,
                radio=radios[name],
                inputs=[
                    CredentialInput(self[self.credential_key(name, f.name)], not f.required)
                    for f in providers.get(name).credential_fields
                ],
            )
            for name in providers.names()
        ]

    def data_for_service(self) -> dict:
        """``session_create``'s data: the chosen provider's credentials only (blank ones left
        out, so the service names every missing one)."""
        data = self.cleaned_data
        provider = data["provider"]
        credentials = {
            f.name: data.get(self.credential_key(provider, f.name), "")
            for f in providers.get(provider).credential_fields
        }
        return {
            "name": data["name"],
            "provider": provider,
            "colour": data.get("colour") or None,
            "credentials": {k: v for k, v in credentials.items() if v},
        }

    def apply_error(self, error: ApplicationError) -> None:
        provider = self.data.get("provider", "")
        _apply(self, error, lambda name: self.credential_key(provider, name))


class SessionSettingsForm(forms.Form):
    """A session's settings: name, colour, its provider's credentials (a secret left blank keeps
    its value), pacing and the default assignee."""

    name = forms.CharField(label=_("Name"), max_length=80)
    colour = forms.CharField(label=_("Label colour"), required=False, widget=ColourInput)
    messages_per_minute = forms.FloatField(
        label=_("Messages per minute"),
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "step": "any"}),
    )
    messages_burst = forms.IntegerField(
        label=_("Messages sent at once before pacing starts"),
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    jitter_seconds = forms.FloatField(
        label=_("Random pause between messages (seconds)"),
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}),
    )
    default_assignee = forms.TypedChoiceField(
        label=_("Default assignee"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args, provider: str, stored: Mapping[str, str], members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.credential_fields = providers.get(provider).credential_fields
        self.fields["default_assignee"].choices = [("", "—")] + [
            (m.user_id, m.user.email) for m in members
        ]
        for field in self.credential_fields:
            self.fields[self.credential_key(field.name)] = credential_form_field(
                field, is_set=bool(stored.get(field.name))
            )

    @classmethod
    def initial_for(cls, session, stored: Mapping[str, str]) -> dict:
        initial = {
            "name": session.name,
            "colour": session.colour,
            "messages_per_minute": session.settings.get("messages_per_minute"),
            "messages_burst": session.settings.get("messages_burst"),
            "jitter_seconds": session.settings.get("jitter_seconds"),
            "default_assignee": session.default_assignee_id,
        }
        for field in providers.get(session.provider).credential_fields:
            if not field.secret:
                initial[cls.credential_key(field.name)] = stored.get(field.name, "")
        return initial

    @staticmethod
    def credential_key(field: str) -> str:
        return f"cred-{field}"

    def credential_inputs(self) -> list[CredentialInput]:
        return [
            CredentialInput(self[self.credential_key(f.name)], not f.required)
            for f in self.credential_fields
        ]

    def data_for_service(self) -> dict:
        data = self.cleaned_data
        pacing = {
            key: _number(data[key])
            for key in ("messages_per_minute", "messages_burst", "jitter_seconds")
            if data.get(key) is not None
        }
        credentials = {
            f.name: data.get(self.credential_key(f.name), "") for f in self.credential_fields
        }
        return {
            "name": data["name"],
            "colour": data.get("colour") or DEFAULT_COLOUR,
            "default_assignee": data.get("default_assignee"),
            "settings": pacing,
            # a blank secret keeps the stored one (the form never shows it); a blank plain
            # field keeps it too, as before
            "credentials": {k: v for k, v in credentials.items() if v},
        }

    def apply_error(self, error: ApplicationError) -> None:
        _apply(self, error, self.credential_key)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _apply(form: forms.Form, error: ApplicationError, credential_key) -> None:
    """The service's summary on top, its per-field messages beside the fields they name
    (``credentials.<name>`` → that credential's input, ``settings.<key>`` → ``<key>``)."""
    form.add_error(None, error.message)
    for name, messages in (error.fields or {}).items():
        target = name
        if name.startswith("credentials."):
            target = credential_key(name.split(".", 1)[1])
        elif name.startswith("settings."):
            target = name.split(".", 1)[1]
        for message in messages:
            form.add_error(target if target in form.fields else None, message)
