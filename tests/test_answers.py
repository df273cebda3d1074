import pytest

from redraft.answers import extract_number, last_boxed, normalize_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the answer is \\boxed{42}.", "42"),
        ("\\boxed{\\frac{3}{4}}", "0.75"),
        ("first \\boxed{1} then \\boxed{ $1,200 }", "1200"),
        ("Natalia sold 72 clips.\n#### 72", "72"),
        ("It costs $18.50 in total.", "18.5"),
        ("The result is -7", "-7"),
        ("no digits here", None),
        ("\\boxed{x = 5}", "5"),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


def test_last_boxed_balances_nested_braces():
    assert last_boxed("\\boxed{\\frac{1}{\\sqrt{2}}} end") == "\\frac{1}{\\sqrt{2}}"
    assert last_boxed("\\boxed{unclosed") is None


def test_normalize_number_canonical_forms():
    assert normalize_number("3.0") == "3"
    assert normalize_number("1,000") == "1000"
    assert normalize_number("10/4") == "2.5"
    assert normalize_number("abc") is None
