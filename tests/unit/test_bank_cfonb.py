"""CFONB 120, from files written here after the CFONB brochure "Relevé de compte sur support
informatique" (July 2004): records 01, 04, 05, 07 of 120 characters."""
from __future__ import annotations

import io
import tracemalloc
from datetime import date

import pytest
from bank_files import balance, cfonb, complement, movement, signed

from portal.gateways.bank import StatementError, read_statement

ACCOUNT_ID = "30002005500000157841Z"


def lines(data: bytes):
    statement = read_statement(io.BytesIO(data))
    assert statement.format == "cfonb120"
    return list(statement.lines)


def statement_records():
    return [
        balance("01", "301126", 100000),
        movement("011226", 120050, "VIR SEPA ACME SARL", "0012345678901234", value_day="021226"),
        complement("011226", "NPY", "ACME SARL"),
        complement("011226", "LIB", "FACTURE F230866"),
        complement("011226", "RCN", "RF18539007547034"),
        complement("011226", "MMO", "EUR000000000120050"),
        movement("021226", -2590, "PRLV SEPA ORANGE"),
        complement("021226", "NBE", "ORANGE SA"),
        balance("07", "021226", 100000 + 120050 - 2590),
    ]


def test_signed_amounts_as_the_brochure_writes_them():
    assert signed(120050) == "0000000012005{"
    assert signed(-2591) == "0000000000259J"
    assert signed(19) == "0000000000001I"
    assert signed(-10) == "0000000000001}"


@pytest.mark.parametrize("newline", ["\r\n", "\n", None], ids=["crlf", "lf", "back-to-back"])
def test_movements_with_their_complements(newline):
    credit, debit = lines(cfonb(statement_records(), newline))
    assert credit.account == ACCOUNT_ID
    assert (credit.booking_date, credit.value_date) == (date(2026, 12, 1), date(2026, 12, 2))
    assert (credit.amount, credit.currency) == (120050, "EUR")
    assert credit.counterparty == "ACME SARL"
    assert credit.remittance == "VIR SEPA ACME SARL FACTURE F230866 RF18539007547034"
    assert credit.structured_reference == "RF18539007547034"
    assert credit.end_to_end_id == "RF18539007547034"
    assert (credit.bank_reference, credit.identity) == ("0012345678901234", "ref:0012345678901234")
    assert (debit.amount, debit.counterparty, debit.remittance) == (-2590, "ORANGE SA", "PRLV SEPA ORANGE")
    assert debit.bank_reference is None and debit.identity.startswith("hash:")


def test_decimals_from_position_20():
    records = [balance("01", "301126", 0, decimals=3), movement("011226", 12500, "VIR", decimals=3),
               balance("07", "011226", 12500, decimals=3)]
    assert [line.amount for line in lines(cfonb(records))] == [1250]
    records = [balance("01", "301126", 0, currency="JPY", decimals=0),
               movement("011226", 5000, "VIR", currency="JPY", decimals=0),
               balance("07", "011226", 5000, currency="JPY", decimals=0)]
    assert [(line.amount, line.currency) for line in lines(cfonb(records))] == [(5000, "JPY")]


def test_several_accounts_in_one_file():
    other = "00012345678"
    records = statement_records() + [
        balance("01", "301126", -5000, account=other), movement("011226", 7000, "REMISE CHEQUES", account=other),
        balance("07", "011226", 2000, account=other)]
    assert [line.account for line in lines(cfonb(records))] == [ACCOUNT_ID, ACCOUNT_ID, "3000200550" + other]


def test_balances_that_do_not_add_up_are_refused():
    records = statement_records()
    del records[6:8]  # a movement lost on the way
    with pytest.raises(StatementError, match=r"^line 7: account 30002005500000157841Z: the old balance \(1000.00\) "
                                             r"plus the movements \(1200.50\) do not make the new balance \(2174.60\)"):
        lines(cfonb(records))


