"""Payment references (ISO 11649 RF) and the EPC QR code's text (portal/domain/references.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import iso11649

from portal.domain.references import (
    DEBTOR, INVOICE, MAX_ID, _check_digits, debtor_reference, epc_qr_payload, format_reference,
    invoice_reference, parse_reference,
)

ids = st.integers(min_value=1, max_value=MAX_ID)
kinds = st.sampled_from([(DEBTOR, debtor_reference), (INVOICE, invoice_reference)])


@given(row_id=ids, kind=kinds)
def test_every_id_has_a_valid_reference_that_parses_back(row_id, kind):
    letter, make = kind
    ref = make(row_id)
    assert iso11649.is_valid(ref)
    assert ref.startswith("RF") and len(ref) <= 25 and ref == ref.upper() and " " not in ref
    assert parse_reference(ref) == (letter, row_id)
    # As a payer may type it: grouped, lower case, stray spaces.
    assert parse_reference(" " + format_reference(ref).lower() + " ") == (letter, row_id)


@given(a=ids, b=ids)
def test_references_differ_between_rows_and_kinds(a, b):
    assert debtor_reference(a) != invoice_reference(a)
    if a != b:
        assert debtor_reference(a) != debtor_reference(b)
        assert invoice_reference(a) != invoice_reference(b)


def test_known_vectors():
    # ISO 11649's own example, and our check-digit computation agrees with it.
    assert iso11649.is_valid("RF18 5390 0754 7034")
    assert _check_digits("539007547034") == "18"
    assert debtor_reference(1) == "RF56D1"
    assert invoice_reference(123456789) == "RF43I21I3V9"
    biggest_64_bit = invoice_reference(2 ** 63 - 1)
    assert biggest_64_bit.endswith("I1Y2P0IJ32E8E7") and len(biggest_64_bit) == 18
    assert format_reference("RF18539007547034") == "RF18 5390 0754 7034"
    assert format_reference("rf43 i21i3v9") == "RF43 I21I 3V9"


@given(row_id=ids, kind=kinds, wrong=st.integers(min_value=0, max_value=99))
def test_tampered_check_digits_are_refused(row_id, kind, wrong):
    ref = kind[1](row_id)
    tampered = ref[:2] + f"{wrong:02d}" + ref[4:]
    if tampered != ref:
        assert parse_reference(tampered) is None
        if 2 <= wrong <= 98:  # stdnum takes "00" for "97" and "01" for "98" (same residue); we do not
            assert not iso11649.is_valid(tampered)


@pytest.mark.parametrize("text", [
    "", "RF", "RF18", "RF18539007547034",  # valid ISO 11649, not one of ours (no kind letter)
    "RF00D1", "D1", "RF56D1X", "RF56 D1 !", None, 12,
    "RF" + _check_digits("D01") + "D01",  # leading zero: not how we spell an id
    "RF" + _check_digits("D0") + "D0",  # id 0
    "RF" + _check_digits("X1") + "X1",  # unknown kind
])
def test_parse_refuses_what_is_not_ours(text):
    assert parse_reference(text) is None


@pytest.mark.parametrize("bad", [0, -1, MAX_ID + 1, True, 1.0, "1"])
def test_no_reference_for_an_impossible_id(bad):
    with pytest.raises(ValueError):
        debtor_reference(bad)


# --- EPC QR code --------------------------------------------------------------------------------

IBAN = "FR76 3000 6000 0112 3456 7890 189"


def test_epc_payload_lines_for_a_worked_example():
    payload = epc_qr_payload("Relance Démo SAS", IBAN, "BNPAFRPP", 123456, "EUR", "RF43 I21I 3V9")
    assert payload.split("\n") == [
        "BCD", "002", "1", "SCT", "BNPAFRPP", "Relance Démo SAS", "FR7630006000011234567890189",
        "EUR1234.56", "", "RF43I21I3V9",
    ]
    assert payload == "BCD\n002\n1\nSCT\nBNPAFRPP\nRelance Démo SAS\nFR7630006000011234567890189\nEUR1234.56\n\nRF43I21I3V9"


def test_epc_payload_amount_bounds_and_optional_bic():
    ref = debtor_reference(7)
    lines = epc_qr_payload("A", IBAN, None, 1, "EUR", ref).split("\n")
    assert lines[4] == "" and lines[7] == "EUR0.01"
    assert epc_qr_payload("A", IBAN, "", 99_999_999_999, "EUR", ref).split("\n")[7] == "EUR999999999.99"
    assert epc_qr_payload("A", IBAN, "", 100, "EUR", ref).split("\n")[7] == "EUR1.00"
    for amount in (0, -5, 100_000_000_000, 12.5):
        with pytest.raises(ValueError):
            epc_qr_payload("A", IBAN, "", amount, "EUR", ref)


def test_epc_payload_name_is_cut_to_70():
    lines = epc_qr_payload("N" * 90, IBAN, "", 100, "EUR", debtor_reference(7)).split("\n")
    assert lines[5] == "N" * 70


@pytest.mark.parametrize("currency", ["USD", "GBP", "eur", "CHF"])
def test_epc_payload_is_for_euros_only(currency):
    with pytest.raises(ValueError):
        epc_qr_payload("A", IBAN, "", 100, currency, debtor_reference(7))


@pytest.mark.parametrize("iban, bic, ref", [
    ("FR76 3000 6000 0112 3456 7890 188", "", debtor_reference(7)),  # bad IBAN check
    (IBAN, "BNPA", debtor_reference(7)),  # BIC too short
    (IBAN, "", "RF00D7"),  # bad reference check
])
def test_epc_payload_refuses_bad_details(iban, bic, ref):
    with pytest.raises(ValueError):
        epc_qr_payload("A", iban, bic, 100, "EUR", ref)
