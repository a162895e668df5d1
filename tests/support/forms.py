"""Filling a page's forms as a person does, for the rendered-form check (tests/e2e/test_forms.py).

A person sees fields, not field names: each visible, enabled control of a form is found again
through its accessible role and name (Playwright's ``get_by_role(role, name=...)``), filled with a
plausible value for what it is.

The module keeps no test data of its own: what to type where a generic value cannot succeed comes
from the caller's hints (``Hint``), keyed by the form's ident (``FormSeen.ident``). Sending the
form and reading the answer are in tests/support/form_answers.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve

# Every form of the page: its ident parts, whether a person can reach it (visible, or inside a
# closed <details> they can open), and its submit buttons (marked to be found again, with the text
# they show: the accessible name is read from the accessibility tree when the button is pressed).
_FORMS = """() => {
  const shown = (el) => el.checkVisibility();
  const label = (b) => (b.getAttribute("aria-label") || b.innerText || b.value || "").trim().replace(/\\s+/g, " ");
  return Array.from(document.forms).map((form, index) => {
    const closed = [];
    for (let el = form.parentElement; el; el = el.parentElement)
      if (el.tagName === "DETAILS" && !el.open) closed.push(el);
    closed.forEach((d) => (d.open = true));
    const buttons = Array.from(form.elements).filter(
      (el) => (el.tagName === "BUTTON" || el.tagName === "INPUT") &&
        ["submit", "image"].includes(el.type)
    );
    buttons.forEach((b, j) => b.setAttribute("data-form-check-button", `${index}.${j}`));
    const visibleButtons = buttons.filter(shown).map((b) => ({
      mark: b.getAttribute("data-form-check-button"),
      text: label(b),
      danger: b.classList.contains("danger"),
    }));
    const controls = Array.from(form.elements).filter(
      (el) => !["hidden", "submit", "button", "image", "reset"].includes(el.type) &&
        el.tagName !== "FIELDSET" && el.tagName !== "OUTPUT"
    );
    const reachable = visibleButtons.length > 0 || (buttons.length === 0 && controls.some(shown));
    closed.forEach((d) => (d.open = false));
    return {
      inClosedDetails: closed.length > 0,
      firstButton: buttons.length ? label(buttons[0]) : "",
      index,
      // attributes, not properties: a control named "action" or "id" shadows the property
      id: form.getAttribute("id") || "",
      method: (form.getAttribute("method") || "get").toLowerCase(),
      action: new URL(form.getAttribute("action") || "", document.baseURI).href,
      reachable,
      buttons: visibleButtons,
    };
  });
}"""

# The form's own controls (also those outside it that name it with form=), marked to be found
# again, with what a person would go by when choosing a value.
_CONTROLS = """(form) => {
  const seen = Array.from(form.elements).filter(
    (el) => !["hidden", "submit", "button", "image", "reset"].includes(el.type) &&
      el.tagName !== "FIELDSET" && el.tagName !== "OUTPUT"
  );
  return seen.map((el) => {
    if (!el.hasAttribute("data-form-check"))
      el.setAttribute("data-form-check", String(window.__formCheckNext = (window.__formCheckNext || 0) + 1));
    return {
      mark: el.getAttribute("data-form-check"),
      inside: form.contains(el),
      tag: el.tagName.toLowerCase(),
      type: (el.type || "").toLowerCase(),
      name: el.name,
      value: el.value,
      checked: !!el.checked,
      shown: el.checkVisibility() && !el.disabled && !el.readOnly,
      inputmode: el.getAttribute("inputmode") || "",
      autocomplete: el.getAttribute("autocomplete") || "",
      min: el.getAttribute("min"),
      max: el.getAttribute("max"),
      maxlength: el.maxLength > 0 ? el.maxLength : null,
      options: el.tagName === "SELECT"
        ? Array.from(el.options).filter((o) => !o.disabled).map((o) => ({value: o.value, label: o.label}))
        : [],
    };
  });
}"""

SNAPSHOT_LINE = re.compile(r'^- (\w+)(?: "((?:[^"\\]|\\.)*)")?')

SMALL_CSV = b"name,phone,email\nAcme Imported Person,+447700900888,imported@acme.example\n"
PASSWORD = "Plausible-passw0rd-2718"


@dataclass
class Hint:
    """What a person would know that the page's labels do not tell a program.

    ``values``: {accessible name: value} — text to type, an option's label to choose, True to
    check a checkbox or radio. ``page``: a function ``(cast) -> path`` building the form's own
    objects when submitting it destroys what the other forms need. ``order``: later forms run
    later (default: 0 for forms, 1 for those whose button is styled as dangerous).
    """

    values: dict[str, str | bool] = field(default_factory=dict)
    page: Callable | None = None
    order: int | None = None


@dataclass
class FormSeen:
    role: str  # whose browser: "owner" or "visitor"
    page: str  # the path it was found on
    ident: str  # "<url name of its action>#<form id>", or the url name alone
    button: str  # the text its submit button shows ("" when Enter sends it)
    danger: bool
    method: str  # "post" or "get"

    @property
    def key(self) -> str:
        return f"{self.ident} “{self.button}”"


def url_name(url: str) -> str:
    try:
        return resolve(urlsplit(url).path).url_name or "?"
    except Resolver404:
        return "?"


def snapshot_role_and_name(locator) -> tuple[str, str]:
    """The control's role and accessible name, as the accessibility tree has them."""
    match = SNAPSHOT_LINE.match(locator.aria_snapshot().strip())
    if not match:
        return "", ""
    return match.group(1), (match.group(2) or "").replace('\\"', '"')


