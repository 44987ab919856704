"""Statements for the reconciliation tests, one transfer a line, written with the camt builders of
tests/bank_files (ISO 20022 layout): `camt053([Entry(amount, day, bank ref, payer, text, rf=…)])`."""
from __future__ import annotations

from datetime import date

from bank_files import IBAN as ACCOUNT  # noqa: F401  (the account the statements are of)
from bank_files import Entry as CamtEntry
from bank_files import Tx, camt


def Entry(amount: str, booked: date, ref: str | None, name: str | None = None, text: str = "",  # noqa: N802
          rf: str | None = None, debit: bool = False) -> CamtEntry:
    """One booked entry of one transfer: `ref` the bank's AcctSvcrRef, `text` the payer's
    unstructured remittance, `rf` a structured creditor reference."""
    return CamtEntry(amount, direction="DBIT" if debit else "CRDT", booked=booked.isoformat(),
                     valued=booked.isoformat(), ref=ref,
                     txs=[Tx(name=name, ustrd=(text,) if text else (), strd=rf, e2e="NOTPROVIDED")])


def camt053(entries: list[CamtEntry], statement_id: str = "S1") -> bytes:
    """A camt.053.001.08 statement of ACCOUNT with these entries (`statement_id`: for the reader of
    the test; the file's own ids stay fixed)."""
    return camt(entries, "053", 8)
