"""Dashboard pages of the address book: the contacts list, the contact page and its small actions,
groups, tags and (for admins) custom field definitions.

Thin: a form, one service call, a flash message, a redirect. ``ApplicationError`` from a service
becomes form errors or a flash message, never a 500. Every POST-only action also answers GET with a
redirect back (the cross-tenant sweep's positive control reads it).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views import View
from django.views.generic import TemplateView

from accounts.models import Role, role_at_least
from accounts.tenancy import OrgViewMixin, scoped
from crm.errors import ApplicationError
from messaging import dashboard
from messaging.forms import (
    ContactForm,
    CustomFieldEditForm,
    CustomFieldForm,
    GroupForm,
    IdentityForm,
    NoteForm,
    TagForm,
    apply_errors,
)
from messaging.models import (
    Contact,
    ContactGroup,
    ContactIdentity,
    ContactStatus,
    CustomField,
    Tag,
)
from messaging.selectors import contact_filters_from_params, contact_list, contact_search
from messaging.services import contacts as services
from messaging.text import format_phone

FILTER_PARAMS = ("q", "tag", "group", "favorite", "status", "opted_out")
BULK_FORM_TEMPLATE = "messaging/bulk/_bulk_form.html"


def _url(request, name: str, **kwargs) -> str:
    return reverse(name, kwargs={"org_slug": request.organization.slug, **kwargs})


def _optional_url(request, name: str) -> str | None:
    """The URL of a page another part of the work may not have added yet."""
    try:
        return _url(request, name)
    except NoReverseMatch:
        return None


def _template_exists(name: str) -> bool:
    try:
        select_template([name])
    except TemplateDoesNotExist:
        return False
    return True


def _can_edit(request) -> bool:
    return role_at_least(request.role, Role.AGENT)


def _custom_fields(organization) -> list[CustomField]:
    return list(scoped(CustomField, organization).order_by("label", "id"))


# --- The list ------------------------------------------------------------------------------------


class ContactListView(OrgViewMixin, TemplateView):
    """The address book. Searching as you type asks for the rows partial only (htmx)."""

    template_name = "messaging/contacts/list.html"
    partial_template_name = "messaging/contacts/_rows.html"

    def get_context_data(self, **kwargs):
        request, org = self.request, self.request.organization
        params = request.GET
        filter_error = None
        try:
            filters = contact_filters_from_params(params)
        except ApplicationError as exc:
            filter_error = exc
            filters = {"query": (params.get("q") or "")[:200]}
        # Custom field filters (cf.<key>) are read by the selector but the form offers none yet.
        filters.pop("custom", None)
        query = filters.get("query", "")
        contacts = contact_list(organization=org, **filters)
        page = dashboard.contact_page(
            contacts, after=params.get("after", ""), ranked=bool(query.strip())
        )
        kept = [(k, v) for k in FILTER_PARAMS for v in params.getlist(k) if v != ""]
        filters_query = urlencode(kept)
        next_url = None
        if page.next_after is not None:
            next_url = "?" + urlencode([*kept, ("after", page.next_after)])
        filtered = bool(kept)
        tags = list(scoped(Tag, org).order_by("name"))
        groups = list(scoped(ContactGroup, org).order_by("name"))
        custom_fields = _custom_fields(org)
        for contact in page.contacts:
            contact.formatted_phone = format_phone(contact.phone)
            contact.custom_cells = [
                (field.key, _cell(contact.custom_fields.get(field.key))) for field in custom_fields
            ]
        export_urls = {
            name: url + ("?" + filters_query if filters_query else "")
            for name in ("contacts-export", "contacts-export-xlsx")
            if (url := _optional_url(request, name))
        }
        return {
            **super().get_context_data(**kwargs),
            "contacts": page.contacts,
            "next_url": next_url,
            "is_later_page": bool(params.get("after")),
            "query": query,
            "filter_error": filter_error,
            "filtered": filtered,
            "filters_query": filters_query,
            "total_matching": contacts.count(),
            "has_any_contact": filtered or bool(page.contacts) or scoped(Contact, org).exists(),
            "tags": tags,
            "groups": groups,
            "selected_tags": [str(i) for i in filters.get("tag_ids") or []],
            "selected_groups": [str(i) for i in filters.get("group_ids") or []],
            "selected": {k: params.get(k, "") for k in ("favorite", "status", "opted_out")},
            "statuses": ContactStatus.choices,
            "custom_fields": custom_fields,
            "can_edit": _can_edit(request),
            "bulk_form_available": _template_exists(BULK_FORM_TEMPLATE),
            "import_url": _optional_url(request, "contacts-import"),
            "export_url": export_urls.get("contacts-export"),
            "export_xlsx_url": export_urls.get("contacts-export-xlsx"),
        }

    def render_to_response(self, context, **kwargs):
        if context["filter_error"] is not None and not self.request.headers.get("HX-Request"):
            # Said once, on the page; the rows show the unfiltered search meanwhile.
            messages.warning(
                self.request,
                _("Some filters were ignored: %(why)s")
                % {"why": _describe(context["filter_error"])},
            )
        return super().render_to_response(context, **kwargs)


def _cell(value) -> str:
    """A custom field value as the list shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    return str(value)


