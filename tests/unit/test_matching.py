"""Matching bank credits to open invoices (portal/domain/matching.py, remittance.py, amount_sets.py)."""
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.amount_sets import SUBSET_POOL, covering, exact_set
from portal.domain.matching import (
    AMOUNT_CANDIDATES, IGNORED, MATCHED, SUGGESTED, UNMATCHED, Book, Credit, DebtorName, OpenInvoice, is_payout, match,
)
from portal.domain.references import debtor_reference, format_reference, invoice_reference
from portal.domain.remittance import name_words, number_key, references, tokens

DAY = date(2026, 3, 2)

# Two debtors with invoice numbers that look alike, one in dispute, one in dollars.
DUPONT, MARTIN, DURAND = 10, 11, 12
INVOICES = [
    OpenInvoice(1, DUPONT, "F230866", 100_00, "EUR", date(2026, 1, 20)),
    OpenInvoice(2, DUPONT, "F230765", 50_00, "EUR", date(2026, 1, 5)),
    OpenInvoice(3, DUPONT, "F230999", 30_00, "EUR", date(2025, 12, 1), disputed=True),
    OpenInvoice(4, MARTIN, "FA-2023-0045", 70_00, "EUR", date(2026, 1, 2)),
    OpenInvoice(5, MARTIN, "F239765", 25_00, "EUR", date(2026, 2, 1)),
    OpenInvoice(6, MARTIN, "F237654", 12_50, "EUR", date(2026, 2, 3)),
    OpenInvoice(7, MARTIN, "F230866-US", 99_00, "USD", date(2026, 2, 3)),
    OpenInvoice(8, DURAND, "2023", 64_00, "EUR", date(2026, 2, 3)),
]
DEBTORS = [DebtorName(DUPONT, "Dupont & Fils SARL"), DebtorName(MARTIN, "Établissements Martin SAS"),
           DebtorName(DURAND, "Durand GmbH")]


def book(asked=None, invoices=INVOICES, debtors=DEBTORS):
    return Book(invoices, debtors, asked)


def credit(amount, remittance="", counterparty=None, currency="EUR", structured=None):
    return Credit(amount, currency, DAY, counterparty, remittance, structured)


def check(outcome, status, reason, debtor=None, invoices=None):
    assert (outcome.status, outcome.reason) == (status, reason), outcome
    assert 0 <= outcome.score <= 100 and outcome.explain
    if debtor is not None:
        assert outcome.debtor_id == debtor
    if invoices is not None:
        assert outcome.invoice_ids == tuple(invoices)


# --- references -------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", [
    lambda r: r, lambda r: r.lower(), format_reference, lambda r: format_reference(r).lower(),
    lambda r: f"VIR SEPA {r[:2]} {r[2:4]} {r[4:]} MERCI", lambda r: f"ref:{r}, facture",
])
def test_an_invoice_reference_matches_that_invoice_however_written(spelling):
    outcome = match(credit(100_00, spelling(invoice_reference(1))), book())
    check(outcome, MATCHED, "invoice_reference", DUPONT, [1])
    assert outcome.score == 100


def test_the_structured_reference_counts_as_much_as_the_text():
    check(match(credit(70_00, "", structured=invoice_reference(4)), book()), MATCHED, "invoice_reference", MARTIN, [4])


def test_a_reference_is_not_glued_to_the_next_word():
    ref = debtor_reference(DUPONT)
    assert references(tokens(f"{ref[:4]} {ref[4:]} F230866")) == [[("D", DUPONT)]]
    assert references(tokens("RF18 5390 0754 7034")) == []  # ISO's example: valid, but not ours
    assert references(tokens("RF")) == references(tokens("TRF12 D1")) == []


def test_a_chance_reading_glued_to_the_next_word_gives_way_to_the_reference_in_the_book():
    # "RF32D1EL" + "REF" and "RF33IF5C" + "VIREMENT" pass the check digits by chance (1 in 97).
    b = book(debtors=DEBTORS + [DebtorName(1821, "Cabo")],
             invoices=INVOICES + [OpenInvoice(19632, 1821, "X-1", 5_00, "EUR", DAY)])
    assert len(references(tokens("RF32 D1EL REF"))[0]) == 2
    check(match(credit(1_00, "PAIEMENT RF32 D1EL REF NOTPROVIDED"), b), MATCHED, "debtor_reference", 1821)
    check(match(credit(5_00, "PAIEMENT RF33IF5C VIREMENT VIR SEPA"), b), MATCHED, "invoice_reference", 1821, [19632])