def forms_on(page, role: str, path: str) -> tuple[list[FormSeen], list[tuple[str, str]]]:
    """(forms a person can reach on ``path`` and submit, [(key, path)] of those they cannot).

    ``path`` is where a person opens the page again (the page may have redirected to a URL that
    only works once, as a password reset link does).
    """
    reachable, unreachable = [], []
    for form in page.evaluate(_FORMS):
        ident = url_name(form["action"]) + (f"#{form['id']}" if form["id"] else "")
        if not form["reachable"]:
            unreachable.append((f"{ident} “{form['firstButton']}”", path))
        for button in form["buttons"]:
            reachable.append(
                FormSeen(role, path, ident, button["text"], button["danger"], form["method"])
            )
        if form["reachable"] and not form["buttons"]:  # sent by pressing Enter in a field
            reachable.append(FormSeen(role, path, ident, "", False, form["method"]))
    return reachable, unreachable


def open_details_around(locator) -> None:
    """Open, by their summaries, the closed <details> a control sits in (outermost first)."""
    closed = locator.locator("xpath=ancestor::details[not(@open)]")
    while closed.count():
        closed.first.locator("xpath=./summary").click()


def find_form(page, seen: FormSeen):
    """``(form, submit button or None, problems)`` for ``seen`` on the page as it is now, or None.

    The button is found as a person finds it: by its role and accessible name.
    """
    for form in page.evaluate(_FORMS):
        ident = url_name(form["action"]) + (f"#{form['id']}" if form["id"] else "")
        if ident != seen.ident or not form["reachable"]:
            continue
        locator = page.locator("form").nth(form["index"])
        if not seen.button:
            return locator, None, []
        for button in form["buttons"]:
            if button["text"] != seen.button:
                continue
            marked = page.locator(f'[data-form-check-button="{button["mark"]}"]')
            if form["inClosedDetails"]:
                open_details_around(marked)
            role, name = snapshot_role_and_name(marked)
            if not name:
                return locator, None, [f"its button “{seen.button}” has no accessible name"]
            by_name = locator.get_by_role(role, name=name, exact=True)
            index = by_name.evaluate_all(
                "(els, mark) => els.findIndex((e) => e.getAttribute('data-form-check-button') === mark)",
                button["mark"],
            )
            if index < 0:
                return (
                    locator,
                    None,
                    [f"its button shows as {role} “{name}” but is not found by it"],
                )
            return locator, by_name.nth(index), []
    return None


class Filler:
    """Plausible values by what a field is, each one new (unique names, numbers, addresses)."""

    def __init__(self) -> None:
        self.serial = count(1)

    def text_for(self, control: dict, name: str) -> str:
        n = next(self.serial)
        kind, label = control["type"], name.lower()
        if m := re.search(r"type “(.+)” to confirm", name, re.IGNORECASE):
            value = m.group(1)  # the page says what to type
        elif kind == "email" or "email" in label or control["autocomplete"] == "email":
            value = f"form-check-{n}@acme.example"
        elif kind == "tel" or control["inputmode"] == "tel" or "phone" in label:
            value = f"+4477009{n:05d}"  # UK drama range: real-looking E.164, never a real person
        elif kind == "url" or "url" in label:
            value = "https://acme.example/"
        elif kind == "password":
            value = PASSWORD
        elif kind == "number":
            value = control["min"] or "1"
        elif kind == "date":
            value = "2026-03-14"
        elif kind == "datetime-local":
            value = "2026-03-14T09:30"
        elif kind == "time":
            value = "09:30"
        elif kind == "color":
            value = "#1d4ed8"
        elif kind == "search":
            value = "Acme"  # every object the sweep's factories build answers to it
        elif control["tag"] == "textarea":
            value = f"Written by the form check ({n})."
        else:
            value = f"Acme form {n}"
        return value[: control["maxlength"]] if control["maxlength"] else value