def _describe(exc: ApplicationError) -> str:
    details = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in exc.fields.items())
    return details or exc.message


# --- Creating a contact ----------------------------------------------------------------------------


class ContactCreateView(OrgViewMixin, View):
    template_name = "messaging/contacts/create.html"

    def get(self, request, org_slug):
        if not _can_edit(request):
            messages.error(request, _("Your role cannot add contacts."))
            return redirect("contacts", org_slug=org_slug)
        return self.render(ContactForm(custom_fields=_custom_fields(request.organization)))

    def render(self, form, status=200):
        return render(self.request, self.template_name, {"form": form}, status=status)

    def post(self, request, org_slug):
        form = ContactForm(request.POST, custom_fields=_custom_fields(request.organization))
        if form.is_valid():
            try:
                contact = services.contact_create(
                    organization=request.organization, data=form.service_data(), actor=request.user
                )
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("%(name)s was added.") % {"name": contact})
                return redirect("contact-detail", org_slug=org_slug, pk=contact.pk)
        return self.render(form, status=400)


# --- The contact page ------------------------------------------------------------------------------


def _contact_page(
    request, contact: Contact, *, form=None, identity_form=None, note_form=None, status=200
):
    org = request.organization
    contact = dashboard.with_collections(scoped(Contact, org)).get(pk=contact.pk)
    contact.formatted_phone = format_phone(contact.phone)
    custom_fields = _custom_fields(org)
    if form is None:
        form = ContactForm(initial=ContactForm.initial_for(contact), custom_fields=custom_fields)
    identities = list(scoped(ContactIdentity, org).filter(contact=contact).order_by("kind", "id"))
    for identity in identities:
        identity.formatted = (
            format_phone(identity.value) if identity.kind == "phone" else identity.value
        )
    custom_values = [
        (field, (contact.custom_fields or {}).get(field.key)) for field in custom_fields
    ]
    return render(
        request,
        "messaging/contacts/detail.html",
        {
            "contact": contact,
            "form": form,
            "identity_form": identity_form or IdentityForm(),
            "note_form": note_form or NoteForm(),
            "identities": identities,
            "notes": contact.notes.select_related("author")[:100],
            "activity": dashboard.contact_activity(organization=org, contact=contact),
            "custom_values": custom_values,
            "can_edit": _can_edit(request),
            "can_erase": role_at_least(request.role, Role.ADMIN),
        },
        status=status,
    )


class ContactDetailView(OrgViewMixin, View):
    model = Contact

    def get(self, request, org_slug, pk):
        return _contact_page(request, self.object)


class ContactActionView(OrgViewMixin, View):
    """Base of the contact page's POST actions: GET goes back to the page."""

    model = Contact

    def back(self) -> HttpResponseRedirect:
        return redirect(
            "contact-detail", org_slug=self.request.organization.slug, pk=self.object.pk
        )

    def get(self, request, org_slug, pk):
        return self.back()


class ContactEditView(ContactActionView):
    def post(self, request, org_slug, pk):
        form = ContactForm(request.POST, custom_fields=_custom_fields(request.organization))
        if form.is_valid():
            try:
                services.contact_update(
                    organization=request.organization,
                    contact=self.object,
                    data=form.service_data(),
                    actor=request.user,
                )
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Changes saved."))
                return self.back()
        # The service's transaction rolled back; show the page as stored, with this form's errors.
        return _contact_page(request, self.object, form=form, status=400)


