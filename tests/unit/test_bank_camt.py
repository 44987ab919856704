"""camt.053 and camt.054, .001.02 to .001.08, read from files written here from the ISO 20022
message definitions."""
from __future__ import annotations

import io
import tracemalloc
from datetime import date

import pytest
from bank_files import IBAN, Entry, Tx, camt, camt_entry, camt_head, camt_statement_head, camt_tail

from portal.gateways.bank import StatementError, read_statement


def lines(data: bytes, expected_format: str = "camt.053"):
    statement = read_statement(io.BytesIO(data))
    assert statement.format == expected_format
    return list(statement.lines)


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("kind", ["053", "054"])
def test_a_credit_and_a_debit_in_every_version(kind, version):
    entries = [
        Entry("1200.50", ref="BQ-0001", txs=[Tx(name="ACME SARL", iban="FR76 3000 4000 0312 3456 7890 143",
                                                 ustrd=("FACTURE F230866", "ET F230765"), e2e="NOTPROVIDED",
                                                 strd="RF18539007547034")]),
        Entry("15.00", direction="DBIT", ref="BQ-0002", info="FRAIS TENUE DE COMPTE",
              txs=[Tx(name="BANQUE POPULAIRE", iban="FR7610107001011234567890129")]),
    ]
    credit, debit = lines(camt(entries, kind, version), f"camt.{kind}")
    assert credit.account == IBAN
    assert (credit.amount, credit.currency, credit.booking_date, credit.value_date) == (
        120050, "EUR", date(2026, 12, 2), date(2026, 12, 2))
    assert credit.counterparty == "ACME SARL"
    assert credit.counterparty_account == "FR7630004000031234567890143"
    assert credit.remittance == "FACTURE F230866 ET F230765"
    assert credit.structured_reference == "RF18539007547034"
    assert credit.end_to_end_id == "NOTPROVIDED"
    assert (credit.bank_reference, credit.identity) == ("BQ-0001", "ref:BQ-0001")
    assert debit.amount == -1500
    # a debit's other party is the creditor
    assert debit.counterparty == "BANQUE POPULAIRE"
    assert debit.remittance == "FRAIS TENUE DE COMPTE"


@pytest.mark.parametrize("version", [2, 5, 8])
def test_only_booked_entries_are_read(version):
    entries = [Entry("10.00", ref="A", status="PDNG"), Entry("20.00", ref="B"),
               Entry("30.00", ref="C", status="INFO")]
    assert [line.bank_reference for line in lines(camt(entries, version=version))] == ["B"]


@pytest.mark.parametrize("version", [2, 4, 8])
def test_a_batch_booking_gives_one_line_per_transaction(version):
    batch = Entry("350.00", ref="LOT-7", txs=[
        Tx("100.00", ref="T-1", name="ALPHA", ustrd=("F1001",)),
        Tx("250.00", name="BETA", ustrd=("F1002",)),
    ])
    first, second = lines(camt([batch], version=version))
    assert (first.amount, first.counterparty, first.remittance) == (10000, "ALPHA", "F1001")
    assert (second.amount, second.counterparty, second.remittance) == (25000, "BETA", "F1002")
    # identity: the entry's reference plus the transaction's own, else its rank in the entry
    assert (first.identity, second.identity) == ("ref:LOT-7/T-1", "ref:LOT-7/2")


def test_a_batch_of_debits_keeps_each_sign():
    batch = Entry("80.00", direction="DBIT", ref="LOT-8",
                  txs=[Tx("50.00", name="FOURNISSEUR A"), Tx("30.00", name="FOURNISSEUR B")])
    assert [(line.amount, line.counterparty) for line in lines(camt([batch]))] == [
        (-5000, "FOURNISSEUR A"), (-3000, "FOURNISSEUR B")]


def test_booking_date_as_a_date_time_and_no_value_date():
    [line] = lines(camt([Entry("1.00", ref="X", booked_as="DtTm", valued=None)], version=6))
    assert (line.booking_date, line.value_date) == (date(2026, 12, 2), None)


def test_without_a_bank_reference_the_identity_is_a_hash():
    [line] = lines(camt([Entry("1.00", txs=[Tx(ustrd=("F1",))])]))
    assert line.bank_reference is None and line.identity.startswith("hash:")


def test_account_from_othr_id():
    data = camt([Entry("1.00", ref="X")]).replace(
        f"<IBAN>{IBAN}</IBAN>".encode(), b"<Othr><Id>123-456</Id></Othr>", 1)
    assert lines(data)[0].account == "123-456"


