"""The legal basis by kind of debtor (domain/legal.py), the charges it yields for public buyers
(domain/charges.py), and the long dates letters print (domain/long_dates.py)."""
from datetime import date

import pytest

from portal.domain import legal
from portal.domain.charges import ChargesError, late_charges
from portal.domain.long_dates import dates_after_noun, long_date

RATES = [(date(2024, 12, 18), 315), (date(2025, 6, 11), 215)]


# --- what each kind owes, and what a letter cites --------------------------------------------

def test_business_public_consumer_bases():
    business, public, consumer = (legal.basis(k) for k in ("business", "public", "consumer"))
    assert (business.margin_bp, business.indemnity_eur_minor, business.contractual_rate) == (1000, 4000, True)
    assert (public.margin_bp, public.indemnity_eur_minor, public.contractual_rate) == (800, 4000, False)
    assert public.rate_fixed_at_start and not business.rate_fixed_at_start
    assert (consumer.margin_bp, consumer.indemnity_eur_minor) == (None, 0)
    assert legal.articles("business") == ["L441-10", "D441-5"]
    assert legal.articles("public") == ["L2192-13", "R2192-31", "D2192-35"]
    assert legal.articles("consumer") == ["1231-6"]


def test_unknown_kind_or_language_is_an_error():
    with pytest.raises(ValueError):
        legal.basis("company")
    with pytest.raises(ValueError):
        legal.paragraph("company", "fr", formal_notice=True)
    with pytest.raises(ValueError):
        legal.paragraph("business", "de", formal_notice=True)


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("formal", [True, False])
def test_business_paragraph_cites_the_code_de_commerce(lang, formal):
    text = legal.paragraph("business", lang, formal_notice=formal)
    assert "L441-10" in text and "D441-5" in text
    assert "L2192" not in text and "1231-6" not in text
    assert ("dix points" if lang == "fr" else "ten percentage points") in text
    assert ("40 euros" if lang == "fr" else "€40") in text


@pytest.mark.parametrize("lang, rate", [("fr", "12,5\u202f% l'an"), ("en", "12.5% a year")])
def test_business_paragraph_states_a_contractual_rate_instead(lang, rate):
    text = legal.paragraph("business", lang, formal_notice=True, contractual_bp=1250)
    assert rate in text
    assert "dix points" not in text and "ten percentage points" not in text
    assert "D441-5" in text  # the indemnity is owed whatever the rate


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_public_paragraph_cites_the_code_de_la_commande_publique(lang):
    text = legal.paragraph("public", lang, formal_notice=True, contractual_bp=1250)
    for article in ("L2192-13", "R2192-31", "D2192-35"):
        assert article in text
    assert "L441-10" not in text and "D441-5" not in text and "1231-6" not in text
    assert ("huit points" if lang == "fr" else "eight percentage points") in text
    assert "12,5" not in text and "12.5" not in text  # a public buyer owes the regulatory rate only


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_consumer_paragraph_legal_interest_from_the_formal_notice_only(lang):
    text = legal.paragraph("consumer", lang, formal_notice=True, contractual_bp=1250)
    assert "1231-6" in text
    assert ("taux légal" if lang == "fr" else "statutory rate") in text
    assert ("mise en demeure" if lang == "fr" else "formal notice") in text
    for absent in ("L441", "D441", "L2192", "40", "€", "indemnit", "points"):
        assert absent not in text
    # Before a formal notice a consumer owes nothing of right: a reminder cites nothing.
    assert legal.paragraph("consumer", lang, formal_notice=False) == ""


def test_french_paragraphs_read_as_french():
    text = legal.paragraph("business", "fr", formal_notice=True)
    assert text.startswith("Conformément à l'article L441-10 du Code de commerce, toute somme non réglée")
    assert legal.paragraph("consumer", "fr", formal_notice=True) == (
        "Conformément à l'article 1231-6 du Code civil, la somme due porte intérêt au taux légal à compter "
        "de la présente mise en demeure.")


# --- charges for a public buyer (R2192-31, D2192-35) ------------------------------------------

def test_public_buyer_rate_is_fixed_at_the_half_year_interest_began():
    # Late from 1 June 2025 to 30 September 2025 (122 days): the rate in force on 1 January 2025
    # (3.15 %) + 8 points = 11.15 %, for the whole period, though July-September is another half-year.
    c = late_charges(1_000_000, "EUR", date(2025, 5, 31), date(2025, 9, 30), debtor_kind="public",
                     reference_rates=RATES)
    assert c.rate_bp_by_segment == ((date(2025, 6, 1), date(2025, 9, 30), 1115),)
    assert c.interest == round(1_000_000 * 1115 * 122 / (10_000 * 365))  # 37 268.49… -> 37 268
    assert c.interest == 37268
    assert c.indemnity == 4000
    # A business over the same days: split at 1 July, + 10 points.
    b = late_charges(1_000_000, "EUR", date(2025, 5, 31), date(2025, 9, 30), debtor_kind="business",
                     reference_rates=RATES)
    assert [s[2] for s in b.rate_bp_by_segment] == [1315, 1215]


def test_public_buyer_ignores_a_contractual_rate_and_gets_no_indemnity_in_another_currency():
    c = late_charges(100_000, "EUR", date(2025, 1, 31), date(2025, 3, 1), debtor_kind="public",
                     reference_rates=RATES, contractual_bp=2000)
    assert c.rate_bp_by_segment[0][2] == 315 + 800
    assert late_charges(100_000, "GBP", date(2025, 1, 31), date(2025, 3, 1), debtor_kind="public",
                        reference_rates=RATES).indemnity == 0


def test_consumer_owes_no_charges_and_unknown_kinds_are_refused():
    assert late_charges(100_000, "EUR", date(2025, 1, 31), date(2025, 9, 1), debtor_kind="consumer",
                        reference_rates=RATES).total == 0
    with pytest.raises(ChargesError):
        late_charges(100_000, "EUR", date(2025, 1, 31), date(2025, 9, 1), debtor_kind="state",
                     reference_rates=RATES)


# --- long dates ---------------------------------------------------------------------------------

def test_long_dates_in_each_language():
    assert long_date(date(2026, 12, 6), "fr") == "6 décembre 2026"
    assert long_date(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert long_date(date(2026, 12, 6), "en") == "6 December 2026"
    assert long_date(date(2026, 12, 1), "en") == "1 December 2026"


def test_dates_after_noun():
    days = [date(2026, 11, 12), date(2026, 11, 19), date(2026, 12, 1)]
    assert dates_after_noun(days[:1], "fr") == "du 12 novembre 2026"
    assert dates_after_noun(days[:2], "fr") == "des 12 et 19 novembre 2026"
    assert dates_after_noun(days, "fr") == "des 12, 19 novembre et 1er décembre 2026"
    assert dates_after_noun(days[:2], "en") == "of 12 and 19 November 2026"
    assert dates_after_noun(days, "en") == "of 12, 19 November and 1 December 2026"
    assert dates_after_noun([], "fr") == ""
