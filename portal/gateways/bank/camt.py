"""camt.053 (BkToCstmrStmt/Stmt) and camt.054 (BkToCstmrDbtCdtNtfctn/Ntfctn), ISO 20022 .001.02
to .001.08, streamed: each Ntry is read when it closes and then freed, so a file of any length
runs in constant memory. Element names are those of the ISO 20022 message definitions; they are
the same across these versions except the entry status, a code in .02-.07 (`<Sts>BOOK</Sts>`)
and a choice in .08 (`<Sts><Cd>BOOK</Cd></Sts>`), and the party, `Dbtr/Nm` before .08 and
`Dbtr/Pty/Nm` in .08.
"""
from __future__ import annotations

from datetime import date
from typing import BinaryIO, Iterator

from .base import Identities, StatementError, StatementLine, joined, minor_units

_CONTAINER = {"3": "Stmt", "4": "Ntfctn"}


def read(stream: BinaryIO, kind: str, version: int) -> Iterator[StatementLine]:
    """`kind` "3" or "4" (camt.053 or camt.054); `version` 2 to 8."""
    ns = f"{{urn:iso:std:iso:20022:tech:xsd:camt.05{kind}.001.{version:02d}}}"
    from lxml import etree  # here: lxml is loaded by the processes that read a statement, not all of them

    container = _CONTAINER[kind]
    events = etree.iterparse(
        stream, events=("start", "end"), tag=(ns + container, ns + "Acct", ns + "Ntry"),
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, remove_comments=True)
    identities = Identities()
    statement = entry = 0
    account: str | None = None
    q = _Path(ns)
    opening, acct, ntry = ns + container, ns + "Acct", ns + "Ntry"
    try:
        for event, element in events:
            tag = element.tag
            if event == "start":
                if tag == opening:
                    statement, entry, account = statement + 1, 0, None
                elif tag == ntry:
                    entry += 1
                continue
            if tag == ntry:
                where = f"{container}[{statement}]/Ntry[{entry}]"
                if account is None:
                    raise StatementError("an entry before its account (Acct)", where)
                yield from _entry(element, q, where, account, identities)
                _free(element)
            elif tag == acct and element.getparent().tag == opening:
                account = _account(element, q, f"{container}[{statement}]/Acct")
            elif tag == opening:
                _free(element)  # a year of daily statements in one file
    except etree.XMLSyntaxError as error:
        raise StatementError(f"not well-formed XML: {error.msg}", f"line {error.lineno}") from None
    if not statement:
        raise StatementError(f"no {container} in the file")


def _free(element) -> None:
    """Drop a read element and the siblings before it: memory stays flat however long the file."""
    element.clear()
    parent = element.getparent()
    while element.getprevious() is not None:
        del parent[0]


class _Path:
    """ElementPath in the file's namespace: q("NtryDtls/TxDtls") -> "{ns}NtryDtls/{ns}TxDtls"."""

    def __init__(self, ns: str):
        self.ns = ns
        self._made: dict[str, str] = {}

    def __call__(self, path: str) -> str:
        made = self._made.get(path)
        if made is None:
            made = self._made[path] = "/".join(self.ns + step for step in path.split("/"))
        return made


def _account(acct, q: _Path, where: str) -> str:
    iban = acct.findtext(q("Id/IBAN"))
    if iban and iban.strip():
        return "".join(iban.split()).upper()
    other = acct.findtext(q("Id/Othr/Id"))
    if not other or not other.strip():
        raise StatementError("no account identifier (Id/IBAN or Id/Othr/Id)", where)
    return other.strip()