def fill_form(
    page, form, hint: Hint | None, filler: Filler, blank: bool = False
) -> tuple[list[str], int]:
    """Fill every field a person sees in ``form``, found by its role and accessible name.

    Choices first (a radio, a select or a checkbox may reveal more fields), then everything else;
    rounds repeat until no new field shows. Returns the problems a person would have (a field with
    no accessible name, two fields of one form with the same name, a field its name does not find)
    and how many fields it has. ``blank``: each field is found the same way, and left as it is.
    """
    problems: list[str] = []
    values = {plain(name): value for name, value in (hint.values if hint else {}).items()}
    handled: set[str] = set()
    names: dict[tuple[str, str], str] = {}
    radio_groups: dict[str, list] = {}
    for _round in range(4):
        controls = [c for c in form.evaluate(_CONTROLS) if c["shown"] and c["mark"] not in handled]
        if not controls:
            break
        for details in form.locator("details:not([open]) > summary").all():
            if details.is_visible():
                details.click()  # a person opens the form's own disclosures ("Filters")
        controls.sort(
            key=lambda c: c["tag"] == "select" or c["type"] in ("radio", "checkbox"), reverse=True
        )
        for control in controls:
            handled.add(control["mark"])
            marked = page.locator(f'[data-form-check="{control["mark"]}"]')
            role, name = snapshot_role_and_name(marked)
            what = f"a visible {control['tag']}{'[' + control['type'] + ']' if control['tag'] == 'input' else ''} (name={control['name'] or '—'})"
            if not name:
                problems.append(f"{what} has no accessible name: a person cannot tell what it is")
                continue
            if (role, name) in names and control["type"] != "radio":
                problems.append(
                    f"two fields are both named “{name}” ({names[(role, name)]}, {control['name']})"
                )
            names[(role, name)] = control["name"]
            # (a control outside the form that names it with form= is looked for in the page)
            by_name = (form if control["inside"] else page).get_by_role(role, name=name, exact=True)
            index = by_name.evaluate_all(
                "(els, mark) => els.findIndex((e) => e.getAttribute('data-form-check') === mark)",
                control["mark"],
            )
            if index < 0:
                problems.append(f"{what} shows as {role} “{name}” but is not found by that name")
                continue
            person = by_name.nth(index)
            if blank:
                continue
            wanted = values.pop(plain(name), None)
            if control["type"] == "radio":
                radio_groups.setdefault(control["name"], []).append((person, control, wanted))
            elif control["type"] == "checkbox":
                if wanted is not False:
                    person.check()
            elif control["type"] == "file":
                person.set_input_files(
                    files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": SMALL_CSV}]
                )
            elif control["tag"] == "select":
                choose_option(person, control, wanted)
            elif wanted is not None:
                person.fill(str(wanted))
            elif not control["value"]:
                person.fill(filler.text_for(control, name))
        for group in radio_groups.values():
            pick_radio(group)
        radio_groups.clear()
        if blank:
            break
    if not blank:
        problems.extend(
            f"the hint names “{name}”, which is not a field of the form" for name in values
        )
    return problems, len(handled)


def blank_fields(form) -> int:
    """How many fields a person would type into are empty as the form loads."""
    choices = ("radio", "checkbox", "select-one", "select-multiple")
    return sum(
        1
        for c in form.evaluate(_CONTROLS)
        if c["shown"] and c["type"] not in choices and not c["value"]
    )


def plain(name: str) -> str:
    """A label as a hint names it: Django's ``{{ form }}`` ends labels with a colon."""
    return name.strip().removesuffix(":")


def choose_option(person, control: dict, wanted) -> None:
    """The option named in the hint, the one already chosen if any, else the first real one."""
    if wanted is not None:
        person.select_option(label=str(wanted))
        return
    if control["value"]:
        return
    options = [o for o in control["options"] if o["value"]]
    if options:
        person.select_option(label=options[0]["label"])


def pick_radio(group: list) -> None:
    """A person picks the option the hint names, else keeps the checked one, else the first."""
    for person, _control, wanted in group:
        if wanted:
            person.check()
            return
    if not any(control["checked"] for _person, control, _wanted in group):
        group[0][0].check()