def test_an_amount_below_the_quoted_invoices_is_allocated_oldest_first_above_leaves_credit():
    text = f"{invoice_reference(1)} {invoice_reference(2)}"
    below = match(credit(60_00, text), book())
    check(below, MATCHED, "invoice_reference", DUPONT, [2, 1])  # 2 is due first
    assert "oldest first" in below.explain
    assert "credit" in match(credit(500_00, text), book()).explain


def test_a_debtor_reference_pays_what_its_last_message_asked_when_the_amount_is_that():
    b = book(asked={DUPONT: (1,)})
    check(match(credit(100_00, debtor_reference(DUPONT)), b), MATCHED, "debtor_reference", DUPONT, [1])
    # Another amount: all its open invoices, oldest due first, the disputed one last.
    other = match(credit(120_00, debtor_reference(DUPONT)), b)
    check(other, MATCHED, "debtor_reference", DUPONT, [2, 1, 3])
    over = match(credit(500_00, debtor_reference(DUPONT)), b)
    assert over.invoice_ids == (2, 1, 3) and "320.00 EUR stays as credit" in over.explain


def test_a_debtor_reference_without_open_invoices_leaves_credit():
    b = book(debtors=DEBTORS + [DebtorName(99, "Sans Factures")])
    check(match(credit(10_00, debtor_reference(99)), b), MATCHED, "debtor_reference", 99, [])


def test_references_to_closed_foreign_or_two_debtors_are_not_matched():
    b = book()
    stale = match(credit(100_00, invoice_reference(12345)), b)
    assert stale.status != MATCHED and f"{invoice_reference(12345)}, of no open invoice" in stale.explain
    assert match(credit(99_00, invoice_reference(7)), b).status != MATCHED  # a USD invoice, a EUR credit
    both = match(credit(170_00, f"{invoice_reference(1)} {invoice_reference(4)}"), b)
    assert both.status != MATCHED and "2 different debtors" in both.explain


# --- invoice numbers --------------------------------------------------------------------------
@pytest.mark.parametrize("text, invoices", [
    ("FACT F230866", [1]), ("FACTURE 230866", [1]), ("fa-230866", [1]), ("F 230866", [1]),
    ("F230866 F230765", [2, 1]), ("Règlement factures F230765/F230866.", [2, 1]),
    ("factures F239765/F237654", [5, 6]), ("Fact. n° 2023-0045", [4]), ("FA 2023 0045", [4]),
    ("PAIEMENT FA20230045 ET F239765", [4, 5]),
])
def test_invoice_numbers_in_free_text_with_the_usual_noise(text, invoices):
    outcome = match(credit(1_00, text), book())
    check(outcome, MATCHED, "invoice_numbers", None, invoices)


def test_numbers_are_found_whole_only():
    assert match(credit(1_00, "F23 F2308 230866X"), book()).status == UNMATCHED
    # "2023 0045" is one number, not also Durand's invoice "2023" (the longest reading wins).
    check(match(credit(70_00, "FACT 2023 0045"), book()), MATCHED, "invoice_numbers", MARTIN, [4])
    check(match(credit(64_00, "facture 2023"), book()), MATCHED, "invoice_numbers", DURAND, [8])
    # Numbers under four characters are not looked for in free text: "12" is in every other label.
    short = book(invoices=INVOICES + [OpenInvoice(30, DURAND, "F12", 12_00, "EUR", DAY)])
    assert match(credit(1_00, "FACTURE 12"), short).status == UNMATCHED


def test_the_amount_of_the_named_invoices_sets_the_score():
    assert match(credit(150_00, "F230866 F230765"), book()).score > match(credit(1_00, "F230866"), book()).score


def test_numbers_of_two_debtors_are_not_a_match():
    check(match(credit(1_00, "F230866 F239765"), book()), UNMATCHED, "none")
    # The amount is what one of them owes on the invoices named: a suggestion at most.
    check(match(credit(25_00, "F230866 F239765"), book()), SUGGESTED, "invoice_numbers", MARTIN, [5])
    # One number, two debtors: "FA-230866" of Durand reads as Dupont's "F230866".
    twice = book(invoices=INVOICES + [OpenInvoice(40, DURAND, "FA-230866", 100_00, "EUR", DAY)])
    check(match(credit(100_00, "FACTURE 230866"), twice), UNMATCHED, "none")


def test_only_invoices_in_the_credits_currency_are_named():
    check(match(credit(99_00, "F230866-US", currency="USD"), book()), MATCHED, "invoice_numbers", MARTIN, [7])
    assert match(credit(99_00, "F230866US", currency="EUR"), book()).status != MATCHED


