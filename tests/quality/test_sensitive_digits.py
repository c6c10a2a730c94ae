"""could_contain's digit test: substring searches for ASCII digits, the regex for other scripts' digits."""

from app.datasets.quality.sensitive import could_contain, find_sensitive


def test_text_without_digits_or_markers_is_skipped():
    assert not could_contain("Thanks for your order, it ships on Monday with tracking by mail.")


def test_an_ascii_digit_beside_a_key_word_is_looked_at():
    assert could_contain("my token is 1 of many")
    assert not could_contain("my token is one of many")


def test_digits_of_other_scripts_are_still_seen():
    arabic_indic = "رقم الهاتف ٠١٢٣٤٥٦٧٨٩ شكرا"  # \d matches these; no ASCII digit in the text
    assert not any(d in arabic_indic for d in "0123456789")
    assert could_contain(arabic_indic)
    assert could_contain("Preis: ３ Euro, token")  # a full-width digit beside a key word


def test_a_card_number_is_still_found_after_the_quick_look():
    text = "Card 4111 1111 1111 1111, thanks"
    assert could_contain(text)
    assert [f.kind for f in find_sensitive(text)] == ["card"]
