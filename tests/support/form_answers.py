"""Sending a form with its button and reading the answer as a person reads it, for the
rendered-form check (tests/e2e/test_forms.py): the status of what was answered, the messages
shown, and whether each error sits by a field the person can see and fill.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.support.forms import FormSeen

# The submit event, as the page's own scripts leave it: prevented (a script sends the form) or
# not (the browser navigates). Installed as an init script, so it runs under the page's CSP.
SUBMIT_WITNESS = """
window.addEventListener("submit", (event) => {
  console.debug("form-check:submit:" + (event.defaultPrevented ? "script" : "navigate"));
});
"""

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
