"""Filling a page's forms as a person does, for the rendered-form check (tests/e2e/test_forms.py).

A person sees fields, not field names: each visible, enabled control of a form is found again
through its accessible role and name (Playwright's ``get_by_role(role, name=...)``), filled with a
plausible value for what it is, and the form is sent with its visible submit button. What comes
back is read as a person reads it: the status of what was answered, the messages shown, and
whether each error message sits by a field they can see and fill.

The module keeps no test data of its own: what to type where a generic value cannot succeed comes
from the caller's hints (``Hint``), keyed by the form's ident (``FormSeen.ident``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve

# The submit event, as the page's own scripts leave it: prevented (a script sends the form) or
# not (the browser navigates). Installed as an init script, so it runs under the page's CSP.
SUBMIT_WITNESS = """
window.addEventListener("submit", (event) => {
  console.debug("form-check:submit:" + (event.defaultPrevented ? "script" : "navigate"));
});
"""

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

# What the browser itself would refuse before sending (a form without novalidate).
_BROWSER_REFUSAL = """(form) => {
  if (form.noValidate || form.checkValidity()) return null;
  const bad = Array.from(form.elements).find((el) => el.willValidate && !el.validity.valid);
  return {
    field: bad.labels && bad.labels[0] ? bad.labels[0].innerText.trim() : bad.name,
    message: bad.validationMessage,
    shown: bad.checkVisibility() && !bad.disabled,
  };
}"""

# The messages on the page after the answer: errors (each with whether a visible, enabled,
# fillable control carries it) and the flashes and alerts a person reads.
_MESSAGES = """() => {
  const shown = (el) => el.checkVisibility();
  const controls = Array.from(document.querySelectorAll("input, select, textarea")).filter(
    (c) => c.type !== "hidden" && shown(c) && !c.disabled && !c.readOnly
  );
  const describes = (c, e) => (c.getAttribute("aria-describedby") || "").split(/\\s+/)
    .filter(Boolean).map((id) => document.getElementById(id))
    .some((d) => d && (d === e || d.contains(e) || e.contains(d)));
  const errors = [];
  for (const e of document.querySelectorAll(".errorlist, .form-error, .flash-error")) {
    if (!shown(e) || !e.innerText.trim()) continue;
    if (e.parentElement && e.parentElement.closest(".errorlist, .form-error")) continue;
    const formLevel = e.matches(".nonfield, .form-error, .flash-error");
    let field = null;
    if (!formLevel) {
      const box = e.closest(".field, tr") ||
        (["FORM", "FIELDSET", "BODY", "MAIN"].includes(e.parentElement.tagName) ? null : e.parentElement);
      const carrier = controls.find((c) => describes(c, e)) || controls.find((c) => box && box.contains(c));
      field = carrier ? (carrier.labels && carrier.labels[0] ? carrier.labels[0].innerText : carrier.name) : null;
    }
    errors.push({text: e.innerText.trim().replace(/\\s+/g, " "), formLevel, field});
  }
  const hiddenInvalid = Array.from(document.querySelectorAll("[aria-invalid=true]"))
    .filter((c) => !controls.includes(c)).map((c) => c.name || c.id);
  const notes = Array.from(document.querySelectorAll(".flash, [role=status], [role=alert]"))
    .filter((n) => shown(n) && n.innerText.trim() && !n.matches(".flash-error"))
    .map((n) => n.innerText.trim().replace(/\\s+/g, " "));
  return {errors, hiddenInvalid, notes};
}"""

# A name a person never reads: a snake_case or dotted field name (``credentials.phone_number_id``).
RAW_FIELD_NAME = re.compile(
    r"(?<![\w@/.-])[a-z][a-z0-9]*(?:[._][a-z0-9]+)*_[a-z0-9_.]*[a-z0-9](?![\w@/-])"
)
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


@dataclass
class Outcome:
    form: FormSeen
    result: str  # "succeeded", "refused" (errors, each by its field), "failed"
    detail: str
    problems: list[str] = field(default_factory=list)
    fresh_at: str | None = None  # the page it ended on, when that is a page freshly loaded by GET
    blank: bool = False  # sent as it loaded, nothing typed

    def line(self) -> str:
        how = "blank" if self.blank else "filled"
        return (
            f"{self.form.role:7} {self.form.page:55} {self.form.key:60} {how:6} "
            f"{self.result}: {self.detail}"
        )


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


def submit_and_read(
    page,
    form,
    button,
    seen: FormSeen,
    *,
    fields: int,
    blank: bool = False,
    timeout_ms: int = 10_000,
) -> Outcome:
    """Send the form with its button (or Enter) and read what a person would notice.

    The browser's own refusal (a ``required`` field left empty, in a form without novalidate) is
    fine for a blank form when it points at a field the person sees; a filled one must be sent.
    """
    if refusal := form.evaluate(_BROWSER_REFUSAL):
        said = f"the browser asks for “{refusal['field']}”: {refusal['message']}"
        if blank and refusal["shown"]:
            return Outcome(seen, "refused", said, blank=True)
        return Outcome(seen, "failed", said, [said], blank=blank)
    answers: list = []
    loads: list = []

    def on_response(response) -> None:
        if response.request.resource_type in ("document", "xhr", "fetch"):
            answers.append(response)

    def on_load(loaded) -> None:
        loads.append(loaded)

    page.on("response", on_response)
    page.on("load", on_load)
    try:
        with page.expect_console_message(
            lambda m: m.text.startswith("form-check:submit:"), timeout=timeout_ms
        ) as witness:
            if button is not None:
                button.click()
            else:
                form.locator("input:visible").first.press("Enter")
        if witness.value.text.endswith("navigate"):
            if not loads:
                page.wait_for_event("load", timeout=timeout_ms)
        else:
            settle_scripts(page, answers, timeout_ms)
    finally:
        page.remove_listener("response", on_response)
        page.remove_listener("load", on_load)
    outcome = read_outcome(page, seen, answers, fields)
    outcome.blank = blank
    return outcome


def settle_scripts(page, answers: list, timeout_ms: int) -> None:
    """A script sends the form: wait for its first answer, then for the page to draw it."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not answers and time.monotonic() < deadline:
        page.wait_for_event("response", timeout=timeout_ms)
    answers[0].finished()
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def read_outcome(page, seen: FormSeen, answers: list, fields: int) -> Outcome:
    problems: list[str] = []
    for response in answers:
        if response.status >= 500:
            problems.append(
                f"{response.request.method} {urlsplit(response.url).path} answered {response.status}"
            )
    documents = [
        r
        for r in answers
        if r.request.is_navigation_request()
        and r.frame == page.main_frame
        and not 300 <= r.status < 400
    ]
    final = documents[-1] if documents else None
    if final is not None and "text/html" not in (final.headers.get("content-type") or ""):
        problems.append(f"answered {final.status} {final.headers.get('content-type')}, not a page")
    shown = page.evaluate(_MESSAGES)
    errors = shown["errors"]
    for error in errors:
        if not error["formLevel"] and error["field"] is None:
            problems.append(
                f"the error “{error['text']}” is by no field the person can see and fill"
            )
        names = RAW_FIELD_NAME.findall(error["text"])
        if names:
            problems.append(
                f"the error “{error['text']}” names {', '.join(names)}: no field a person sees is called that"
            )
    problems.extend(f"the hidden field {name} is marked invalid" for name in shown["hiddenInvalid"])
    status = final.status if final is not None else None
    if status is not None and status >= 400 and not errors:
        problems.append(f"answered {status} and showed no error a person could act on")
    elif status in (400, 422) and fields and not any(e["field"] for e in errors):
        problems.append(
            f"answered {status} (the input is wrong) with no error by any field: "
            f"the person cannot tell which of the {fields} field(s) to correct"
        )
    where = urlsplit(page.url).path
    if problems:
        return Outcome(seen, "failed", "; ".join(problems), problems)
    if errors:
        said = "; ".join(
            f"{e['text']}" + (f" (by “{e['field']}”)" if e["field"] else " (form-level)")
            for e in errors
        )
        return Outcome(seen, "refused", f"{status or 'script'} at {where}: {said}")
    note = shown["notes"][0] if shown["notes"] else "no message"
    fresh = final is not None and final.request.method == "GET" and final.status == 200
    return Outcome(
        seen,
        "succeeded",
        f"{status or 'script'} at {where}: {note}"[:160],
        fresh_at=path_of(page.url) if fresh else None,
    )


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
