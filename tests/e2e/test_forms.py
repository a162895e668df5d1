"""The rendered-form check: every dashboard form, filled in Chromium as a person fills it.

The forms are discovered, not listed: every ``<form>`` a person can reach (visible, or inside a
<details> they can open) on every page the accessibility audit visits (tests/support/pages.py: as
the owner, and the public pages signed out), and every form a submission reveals (the merge form
after a search, "Opt in again" after "Opt out"). Each visible, enabled field is found by its
accessible role and name (tests/support/forms.py). A form that takes input is first sent as it
loads, nothing typed, then filled with plausible values where it was refused, as a person corrects
it; each time with its visible submit button, once per button.

It fails on what a person would notice: a field with no name, a 5xx, an answer that is not a
page, a refusal showing no error, an error by no field they can see and fill, an error naming a
field by its code name (as ``credentials.phone_number_id`` once did), and an answer that the input
is wrong (400) with no field marked. A form-level message is fine when it names no field.

Forms run in the order that keeps the others' objects: plain forms first, those whose button is
styled as dangerous after them, then the few that ``HINTS`` order last; the visitor's cookies are
cleared before each of their forms. A form no one can reach as its page loads, and no submission
reveals, is in ``NOT_FILLED`` with the e2e test that covers it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from accounts import services as account_services
from messaging.services import contacts as contact_services
from tests.support.browser import elsewhere, sign_in
from tests.support.cloud_api_server import CloudApiServer
from tests.support.form_answers import RAW_FIELD_NAME, SUBMIT_WITNESS, Outcome, submit_and_read
from tests.support.forms import Filler, FormSeen, Hint, blank_fields, fill_form, find_form, forms_on
from tests.support.pages import owner_pages, signed_out_pages
from tests.support.people import PASSWORD

pytestmark = pytest.mark.browser


def a_contact_to_erase(cast) -> str:
    contact = contact_services.contact_create(
        organization=cast.org_a, data={"name": "Acme Erasable"}
    )
    return f"/o/{cast.org_a.slug}/contacts/{contact.pk}/"


def an_organization_to_delete(cast) -> str:
    spare = account_services.organization_create(
        name="Acme Spare", owner=cast.owner, slug="acme-spare"
    )
    return f"/o/{spare.slug}/settings/"


# What a person would know that the labels do not say, by form ident (the URL name of its action,
# then #its id). Every other form is filled from its labels alone.
HINTS: dict[str, Hint] = {
    # Signing in needs an account that exists.
    "login#login-form": Hint(values={"Email": "owner@a.example", "Password": PASSWORD}),
    # A real provider, so its credential fields (shown when it is chosen) are filled and saved.
    # (Meta itself is the loopback Graph API of the ``meta`` fixture, which knows this number.)
    "sessions#new-session-form": Hint(
        values={
            "WhatsApp Cloud API (Meta)": True,
            "Phone number ID": "106540352242922",
            "WhatsApp Business Account ID": "102290129340398",
            "Access token": "EAAG-form-check-token",
        }
    ),
    # Words a person reads in the help text beside the field.
    "canned-replies#canned-reply-form": Hint(values={"Shortcut": "thanks"}),
    "custom-fields#custom-field-form": Hint(values={"Key": "shoe_size"}),
    "contact-identities#identity-form": Hint(values={"Value": "+447700900321"}),  # Kind: Phone
    # What to type is said in prose beside a visually hidden label; erasing and deleting run on
    # objects of their own, so the other forms keep theirs.
    "contact-erase#erase-form": Hint(
        values={"Contact name": "Acme Erasable"}, page=a_contact_to_erase
    ),
    "org-delete": Hint(
        values={"Organization address": "acme-spare"}, page=an_organization_to_delete
    ),
    # The owner becomes an admin: after everything else, before logging out.
    "org-transfer": Hint(order=8),
    "logout": Hint(order=9),
}

# Forms a person cannot reach on the page as it loads, why, and the e2e test that covers them.
NOT_FILLED: dict[str, tuple[str, str]] = {
    "inbox#composer “Send”": (
        "shows once a conversation is open, and a script sends it",
        "test_a_private_note_and_a_canned_reply_from_the_composer",
    ),
}


@pytest.fixture
def meta(settings):
    """The Cloud API at the network edge: a loopback Graph API knowing the hinted number."""
    server = CloudApiServer(access_token="EAAG-form-check-token", phone_number_id="106540352242922")
    server.start()
    settings.PARLEY_PROVIDER_URLS = {
        **settings.PARLEY_PROVIDER_URLS,
        "cloud_api": f"{server.url}/v21.0",
    }
    yield server
    server.stop()


DEFAULT_ORDER = {False: 0, True: 1}  # by whether the button is styled as dangerous


def order_of(seen: FormSeen) -> int:
    hint = HINTS.get(seen.ident)
    if hint is not None and hint.order is not None:
        return hint.order
    return DEFAULT_ORDER[seen.danger]


def test_every_form_explained_as_not_filled_is_covered_by_a_named_e2e_test():
    sources = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    missing = [test for _why, test in NOT_FILLED.values() if f"def {test}(" not in sources]
    assert missing == []


def test_every_form_works_when_filled_as_a_person_sees_it(
    browser, asgi_server, cast, password, meta, record_property
):
    # Given every page a visitor and an owner can open, with one object of each kind behind them
    started = time.monotonic()
    people = {"visitor": elsewhere(signed_out_pages, cast), "owner": elsewhere(owner_pages, cast)}
    run = FormRun(cast)
    for role, pages in people.items():
        context = browser.new_context(
            base_url=asgi_server.url, viewport={"width": 1280, "height": 900}
        )
        try:
            # When each form they can reach is found, filled by its labels and sent
            run.as_person(role, context, pages, password)
        finally:
            context.close()

    outcomes = run.outcomes
    seconds = time.monotonic() - started
    print(f"\n{len(outcomes)} form submissions in {seconds:.1f} s")
    print("\n".join(outcome.line() for outcome in outcomes))
    record_property("forms_submitted", len(outcomes))

    # Then each succeeded, or showed every error by a field the person can see and fill
    failed = [outcome.line() for outcome in outcomes if outcome.result == "failed"]
    assert len(outcomes) > 20, "the check found few forms: discovery is broken"
    assert failed == [], f"{len(failed)} of {len(outcomes)} forms failed:\n" + "\n".join(failed)
    # And every form no one could reach as its page loaded was reached later, or is explained
    unexplained = {
        key: path
        for key, path in run.unreached.items()
        if key not in run.known and key not in NOT_FILLED
    }
    assert unexplained == {}, "forms no one could reach, not explained in NOT_FILLED"


class FormRun:
    """The forms found so far, run once each (whoever finds one first), and their outcomes."""

    def __init__(self, cast) -> None:
        self.cast = cast
        self.filler = Filler()
        self.known: set[str] = set()
        self.unreached: dict[str, str] = {}  # form key -> the page it was on, unreachable
        self.outcomes: list[Outcome] = []

    def as_person(self, role: str, context, pages: list[tuple[str, int]], password: str) -> None:
        context.set_default_timeout(10_000)
        context.add_init_script(script=SUBMIT_WITNESS)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # a person confirms what they asked
        if role == "owner":
            sign_in(page, self.cast.owner, password)
        queue: list[FormSeen] = []
        for path, _status in pages:
            page.goto(path)
            self.discover(page, role, path, queue)
        fresh_at = None  # the page the last form landed on, as loaded
        while queue:
            queue.sort(key=order_of)  # stable: discovery order within each rank
            seen = queue.pop(0)
            if role == "visitor":
                context.clear_cookies()  # each of their forms, signed out
            for outcome in self.run_form(page, seen, fresh_at):
                self.outcomes.append(outcome)
                fresh_at = outcome.fresh_at
            if role == "owner" and fresh_at is not None:
                # what the answer revealed: the merge form after a search, "Opt in again", ...
                self.discover(page, role, fresh_at, queue)

    def discover(self, page, role: str, path: str, queue: list[FormSeen]) -> None:
        reachable, unreachable = forms_on(page, role, path)
        for seen in reachable:
            if seen.key not in self.known:
                self.known.add(seen.key)
                queue.append(seen)
        for key, where in unreachable:
            self.unreached.setdefault(key, where)

    def run_form(self, page, seen: FormSeen, fresh_at: str | None) -> list[Outcome]:
        """A form that takes input is sent blank first (as a person who presses the button
        straight away), then filled where it was refused, as that person corrects it; each time
        its fields are found by their labels and it is sent with its button."""
        hint = HINTS.get(seen.ident)
        path = elsewhere(hint.page, self.cast) if hint and hint.page else seen.page
        ready = path == fresh_at  # the page the last form landed on is used as it is
        outcomes: list[Outcome] = []
        for blank in (True, False) if seen.method == "post" else (False,):
            if not ready:
                response = page.goto(path)
                if response is None or response.status != 200:
                    failed = f"{path} answered {response and response.status}"
                    return [*outcomes, Outcome(seen, "failed", failed, blank=blank)]
            found = find_form(page, seen)
            if found is None:
                failed = f"the form is not on {page.url}"
                return [*outcomes, Outcome(seen, "failed", failed, blank=blank)]
            form, button, problems = found
            if blank and not problems and not blank_fields(form):
                ready = True  # nothing to leave blank: the filled run is the same
                continue
            more, fields = fill_form(page, form, hint, self.filler, blank=blank)
            problems += more
            if problems:
                outcomes.append(Outcome(seen, "failed", "; ".join(problems), problems, blank=blank))
                return outcomes
            try:
                outcome = submit_and_read(page, form, button, seen, fields=fields, blank=blank)
            except PlaywrightError as error:  # a timeout: nothing a person could see happened
                return [*outcomes, Outcome(seen, "failed", str(error).splitlines()[0], blank=blank)]
            outcomes.append(outcome)
            ready = outcome.result == "refused" or outcome.fresh_at == path
        return outcomes


def test_a_field_named_by_its_code_name_is_told_from_words():
    assert RAW_FIELD_NAME.findall("credentials.phone_number_id: This field is required.") == [
        "credentials.phone_number_id"
    ]
    assert RAW_FIELD_NAME.findall("phone_number_id is required") == ["phone_number_id"]
    assert not RAW_FIELD_NAME.findall(
        "Tag “acme-tag” saved for owner@a.example at https://acme.example/x_y."
    )