def _entry(ntry, q: _Path, where: str, account: str, identities: Identities) -> Iterator[StatementLine]:
    status = ntry.find(q("Sts"))
    # .02-.07: <Sts>BOOK</Sts>; .08: <Sts><Cd>BOOK</Cd></Sts>
    code = None if status is None else status.findtext(q("Cd")) if len(status) else status.text
    if (code or "").strip() != "BOOK":
        return
    currency, amount = _amount(ntry, q, where)
    credit = _direction(ntry, q, where)
    booked = _date(ntry.find(q("BookgDt")), q, f"{where}/BookgDt")
    if booked is None:
        raise StatementError("a booked entry without a booking date", f"{where}/BookgDt")
    valued = _date(ntry.find(q("ValDt")), q, f"{where}/ValDt")
    reference = _text(ntry, q("AcctSvcrRef"))
    entry_info = _text(ntry, q("AddtlNtryInf"))
    details = ntry.findall(q("NtryDtls/TxDtls"))
    common = dict(account=account, booking_date=booked, value_date=valued)
    if len(details) <= 1:
        line = _details(details[0] if details else None, q, credit, entry_info)
        tx_ref = line.pop("tx_ref")
        ref = reference or tx_ref
        yield _made(identities, ref, amount if credit else -amount, currency, common, line)
        return
    for index, tx in enumerate(details, 1):
        here = f"{where}/NtryDtls/TxDtls[{index}]"
        amt = tx.find(q("Amt"))
        if amt is None:
            amt = tx.find(q("AmtDtls/TxAmt/Amt"))
            here_amt = f"{here}/AmtDtls/TxAmt/Amt"
        else:
            here_amt = f"{here}/Amt"
        if amt is None:
            raise StatementError("a batch entry's transaction without its amount", here)
        tx_currency = amt.get("Ccy") or currency
        value = minor_units(amt.text, tx_currency, here_amt)
        tx_credit = _direction(tx, q, here) if tx.find(q("CdtDbtInd")) is not None else credit
        line = _details(tx, q, tx_credit, entry_info)
        tx_ref = line.pop("tx_ref")
        ref = f"{reference}/{tx_ref or index}" if reference else tx_ref
        yield _made(identities, ref, value if tx_credit else -value, tx_currency, common, line)


def _made(identities: Identities, reference: str | None, amount: int, currency: str,
          common: dict, line: dict) -> StatementLine:
    return StatementLine(
        amount=amount, currency=currency, bank_reference=reference,
        identity=identities(reference, common["account"], common["booking_date"], amount, currency,
                            line["remittance"]),
        **common, **line)


def _details(tx, q: _Path, credit: bool, entry_info: str | None) -> dict:
    """What a TxDtls says (or nothing but the entry's own information when there is none)."""
    if tx is None:
        return dict(counterparty=None, counterparty_account=None, remittance=joined(entry_info),
                    structured_reference=None, end_to_end_id=None, tx_ref=None)
    party, acct = ("Dbtr", "DbtrAcct") if credit else ("Cdtr", "CdtrAcct")
    name = _text(tx, q(f"RltdPties/{party}/Nm")) or _text(tx, q(f"RltdPties/{party}/Pty/Nm"))
    iban = _text(tx, q(f"RltdPties/{acct}/Id/IBAN"))
    iban = "".join(iban.split()).upper() if iban else _text(tx, q(f"RltdPties/{acct}/Id/Othr/Id"))
    unstructured = [e.text for e in tx.findall(q("RmtInf/Ustrd"))]
    end_to_end = _text(tx, q("Refs/EndToEndId"))
    return dict(
        counterparty=name, counterparty_account=iban,
        remittance=joined(*unstructured, _text(tx, q("AddtlTxInf")), entry_info),
        structured_reference=_text(tx, q("RmtInf/Strd/CdtrRefInf/Ref")),
        end_to_end_id=end_to_end, tx_ref=_text(tx, q("Refs/AcctSvcrRef")))


def _text(element, path: str) -> str | None:
    value = element.findtext(path)
    return " ".join(value.split()) or None if value is not None else None


def _amount(ntry, q: _Path, where: str) -> tuple[str, int]:
    amt = ntry.find(q("Amt"))
    if amt is None:
        raise StatementError("an entry without its amount", f"{where}/Amt")
    currency = amt.get("Ccy")
    if not currency:
        raise StatementError("an amount without its currency (Ccy)", f"{where}/Amt")
    return currency, minor_units(amt.text, currency, f"{where}/Amt")


def _direction(element, q: _Path, where: str) -> bool:
    indicator = (element.findtext(q("CdtDbtInd")) or "").strip()
    if indicator not in ("CRDT", "DBIT"):
        raise StatementError(f"CdtDbtInd is {indicator!r}, not CRDT or DBIT", f"{where}/CdtDbtInd")
    return indicator == "CRDT"


def _date(holder, q: _Path, where: str) -> date | None:
    if holder is None:
        return None
    text = holder.findtext(q("Dt")) or holder.findtext(q("DtTm"))
    if text is None:
        raise StatementError("no Dt or DtTm", where)
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise StatementError(f"not a date: {text.strip()!r}", where) from None
