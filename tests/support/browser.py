"""Helpers of the browser tests: signing in, running code off Playwright's loop, and what they
check on the pages they visit (axe-core's accessibility rules, Content-Security-Policy violations).

axe-core is vendored under tests/support/vendor/ (never served by the app) and evaluated into the
page by Playwright, which CDP does outside the page's CSP; the CSP listener is an init script,
installed before any of the page's own scripts run.
"""

from __future__ import annotations

import threading
from pathlib import Path

from django.db import connections

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")

# Violations of these impacts fail the audit; "minor" and "moderate" ones are not (yet) counted.
SEVERE_IMPACTS = ("serious", "critical")

_RUN_AXE = """async (impacts) => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => ({
      rule: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((node) => node.target.join(" ")),
    }));
}"""

_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__parleyCspViolation(
    `${location.pathname}: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}` +
      (event.sourceFile ? ` (${event.sourceFile}:${event.lineNumber})` : "")
  );
});
"""


def severe_axe_violations(page) -> list[dict]:
    """axe-core's violations of serious or critical impact on the page as it is now:
    ``[{"rule", "impact", "help", "targets": [selector, ...]}]``."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(_RUN_AXE, list(SEVERE_IMPACTS))


def watch_csp(context) -> list[str]:
    """Collect every Content-Security-Policy violation of every page of ``context``.

    Two witnesses: the ``securitypolicyviolation`` event (what was blocked, where) and Chromium's
    console error ("Refused to ... because it violates the following Content Security Policy
    directive"). Returns the list the violations are appended to while the context lives.
    """
    seen: list[str] = []
    context.expose_function("__parleyCspViolation", lambda text: seen.append(text))
    context.add_init_script(script=_CSP_LISTENER)

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            seen.append(f"console: {message.text.split('. ')[0]}")  # what was refused, by what

    context.on("console", on_console)
    return seen


def sign_in(page, user, password: str) -> None:
    """Sign in through the login form, as a person does, and land on the organization's home."""
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/o/*/")


def elsewhere(function, *args, **kwargs):
    """``function`` run on another thread, as the worker would run it: Playwright's sync API keeps
    an event loop on the test's thread, where a live push cannot be sent."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