# --- suggestions ------------------------------------------------------------------------------
def test_one_invoice_of_the_amount_is_a_suggestion_the_name_raises_it():
    plain = match(credit(70_00, "virement"), book())
    check(plain, SUGGESTED, "exact_amount", MARTIN, [4])
    named = match(credit(70_00, "virement", "ETS MARTIN"), book())
    assert named.score > plain.score


def test_several_debtors_with_the_amount_the_name_decides():
    twins = INVOICES + [OpenInvoice(20, DURAND, "D-1", 70_00, "EUR", date(2026, 1, 1))]
    check(match(credit(70_00, "", "DURAND"), book(invoices=twins)), SUGGESTED, "exact_amount", DURAND, [20])
    check(match(credit(70_00, "", None), book(invoices=twins)), UNMATCHED, "none")
    check(match(credit(70_00, "", "Zorglub"), book(invoices=twins)), UNMATCHED, "none")


def test_a_round_amount_that_hundreds_of_invoices_have_is_narrowed_by_the_name_first():
    crowd = [OpenInvoice(1000 + d, 1000 + d, f"R-{d:05d}", 500_00, "EUR", DAY) for d in range(AMOUNT_CANDIDATES + 50)]
    names = DEBTORS + [DebtorName(1000 + d, f"Client {d:05d} Numero{d}") for d in range(AMOUNT_CANDIDATES + 50)]
    b = book(invoices=INVOICES + crowd, debtors=names)
    check(match(credit(500_00, "", "CLIENT NUMERO7"), b), SUGGESTED, "exact_amount", 1007, [1007])
    lost = match(credit(500_00, "", None), b)
    check(lost, UNMATCHED, "none")
    assert f"over {AMOUNT_CANDIDATES}" in lost.explain
    # The name finds a debtor without that amount: the name alone, then.
    check(match(credit(500_00, "", "Dupont et fils"), b), SUGGESTED, "payer_name", DUPONT)


def test_the_amount_of_a_debtors_whole_balance_is_a_suggestion():
    check(match(credit(180_00, "solde"), book()), SUGGESTED, "debtor_balance", DUPONT, [2, 1, 3])


def test_a_close_name_and_a_set_of_its_invoices_adding_up():
    check(match(credit(95_00, "", "MARTIN ETS"), book()), SUGGESTED, "invoice_set", MARTIN, [4, 5])
    other = match(credit(82_50, "", "Martin"), book())
    check(other, SUGGESTED, "invoice_set", MARTIN, [4, 6])
    assert other.score < match(credit(95_00, "", "Martin"), book()).score  # not simply the oldest


def test_a_close_name_alone_suggests_the_invoices_the_amount_reaches():
    outcome = match(credit(51_00, "", "SARL DUPONT ET FILS"), book())
    check(outcome, SUGGESTED, "payer_name", DUPONT, [2, 1])
    assert outcome.score < 60


def test_names_compare_without_legal_forms_accents_or_case():
    assert name_words("Établissements MARTIN S.A.S.") == name_words("martin sas") == ["martin"]
    assert name_words("DUPONT ET FILS SARL") == name_words("Dupont & Fils") == ["dupont", "fils"]


def test_nothing_to_go_by_is_unmatched():
    check(match(credit(12_34, "merci", "Inconnu"), book()), UNMATCHED, "none")
    check(match(credit(12_34, "merci", None, currency="GBP"), book()), UNMATCHED, "none")


# --- settling ---------------------------------------------------------------------------------
def test_settling_shows_later_credits_the_new_balance():
    b = book()
    b.settle(1, 40_00)
    check(match(credit(60_00, "virement"), b), SUGGESTED, "exact_amount", DUPONT, [1])
    check(match(credit(140_00, ""), b), SUGGESTED, "debtor_balance", DUPONT)  # was 180.00
    b.settle(1, 60_00)
    assert match(credit(60_00, "virement"), b).status == UNMATCHED
    assert match(credit(60_00, invoice_reference(1)), b).status != MATCHED  # paid: not open any more
    check(match(credit(50_00, debtor_reference(DUPONT)), b), MATCHED, "debtor_reference", DUPONT, [2, 3])


def test_tuples_in_any_order_make_the_same_book():
    rows = [(i.id, i.debtor_id, i.number, i.balance, i.currency, i.due_date, i.disputed) for i in INVOICES]
    for b in (Book(reversed(rows), DEBTORS), book()):
        check(match(credit(1_00, debtor_reference(DUPONT)), b), MATCHED, "debtor_reference", DUPONT, [2, 1, 3])


