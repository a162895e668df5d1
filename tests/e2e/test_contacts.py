"""The address book in a real browser: search as you type, a contact's tags, columns that stay."""

from __future__ import annotations

import pytest

from messaging.services import contacts as services

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def log_in(page, email: str, password: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url("**/o/acme/")


def seed(cast) -> None:
    services.custom_field_define(
        organization=cast.org_a, key="tier", label="Tier", type="choice", choices=["gold", "silver"]
    )
    people = [
        ("Reem Haddad", "+44 7957 189696", ["Sister", "Reemy"], ["family"]),
        ("Nick Lane", "+44 7950 724774", ["Nicky"], ["friends"]),
        ("José Álvarez", "+34 612 345 678", [], ["customer", "vip"]),
        ("陳大文", "+852 9123 4567", ["Chan Tai Man"], ["customer"]),
        ("Priya Nair", "+91 98765 43210", [], ["customer"]),
    ]
    for name, phone, aliases, tags in people:
        services.contact_create(
            organization=cast.org_a,
            data={
                "name": name,
                "phone": phone,
                "aliases": aliases,
                "tags": tags,
                "email": f"{name.split()[0].lower()}@example.com" if name.isascii() else "",
                "custom_fields": {"tier": "gold"},
            },
        )


def test_it_finds_a_contact_by_alias_as_you_type_and_tags_it(new_page, asgi_server, cast, password):
    seed(cast)
    page = new_page()
    log_in(page, cast.agent.email, password)
    page.click("#nav-contacts")
    page.wait_for_url("**/o/acme/contacts/")
    assert page.locator("[data-testid=contact-row]").count() == 5

    # When they type an alias in the search box, the rows change without a page load
    page.evaluate("window.__samePage = true")
    page.fill("#contact-search", "sister")
    page.wait_for_function("document.querySelectorAll('[data-testid=contact-row]').length === 1")
    assert "Reem Haddad" in page.inner_text("#contact-rows")
    assert page.evaluate("window.__samePage") is True
    assert "q=sister" in page.url  # the address follows, so a reload keeps the search

    # And the last digits of a phone number find the person too
    page.fill("#contact-search", "4774")
    page.wait_for_function(
        "document.querySelector('#contact-rows').innerText.includes('Nick Lane')"
    )
    assert page.locator("[data-testid=contact-row]").count() == 1
    assert page.evaluate("window.__samePage") is True

    # When they open the contact and add a tag
    page.click("#contact-rows >> text=Nick Lane")
    page.wait_for_selector("#contact-name")
    page.fill("#id_tags", "friends, vip")
    page.click("#save-contact")
    page.wait_for_selector("[data-testid=flash]")

    # Then the chip is there
    chips = page.locator("#contact-tags [data-testid=tag-chip]").all_inner_texts()
    assert sorted(chips) == ["friends", "vip"]


def test_it_remembers_the_columns_chosen_and_fits_a_phone(new_page, asgi_server, cast, password):
    seed(cast)
    page = new_page()
    log_in(page, cast.agent.email, password)
    page.goto("/o/acme/contacts/")
    email_header = page.locator("#contacts-table th[data-col=email]")
    tier_header = page.locator("#contacts-table th[data-col=cf-tier]")
    assert email_header.is_visible() and not tier_header.is_visible()

    page.click("#columns-menu summary")
    page.check("[data-col-toggle=cf-tier]")
    page.uncheck("[data-col-toggle=email]")
    assert tier_header.is_visible() and not email_header.is_visible()

    page.reload()
    assert page.locator("#contacts-table th[data-col=cf-tier]").is_visible()
    assert not page.locator("#contacts-table th[data-col=email]").is_visible()
    assert page.locator("#contact-rows td[data-col=cf-tier]").first.inner_text() == "gold"

    # Rows swapped in by a search follow the same choice
    page.fill("#contact-search", "priya")
    page.wait_for_function("document.querySelectorAll('[data-testid=contact-row]').length === 1")
    assert not page.locator("#contact-rows td[data-col=email]").first.is_visible()

    # Select all on this page ticks every row
    page.fill("#contact-search", "")
    page.wait_for_function("document.querySelectorAll('[data-testid=contact-row]').length === 5")
    page.wait_for_load_state("networkidle")  # clearing a search box fires "input" and "search"
    page.check("#select-all")
    assert page.locator("#contact-rows input[name=ids]:checked").count() == 5

    page.screenshot(path="/tmp/contacts_1280.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.reload()
    page.screenshot(path="/tmp/contacts_390.png", full_page=True)
    # The page itself never scrolls sideways on a phone (the table scrolls inside its card)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.click("#contact-rows >> text=Reem Haddad")
    page.wait_for_selector("#contact-name")
    page.screenshot(path="/tmp/contacts_detail_390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.set_viewport_size({"width": 1280, "height": 800})
    page.screenshot(path="/tmp/contacts_detail_1280.png", full_page=True)