class ContactFavoriteView(ContactActionView):
    def post(self, request, org_slug, pk):
        contact = services.contact_update(
            organization=request.organization,
            contact=self.object,
            data={"favorite": not self.object.favorite},
            actor=request.user,
        )
        messages.success(
            request, _("Added to favorites.") if contact.favorite else _("Removed from favorites.")
        )
        return self.back()


class ContactOptOutView(ContactActionView):
    def post(self, request, org_slug, pk):
        services.contact_opt_out(
            organization=request.organization, contact=self.object, source="dashboard"
        )
        messages.success(
            request, _("%(name)s is opted out: campaigns will skip them.") % {"name": self.object}
        )
        return self.back()


class ContactOptInView(ContactActionView):
    def post(self, request, org_slug, pk):
        services.contact_opt_in(organization=request.organization, contact=self.object)
        messages.success(request, _("%(name)s is opted in again.") % {"name": self.object})
        return self.back()


class ContactNoteView(ContactActionView):
    def post(self, request, org_slug, pk):
        form = NoteForm(request.POST)
        if form.is_valid():
            try:
                services.note_add(
                    organization=request.organization,
                    contact=self.object,
                    text=form.cleaned_data["text"],
                    author=request.user,
                )
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Note added."))
                return self.back()
        return _contact_page(request, self.object, note_form=form, status=400)


class ContactIdentityAddView(ContactActionView):
    def post(self, request, org_slug, pk):
        form = IdentityForm(request.POST)
        if form.is_valid():
            try:
                services.contact_update(
                    organization=request.organization,
                    contact=self.object,
                    data={"identities": [form.cleaned_data]},
                    actor=request.user,
                )
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Identity added."))
                return self.back()
        return _contact_page(request, self.object, identity_form=form, status=400)


class ContactIdentityRemoveView(ContactActionView):
    """The identity's id comes in the body (``identity_id``), found among this contact's own."""

    def post(self, request, org_slug, pk):
        raw = request.POST.get("identity_id", "")
        identity = None
        if raw.isascii() and raw.isdigit() and len(raw) < 19:
            identity = (
                scoped(ContactIdentity, request.organization)
                .filter(contact=self.object, pk=int(raw))
                .select_related("contact")
                .first()
            )
        if identity is None:
            messages.error(request, _("That identity is not on this contact."))
            return self.back()
        services.identity_remove(organization=request.organization, identity=identity)
        messages.success(request, _("Identity removed."))
        return self.back()


class ContactMergeView(ContactActionView):
    """GET: find the other contact (by search); POST ``other_id`` + ``confirm``: merge it here."""

    def get(self, request, org_slug, pk):
        if not _can_edit(request):
            return self.back()
        query = (request.GET.get("q") or "")[:200]
        candidates = []
        if query.strip():
            candidates = list(
                contact_search(organization=request.organization, query=query).exclude(
                    pk=self.object.pk
                )[:20]
            )
        return render(
            request,
            "messaging/contacts/merge.html",
            {"contact": self.object, "query": query, "candidates": candidates},
        )

    def post(self, request, org_slug, pk):
        raw = request.POST.get("other_id", "")
        other = None
        if raw.isascii() and raw.isdigit() and len(raw) < 19:
            other = scoped(Contact, request.organization).filter(pk=int(raw)).first()
        if other is None:
            messages.error(request, _("Choose the contact to merge into this one."))
            return redirect("contact-merge", org_slug=org_slug, pk=self.object.pk)
        if not request.POST.get("confirm"):
            messages.error(request, _("Tick the box to confirm the merge."))
            return redirect("contact-merge", org_slug=org_slug, pk=self.object.pk)
        label = str(other)
        try:
            services.contact_merge(
                organization=request.organization,
                survivor=self.object,
                other=other,
                actor=request.user,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, _("%(other)s was merged into this contact.") % {"other": label}
            )
        return self.back()


class ContactDeleteView(ContactActionView):
    def post(self, request, org_slug, pk):
        label = str(self.object)
        services.contact_delete(
            organization=request.organization, contact=self.object, actor=request.user
        )
        messages.success(request, _("%(name)s was deleted.") % {"name": label})
        return redirect("contacts", org_slug=org_slug)


class ContactEraseView(ContactActionView):
    """Forget this person (admins): type the contact's name to confirm."""

    write_role = Role.ADMIN

    def post(self, request, org_slug, pk):
        expected = str(self.object)
        typed = request.POST.get("confirm", "")
        if " ".join(typed.split()).casefold() != " ".join(expected.split()).casefold():
            messages.error(
                request, _("Type %(name)s exactly to erase this contact.") % {"name": expected}
            )
            return self.back()
        services.contact_erase(
            organization=request.organization, contact=self.object, actor=request.user
        )
        messages.success(
            request,
            _("The contact was erased. Only an anonymous entry in the audit log remains."),
        )
        return redirect("contacts", org_slug=org_slug)