@pytest.mark.parametrize("amount", ["12,5x", "", "-", "1.234"])
def test_a_bad_amount_names_its_element(amount):
    data = camt([Entry("1.00", ref="A"), Entry("2.00", ref="B"), Entry(amount, ref="C")])
    with pytest.raises(StatementError) as caught:
        lines(data)
    assert caught.value.location == "Stmt[1]/Ntry[3]/Amt"
    assert str(caught.value).startswith("Stmt[1]/Ntry[3]/Amt: ")


def test_a_bad_batch_amount_names_the_transaction():
    data = camt([Entry("3.00", ref="A", txs=[Tx("1.00"), Tx("2.0.0")])], kind="054")
    with pytest.raises(StatementError, match=r"^Ntfctn\[1\]/Ntry\[1\]/NtryDtls/TxDtls\[2\]/Amt: not an amount"):
        lines(data, "camt.054")


def test_a_bad_booking_date():
    with pytest.raises(StatementError, match=r"Stmt\[1\]/Ntry\[1\]/BookgDt: not a date"):
        lines(camt([Entry("1.00", ref="A", booked="2026-13-02")]))


def test_a_bad_credit_debit_indicator():
    with pytest.raises(StatementError, match=r"Stmt\[1\]/Ntry\[1\]/CdtDbtInd"):
        lines(camt([Entry("1.00", ref="A", direction="CREDIT")]))


def test_truncated_xml_names_its_line():
    data = camt([Entry("1.00", ref="A"), Entry("2.00", ref="B")])
    with pytest.raises(StatementError, match=r"^line \d+: not well-formed XML"):
        lines(data[: len(data) - 60])


def test_entities_and_external_documents_are_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&b;</Document>')
    with pytest.raises(StatementError, match="DTD"):
        read_statement(io.BytesIO(bomb))
    xxe = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">&x;</Document>')
    with pytest.raises(StatementError, match="DTD"):
        read_statement(io.BytesIO(xxe))


def test_versions_outside_02_to_08_are_not_camt():
    data = camt([Entry("1.00", ref="A")], version=8).replace(b"camt.053.001.08", b"camt.053.001.13")
    with pytest.raises(StatementError, match="neither camt.053 nor camt.054"):
        read_statement(io.BytesIO(data))


def test_a_hundred_thousand_entries_stream_in_bounded_memory(tmp_path):
    """Entries are freed as they are read: Python's allocations (tracemalloc) and the process's
    resident memory (libxml2's tree is outside tracemalloc's sight) stay flat."""
    path = tmp_path / "year.xml"
    count = 100_000
    with path.open("w", encoding="utf-8") as out:
        out.write(camt_head() + camt_statement_head())
        for n in range(count):
            # one entry in ten with its transaction details, as in a real year of statements
            details = [Tx(name=f"CLIENT {n % 500}", ustrd=(f"FACTURE F{n:07d}",))] if n % 10 == 0 else []
            out.write(camt_entry(Entry(f"{n % 997 + 1}.{n % 100:02d}", ref=f"BQ{n:08d}", booked="2026-06-01",
                                       txs=details, info=f"VIR SEPA {n}"), 8))
        out.write("</Stmt>" + camt_tail())
    assert path.stat().st_size > 20_000_000
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            seen = 0
            total = 0
            rss_early = None
            for line in read_statement(stream).lines:
                seen += 1
                total += line.amount
                if seen == 5_000:
                    rss_early = _resident()
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == count
    assert total == sum((n % 997 + 1) * 100 + n % 100 for n in range(count))
    assert peak < 20_000_000, peak
    # the whole tree would take hundreds of megabytes
    assert _resident() - rss_early < 60_000_000


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_several_statements_and_accounts_in_one_file():
    other = "DE89370400440532013000"
    data = (camt_head() + camt_statement_head(number=1) + camt_entry(Entry("1.00", ref="A"), 8) + "</Stmt>"
            + camt_statement_head(iban=other, number=2) + camt_entry(Entry("2.00", ref="B"), 8)
            + camt_entry(Entry("x", ref="C"), 8) + "</Stmt>" + camt_tail()).encode()
    statement = read_statement(io.BytesIO(data)).lines
    assert [(line.account, line.amount) for line in (next(statement), next(statement))] == [(IBAN, 100), (other, 200)]
    with pytest.raises(StatementError, match=r"^Stmt\[2\]/Ntry\[2\]/Amt: not an amount"):
        next(statement)
