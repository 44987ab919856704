"""SMS text (domain/sms.py): segments as Twilio counts them, the reminder within two, short codes."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.sms import (GSM7_BASIC, GSM7_EXTENSION, TEMPLATES, SmsTooLong, compose,
                               count, fits, gsm7_lookalike)

LINK = "https://relance.example.fr/s/7k2m9pqr"
AMOUNT = "1\u202f250,00\u00a0€"  # as Babel writes it in French: narrow and plain no-break spaces


def test_the_gsm_table_as_03_38_has_it():
    assert len(GSM7_BASIC) == 127 and len(GSM7_EXTENSION) == 10  # 128 less the escape; 9 + form feed
    for c in "éèùìòÇØøÅåÄÖÑÜ§¿äöñüàÉÆæß@£$¥":
        assert count(c).encoding == "GSM-7", c
    for c in "çêâôîûëïœ’\u00a0":
        assert count(c).encoding == "UCS-2", c


@pytest.mark.parametrize("text,encoding,units,segments", [
    ("", "GSM-7", 0, 0),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("é" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),          # extension characters: 2 septets each
    ("[" * 81, "GSM-7", 162, 2),
    ("a" * 152 + "€" * 77, "GSM-7", 306, 3),  # 306 septets, but a pair is never split: 3 segments
    ("ç" + "a" * 69, "UCS-2", 70, 1),      # one ç turns the whole message UCS-2
    ("ç" + "a" * 70, "UCS-2", 71, 2),
    ("ê" * 134, "UCS-2", 134, 2),
    ("ê" * 135, "UCS-2", 135, 3),
    ("😀" * 35, "UCS-2", 70, 1),           # beyond the BMP: 2 UTF-16 units
    ("a" * 66 + "😀" * 34, "UCS-2", 134, 3),  # a surrogate pair is never split either
])
def test_segments_are_counted_as_twilio_counts_them(text, encoding, units, segments):
    c = count(text)
    assert (c.encoding, c.units, c.segments, c.characters) == (encoding, units, segments, len(text))


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", ["courtesy", "reminder", "firm", "formal"])
def test_every_reminder_carries_the_amount_the_date_the_name_and_the_link_in_gsm7(kind, language):
    text = compose(kind, language, "Atelier Dupont", AMOUNT, "14/12/2026", LINK, invoice_ref="F-123", replies=True)
    assert text.startswith("Atelier Dupont") and "1 250,00 €" in text and "14/12/2026" in text
    assert LINK in text and "F-123" in text and "STOP" in text
    assert fits(text) and count(text).encoding == "GSM-7"  # the no-break spaces are gone


def test_the_french_reads_naturally():
    assert compose("reminder", "fr", "Atelier Dupont", AMOUNT, "14/12/2026", LINK, invoice_ref="F-123") == (
        "Atelier Dupont : votre facture F-123 de 1 250,00 € est échue depuis le 14/12/2026. "
        f"Pour la régler : {LINK}")
    assert compose("courtesy", "en", "Atelier Dupont", "€1,250.00", "12/14/2026", LINK) == (
        f"Atelier Dupont: your invoice for €1,250.00 is due on 12/14/2026. Pay it here: {LINK}")


def test_stop_only_when_replies_are_possible():
    assert "STOP" not in compose("firm", "fr", "Dupont", AMOUNT, "14/12/2026", LINK)
    assert compose("firm", "fr", "Dupont", AMOUNT, "14/12/2026", LINK, replies=True).endswith(
        "Répondez STOP pour ne plus recevoir de SMS.")
    assert compose("firm", "fr", "Dupont", AMOUNT, "14/12/2026", LINK, replies=True,
                   stop_number="36180").endswith("STOP au 36180")
    assert compose("firm", "en", "Dupont", AMOUNT, "14/12/2026", LINK, replies=True).endswith(
        "Reply STOP to opt out.")


def test_a_letter_outside_gsm7_in_the_name_is_written_as_gsm7_has_it_rather_than_halving_the_room():
    text = compose("formal", "fr", "Boulangerie Françoise", AMOUNT, "14/12/2026", LINK, replies=True)
    assert text.startswith("Boulangerie Francoise : ") and count(text).encoding == "GSM-7"
    assert gsm7_lookalike("Maître Cœur — Pâtisserie «Ôde»") == 'Maitre Coeur - Patisserie "Ode"'
    # a short UCS-2 message that fits keeps its letters
    short = compose("reminder", "en", "Françoise", "£12", "14/12", "https://r.fr/s/x")
    assert short.startswith("Françoise:") and count(short).encoding == "UCS-2" and fits(short)


def test_a_long_name_is_cut_with_an_ellipsis_never_the_amount_or_the_link():
    name = "Société Générale des Établissements Industriels et Commerciaux de la Région " * 4
    text = compose("formal", "fr", name, AMOUNT, "14/12/2026", LINK, invoice_ref="F-2026-000123", replies=True)
    assert fits(text) and len(text) <= 320 and count(text).segments == 2
    shown = text.split(" : ")[0]
    assert shown.endswith("...") and name.startswith(shown[:-3]) and len(shown) > 40
    assert "1 250,00 €" in text and "14/12/2026" in text and text.endswith(
        f"Réglez-la ici : {LINK} Répondez STOP pour ne plus recevoir de SMS.")


def test_in_a_message_that_is_ucs2_anyway_the_cut_name_ends_with_a_true_ellipsis():
    text = compose("reminder", "en", "Northwind Traders International " * 3, "₹1,250.00", "14/12/2026", LINK)
    assert count(text).encoding == "UCS-2" and fits(text)
    shown = text.split(": ")[0]
    assert shown.endswith("…") and shown.startswith("Northwind")


def test_what_cannot_fit_is_refused():
    with pytest.raises(SmsTooLong):
        compose("formal", "fr", "Dupont", AMOUNT, "14/12/2026", "https://r.fr/" + "x" * 300)
    with pytest.raises(ValueError):
        compose("shouting", "fr", "Dupont", AMOUNT, "14/12/2026", LINK)


def test_every_tone_exists_in_both_languages():
    assert set(TEMPLATES["fr"]) == set(TEMPLATES["en"]) == {"courtesy", "reminder", "firm", "formal"}


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=200), kind=st.sampled_from(["courtesy", "reminder", "firm", "formal"]),
       language=st.sampled_from(["fr", "en"]), replies=st.booleans())
def test_any_name_fits_or_is_refused_and_the_amount_and_link_always_stay(name, kind, language, replies):
    try:
        text = compose(kind, language, name, AMOUNT, "14/12/2026", LINK, invoice_ref="F-2026-0001", replies=replies)
    except SmsTooLong:
        return
    assert fits(text) and "1 250,00 €" in text and "14/12/2026" in text and LINK in text and "F-2026-0001" in text