# --- Groups and tags -----------------------------------------------------------------------------
# The two pages work alike: a list with a form to add one, and an edit and a delete per row. The
# concrete classes name the form, the service functions, the page and their words.


class CollectionListView(OrgViewMixin, View):
    template_name: str
    context_name: str  # "groups" / "tags"
    list_url: str
    form_class: type
    created_message: str  # with %(name)s

    def items(self, organization):
        raise NotImplementedError

    def create(self, organization, data):
        raise NotImplementedError

    def get(self, request, org_slug):
        return self.render(self.form_class())

    def render(self, form, status=200):
        request = self.request
        return render(
            request,
            self.template_name,
            {
                "form": form,
                self.context_name: self.items(request.organization),
                "can_edit": _can_edit(request),
            },
            status=status,
        )

    def post(self, request, org_slug):
        form = self.form_class(request.POST)
        if form.is_valid():
            try:
                item = self.create(request.organization, form.cleaned_data)
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _(self.created_message) % {"name": item.name})
                return redirect(self.list_url, org_slug=org_slug)
        return self.render(form, status=400)


class CollectionActionView(OrgViewMixin, View):
    """An edit or delete of one row; GET goes back to the list."""

    list_url: str

    def get(self, request, org_slug, pk):
        return redirect(self.list_url, org_slug=org_slug)


class CollectionEditView(CollectionActionView):
    form_class: type
    invalid_message: str
    saved_message: str

    def update(self, organization, obj, data) -> None:
        raise NotImplementedError

    def post(self, request, org_slug, pk):
        form = self.form_class(request.POST)
        if not form.is_valid():
            messages.error(request, _(self.invalid_message))
            return redirect(self.list_url, org_slug=org_slug)
        try:
            self.update(request.organization, self.object, form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _(self.saved_message))
        return redirect(self.list_url, org_slug=org_slug)


class CollectionDeleteView(CollectionActionView):
    deleted_message: str  # with %(name)s

    def delete(self, organization, obj) -> None:
        raise NotImplementedError

    def post(self, request, org_slug, pk):
        name = self.object.name
        self.delete(request.organization, self.object)
        messages.success(request, _(self.deleted_message) % {"name": name})
        return redirect(self.list_url, org_slug=org_slug)


class GroupListView(CollectionListView):
    template_name = "messaging/contacts/groups.html"
    context_name = "groups"
    list_url = "contact-groups"
    form_class = GroupForm
    created_message = gettext_noop("Group %(name)s created.")

    def items(self, organization):
        return dashboard.groups_with_counts(organization)

    def create(self, organization, data):
        return services.group_create(organization=organization, **data)


class GroupEditView(CollectionEditView):
    model = ContactGroup
    list_url = "contact-groups"
    form_class = GroupForm
    invalid_message = gettext_noop("A group needs a name.")
    saved_message = gettext_noop("Group saved.")

    def update(self, organization, obj, data) -> None:
        services.group_update(organization=organization, group=obj, **data)


class GroupDeleteView(CollectionDeleteView):
    model = ContactGroup
    list_url = "contact-groups"
    deleted_message = gettext_noop("Group %(name)s deleted; its contacts were kept.")

    def delete(self, organization, obj) -> None:
        services.group_delete(organization=organization, group=obj)


class TagListView(CollectionListView):
    template_name = "messaging/contacts/tags.html"
    context_name = "tags"
    list_url = "contact-tags"
    form_class = TagForm
    created_message = gettext_noop("Tag %(name)s created.")

    def items(self, organization):
        return dashboard.tags_with_counts(organization)

    def create(self, organization, data):
        return services.tag_create(organization=organization, **data)


class TagEditView(CollectionEditView):
    model = Tag
    list_url = "contact-tags"
    form_class = TagForm
    invalid_message = gettext_noop("A tag needs a name and a colour like #0f766e.")
    saved_message = gettext_noop("Tag saved.")

    def update(self, organization, obj, data) -> None:
        services.tag_update(organization=organization, tag=obj, **data)