def test_a_file_cut_before_its_new_balance_is_refused():
    with pytest.raises(StatementError, match="ends before the new balance"):
        lines(cfonb(statement_records()[:-1]))


def test_a_record_of_the_wrong_length_names_its_line():
    records = statement_records()
    records[3] = records[3] + "XX"
    with pytest.raises(StatementError, match=r"^line 4: a record of 122 characters"):
        lines(cfonb(records))


def test_a_truncated_file_without_line_breaks_names_its_record_as_a_line():
    data = cfonb(statement_records(), None)
    with pytest.raises(StatementError, match=r"^line 9: truncated: 70 characters instead of 120"):
        lines(data[:-50])


def test_a_bad_amount_names_its_record_as_a_line():
    records = statement_records()
    records[6] = records[6][:90] + "00000000002X9J" + records[6][104:]
    with pytest.raises(StatementError, match=r"^line 7: not a CFONB amount"):
        lines(cfonb(records, None))


@pytest.mark.parametrize("day", ["311326", "3211 6", "000000"])
def test_a_bad_date_names_its_line(day):
    records = statement_records()
    records[6] = movement(day, -2590, "PRLV SEPA ORANGE")
    with pytest.raises(StatementError, match=r"^line 7: not a date \(DDMMYY\)"):
        lines(cfonb(records))


def test_a_complement_without_its_movement():
    records = statement_records()
    records.insert(1, complement("011226", "LIB", "ORPHAN"))
    with pytest.raises(StatementError, match=r"^line 2: a complement \(05\) that follows no movement"):
        lines(cfonb(records))


def test_an_unknown_record_code():
    records = statement_records()
    records[2] = "03" + records[2][2:]
    with pytest.raises(StatementError, match=r"^line 3: unknown record code '03'"):
        lines(cfonb(records))


def test_trailing_blanks_trimmed_by_a_tool_on_the_way_are_accepted():
    records = [r.rstrip() for r in statement_records()]
    assert len(lines(cfonb(records))) == 2


def test_a_hundred_thousand_movements_stream_in_bounded_memory(tmp_path):
    path = tmp_path / "year.txt"
    count = 100_000
    total = 0
    with path.open("w", encoding="latin-1", newline="") as out:
        out.write(balance("01", "311225", 0) + "\r\n")
        for n in range(count):
            amount = (n % 997 + 1) * (1 if n % 3 else -1)
            total += amount
            out.write(movement(f"{n % 28 + 1:02d}0126", amount, f"VIR CLIENT {n % 500}", f"R{n:015d}") + "\r\n")
            out.write(complement(f"{n % 28 + 1:02d}0126", "LIB", f"FACTURE F{n:07d}") + "\r\n")
        out.write(balance("07", "310126", total) + "\r\n")
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            seen = sum(1 for _ in read_statement(stream).lines)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == count
    # Reading it whole would hold ~100 MB of lines; streaming stays at a few MB (20 MB: other
    # threads of the test process, e.g. the live servers of session fixtures, are traced too).
    assert peak < 20_000_000, peak


def test_one_account_in_two_currencies_balances_each():
    records = statement_records() + [
        balance("01", "301126", 0, currency="USD"), movement("011226", 999, "VIR USD", currency="USD"),
        balance("07", "011226", 999, currency="USD")]
    assert [(line.amount, line.currency) for line in lines(cfonb(records))][-1] == (999, "USD")


def test_complements_with_blank_currency_and_decimals_are_read():
    records = statement_records()
    records[2] = records[2][:16] + "    " + records[2][20:]
    assert lines(cfonb(records))[0].counterparty == "ACME SARL"


def test_a_payer_reference_not_provided_stays_out_of_the_remittance():
    records = statement_records()
    records[4] = complement("011226", "RCN", "NOTPROVIDED" + " " * 24 + "SUPP")
    credit = lines(cfonb(records))[0]
    assert credit.end_to_end_id == "NOTPROVIDED"
    assert credit.remittance == "VIR SEPA ACME SARL FACTURE F230866"
    assert credit.structured_reference is None
