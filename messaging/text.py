"""Text and phone normalization shared by the address book's writes and its search."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from crm.errors import ApplicationError

NON_DIGITS = re.compile(r"\D+")
NOT_PHONE_CHARACTERS = re.compile(r"[^0-9+\-(). /\s]")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

# A contact's search text: its folded terms in one column, each wrapped in the marker of its kind.
# Markers are control characters, which terms never hold (``search_term`` drops them), so a LIKE
# pattern can ask for a whole term (``\x04447957189696\x04``), a term's start (``\x01jos``), a
# phone's end (``9696\x04``) or any part of one, and never matches across two terms.
SEARCH_MARKS = {
    "name": "\x01",
    "alias": "\x02",
    "email": "\x03",
    "phone": "\x04",
    "identity": "\x05",
}
SEARCH_TERM_MAX = 200


class InvalidPhone(ApplicationError):
    code = "invalid_phone"


def fold(text: str) -> str:
    """Case- and accent-insensitive form: 'José ÁLVAREZ' → 'jose alvarez'. CJK is kept as is."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def search_term(text: str) -> str:
    """One term as search stores and looks for it: folded, no control characters, bounded."""
    if text.isascii() and text.isprintable():  # the import's hot path: folding is lowercasing
        return " ".join(text.lower().split())[:SEARCH_TERM_MAX]
    return fold(CONTROL_CHARACTERS.sub(" ", text))[:SEARCH_TERM_MAX]


def search_text(terms) -> str:
    """``(kind, raw value)`` pairs → the contact's search text (same terms, same text)."""
    wrapped = set()
    for kind, value in terms:
        term = search_term(value)
        if term:
            mark = SEARCH_MARKS[kind]
            wrapped.add(f"{mark}{term}{mark}")
    return "".join(sorted(wrapped))


def digits(text: str) -> str:
    return NON_DIGITS.sub("", text or "")


def normalize_phone(raw: str, *, default_country: str) -> str:
    """E.164 digits without '+' (``447957189696``), or ``InvalidPhone`` saying why.

    Accepts what people type: '+44 7957 189696', '07957 189696' (read in ``default_country``),
    '0044…', and digits that already start with a country code ('447957189696').
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("A phone number is empty.")
    if NOT_PHONE_CHARACTERS.search(text):
        raise InvalidPhone(f"“{raw}” has characters a phone number does not have.")
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates = [text]
    only_digits = digits(text)
    if not text.startswith("+") and len(only_digits) >= 8:
        candidates.append("+" + only_digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(
                candidate, None if candidate.startswith("+") else default_country
            )
        except phonenumbers.NumberParseException:
            continue
        # The cheap length check first: the same answer, and most numbers are possible.
        if phonenumbers.is_possible_number(number) or phonenumbers.is_valid_number(number):
            return f"{number.country_code}{number.national_number}"
    raise InvalidPhone(f"“{raw}” is not a phone number we can read (country {default_country}).")


def format_phone(e164_digits: str | None) -> str:
    if not e164_digits:
        return ""
    try:
        number = phonenumbers.parse("+" + e164_digits, None)
    except phonenumbers.NumberParseException:
        return "+" + e164_digits
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
