import pytest

from messaging.text import InvalidPhone, fold, format_phone, normalize_phone


@pytest.mark.parametrize(
    "raw,country,expected",
    [
        ("+44 7957 189696", "US", "447957189696"),
        ("07957 189696", "GB", "447957189696"),
        ("447957189696", "US", "447957189696"),
        ("0044 7957 189696", "HK", "447957189696"),
        ("9123 4567", "HK", "85291234567"),
        ("(415) 555-2671", "US", "14155552671"),
        ("+1 415-555-2671", "HK", "14155552671"),
        ("030 123456", "DE", "4930123456"),
        ("+852 9123-4567", "US", "85291234567"),
    ],
)
def test_it_normalizes_what_people_type_per_country(raw, country, expected):
    assert normalize_phone(raw, default_country=country) == expected


@pytest.mark.parametrize("raw", ["", "   ", "hello", "12", "+999 1234", "++44"])
def test_it_refuses_what_is_not_a_phone_number(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, default_country="GB")


def test_it_folds_case_and_accents_but_keeps_cjk():
    assert fold("  José   ÁLVAREZ ") == "jose alvarez"
    assert fold("陳大文") == "陳大文"
    assert fold("Ærøskøbing") == "ærøskøbing"


def test_it_formats_for_people():
    assert format_phone("447957189696") == "+44 7957 189696"
    assert format_phone(None) == ""