# --- payouts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("counterparty, text", [
    ("STRIPE", "STRIPE"), ("STRIPE PAYMENTS EUROPE LTD", "VIR SEPA"), (None, "Stripe po_1OaFDbEcg9tTZuTgNYmX0PKB"),
    (None, "VIREMENT PO_1OAFDBECG9TTZUTGNYMX0PKB"), ("GOCARDLESS LTD", "ACME-XYZ12"), ("GoCardless SAS", ""),
    (None, "PAYOUT PO0000XH9A3T4C"), (None, "GO CARDLESS PO000099999999"),
])
def test_stripe_and_gocardless_payouts_are_ignored(counterparty, text):
    assert is_payout(counterparty, text)
    check(match(credit(1234_56, text, counterparty), book()), IGNORED, "payout")


@pytest.mark.parametrize("counterparty, text", [
    ("STRIPES SARL", "F230866"), (None, "order po 12"), (None, "PO4500012345"), ("Striped Bass Ltd", ""),
])
def test_names_like_a_providers_are_not_payouts(counterparty, text):
    assert not is_payout(counterparty, text)


def test_our_reference_wins_over_a_providers_name():
    check(match(credit(100_00, invoice_reference(1), "STRIPE INC"), book()), MATCHED, "invoice_reference")


# --- bounded searches -------------------------------------------------------------------------
def test_sets_adding_up_are_searched_among_the_oldest_few():
    items = [(k, b) for k, b in enumerate([500, 300, 200, 700, 1100])]
    assert exact_set(items, 800) == ([0, 1], True)  # the oldest ones first
    assert exact_set(items, 1200) == ([0, 3], False)
    assert exact_set(items, 2300) == ([1, 2, 3, 4], False) or exact_set(items, 2300)[0] == [0, 3, 4]
    assert exact_set(items, 1) is None and covering(items, 650) == [0, 1]
    many = [(k, 10_000 + k) for k in range(5_000)]
    assert exact_set(many, many[-1][1] + many[-2][1]) is None  # beyond the pool: not looked at
    assert exact_set(many, 20_001) == ([0, 1], True) and SUBSET_POOL < 5_000


# --- properties -------------------------------------------------------------------------------
numbers = st.from_regex(r"(F|FA-|INV)?[0-9]{4,7}", fullmatch=True)
invoices = st.lists(st.tuples(st.integers(1, 5), numbers, st.integers(1, 10_000)), min_size=1, max_size=25)
noise = st.lists(st.sampled_from(["VIR", "SEPA", "facture", "merci", "F23", "2023", "RF", "12,50", "/", "n°"]))


def _book_of(rows):
    made = [OpenInvoice(i + 1, debtor, number, balance, "EUR", date(2026, 1, 1 + i % 28))
            for i, (debtor, number, balance) in enumerate(rows)]
    return made, Book(made, [DebtorName(d, f"Debtor {d}") for d in range(1, 6)])


@settings(max_examples=150, deadline=None)
@given(rows=invoices, pick=st.integers(0, 24), before=noise, after=noise, amount=st.integers(1, 10**6))
def test_a_credit_quoting_an_invoices_reference_matches_that_invoice(rows, pick, before, after, amount):
    made, b = _book_of(rows)
    target = made[pick % len(made)]
    ref = format_reference(invoice_reference(target.id))
    outcome = match(credit(amount, " ".join([*before, ref, *after])), b)
    assert (outcome.status, outcome.invoice_ids, outcome.debtor_id) == (MATCHED, (target.id,), target.debtor_id)


@settings(max_examples=200, deadline=None)
@given(rows=invoices, picks=st.lists(st.integers(0, 24), max_size=4), words=noise, amount=st.integers(1, 10**5))
def test_never_a_match_across_two_debtors(rows, picks, words, amount):
    made, b = _book_of(rows)
    quoted = [made[p % len(made)].number for p in picks]
    outcome = match(credit(amount, " ".join(quoted + words), "Debtor"), b)
    owners = {i.id: i.debtor_id for i in made}
    assert {owners[i] for i in outcome.invoice_ids} <= {outcome.debtor_id}
    assert 0 <= outcome.score <= 100 and outcome.explain
    if outcome.status == MATCHED:
        assert len({i.debtor_id for i in made if number_key(i.number) in
                    {number_key(q) for q in quoted}}) == 1