class TagDeleteView(CollectionDeleteView):
    model = Tag
    list_url = "contact-tags"
    deleted_message = gettext_noop("Tag %(name)s deleted; its contacts were kept.")

    def delete(self, organization, obj) -> None:
        services.tag_delete(organization=organization, tag=obj)


# --- Custom fields (admins) ------------------------------------------------------------------------


class CustomFieldListView(OrgViewMixin, View):
    template_name = "messaging/settings/custom_fields.html"
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug):
        return self.render(CustomFieldForm())

    def render(self, form, status=200):
        return render(
            self.request,
            self.template_name,
            {"form": form, "fields": _custom_fields(self.request.organization)},
            status=status,
        )

    def post(self, request, org_slug):
        form = CustomFieldForm(request.POST)
        if form.is_valid():
            try:
                field = services.custom_field_define(
                    organization=request.organization, **form.cleaned_data
                )
            except ApplicationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, _("Field %(label)s added.") % {"label": field.label})
                return redirect("custom-fields", org_slug=org_slug)
        return self.render(form, status=400)


class CustomFieldActionView(OrgViewMixin, View):
    model = CustomField
    min_role = Role.ADMIN
    write_role = Role.ADMIN

    def get(self, request, org_slug, pk):
        return redirect("custom-fields", org_slug=org_slug)


class CustomFieldEditView(CustomFieldActionView):
    def post(self, request, org_slug, pk):
        form = CustomFieldEditForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("A field needs a label."))
            return redirect("custom-fields", org_slug=org_slug)
        choices = form.cleaned_data["choices"]
        if self.object.type == "choice" and not choices:
            messages.error(request, _("A choice field needs at least one choice."))
            return redirect("custom-fields", org_slug=org_slug)
        try:
            services.custom_field_update(
                organization=request.organization,
                field=self.object,
                label=form.cleaned_data["label"],
                choices=choices if self.object.type == "choice" else None,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Field saved."))
        return redirect("custom-fields", org_slug=org_slug)


class CustomFieldDeleteView(CustomFieldActionView):
    def post(self, request, org_slug, pk):
        label = self.object.label
        services.custom_field_delete(organization=request.organization, field=self.object)
        messages.success(
            request,
            _("Field %(label)s deleted, with its values on every contact.") % {"label": label},
        )
        return redirect("custom-fields", org_slug=org_slug)


c = "contacts/<int:pk>/"

urlpatterns = [
    path("contacts/", ContactListView.as_view(), name="contacts"),
    path("contacts/new/", ContactCreateView.as_view(), name="contact-create"),
    path(c, ContactDetailView.as_view(), name="contact-detail"),
    path(c + "edit/", ContactEditView.as_view(), name="contact-edit"),
    path(c + "favorite/", ContactFavoriteView.as_view(), name="contact-favorite"),
    path(c + "opt-out/", ContactOptOutView.as_view(), name="contact-opt-out"),
    path(c + "opt-in/", ContactOptInView.as_view(), name="contact-opt-in"),
    path(c + "notes/", ContactNoteView.as_view(), name="contact-notes"),
    path(c + "identities/", ContactIdentityAddView.as_view(), name="contact-identities"),
    path(
        c + "identities/remove/",
        ContactIdentityRemoveView.as_view(),
        name="contact-identity-remove",
    ),
    path(c + "merge/", ContactMergeView.as_view(), name="contact-merge"),
    path(c + "delete/", ContactDeleteView.as_view(), name="contact-delete"),
    path(c + "erase/", ContactEraseView.as_view(), name="contact-erase"),
    path("groups/", GroupListView.as_view(), name="contact-groups"),
    path("groups/<int:pk>/edit/", GroupEditView.as_view(), name="contact-group-edit"),
    path("groups/<int:pk>/delete/", GroupDeleteView.as_view(), name="contact-group-delete"),
    path("tags/", TagListView.as_view(), name="contact-tags"),
    path("tags/<int:pk>/edit/", TagEditView.as_view(), name="contact-tag-edit"),
    path("tags/<int:pk>/delete/", TagDeleteView.as_view(), name="contact-tag-delete"),
    path("settings/fields/", CustomFieldListView.as_view(), name="custom-fields"),
    path("settings/fields/<int:pk>/edit/", CustomFieldEditView.as_view(), name="custom-field-edit"),
    path(
        "settings/fields/<int:pk>/delete/",
        CustomFieldDeleteView.as_view(),
        name="custom-field-delete",
    ),
]
