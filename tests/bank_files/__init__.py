"""Bank statement files written by the tests from the published layouts (ISO 20022 camt message
definitions, the CFONB "Relevé de compte sur support informatique" brochure, SWIFT MT940, OFX 1.0.2
and 2.1.1): small builders, so each test shows the few fields it is about."""
from __future__ import annotations

from dataclasses import dataclass, field

IBAN = "FR7630006000011234567890189"


# ---- camt.053 / camt.054 -------------------------------------------------------------------------

@dataclass
class Tx:
    """One TxDtls of an entry."""
    amount: str | None = None
    ref: str | None = None
    name: str | None = None
    iban: str | None = None
    ustrd: tuple[str, ...] = ()
    strd: str | None = None
    e2e: str | None = None
    info: str | None = None
    direction: str | None = None


@dataclass
class Entry:
    amount: str
    direction: str = "CRDT"
    booked: str = "2026-12-02"
    valued: str | None = "2026-12-02"
    ref: str | None = None
    status: str = "BOOK"
    info: str | None = None
    currency: str = "EUR"
    txs: list[Tx] = field(default_factory=list)
    booked_as: str = "Dt"


def _party(version: int, role: str, name: str) -> str:
    # .08 made the party a choice: Dbtr/Pty/Nm (earlier versions: Dbtr/Nm)
    inner = f"<Nm>{name}</Nm>"
    return f"<{role}><Pty>{inner}</Pty></{role}>" if version >= 8 else f"<{role}>{inner}</{role}>"


def camt_tx(tx: Tx, entry: Entry, version: int) -> str:
    direction = tx.direction or entry.direction
    parts = ["<TxDtls>"]
    if tx.ref or tx.e2e:
        parts.append("<Refs>" + (f"<AcctSvcrRef>{tx.ref}</AcctSvcrRef>" if tx.ref else "")
                     + (f"<EndToEndId>{tx.e2e}</EndToEndId>" if tx.e2e else "") + "</Refs>")
    if tx.amount is not None:
        amount = f'<Amt Ccy="{entry.currency}">{tx.amount}</Amt>'
        # TxDtls/Amt exists from .03 on; .02 has only AmtDtls/TxAmt/Amt
        parts.append(amount if version >= 4 else f"<AmtDtls><TxAmt>{amount}</TxAmt></AmtDtls>")
        if tx.direction:
            parts.append(f"<CdtDbtInd>{tx.direction}</CdtDbtInd>")
    if tx.name or tx.iban:
        party, acct = ("Dbtr", "DbtrAcct") if direction == "CRDT" else ("Cdtr", "CdtrAcct")
        parts.append("<RltdPties>" + (_party(version, party, tx.name) if tx.name else "")
                     + (f"<{acct}><Id><IBAN>{tx.iban}</IBAN></Id></{acct}>" if tx.iban else "") + "</RltdPties>")
    if tx.ustrd or tx.strd:
        parts.append("<RmtInf>" + "".join(f"<Ustrd>{u}</Ustrd>" for u in tx.ustrd)
                     + (f"<Strd><CdtrRefInf><Ref>{tx.strd}</Ref></CdtrRefInf></Strd>" if tx.strd else "")
                     + "</RmtInf>")
    if tx.info:
        parts.append(f"<AddtlTxInf>{tx.info}</AddtlTxInf>")
    parts.append("</TxDtls>")
    return "".join(parts)


def camt_entry(entry: Entry, version: int) -> str:
    status = f"<Sts><Cd>{entry.status}</Cd></Sts>" if version >= 8 else f"<Sts>{entry.status}</Sts>"
    booked = entry.booked if entry.booked_as == "Dt" else entry.booked + "T10:15:00+01:00"
    out = [f'<Ntry><Amt Ccy="{entry.currency}">{entry.amount}</Amt><CdtDbtInd>{entry.direction}</CdtDbtInd>',
           status, f"<BookgDt><{entry.booked_as}>{booked}</{entry.booked_as}></BookgDt>"]
    if entry.valued:
        out.append(f"<ValDt><Dt>{entry.valued}</Dt></ValDt>")
    if entry.ref:
        out.append(f"<AcctSvcrRef>{entry.ref}</AcctSvcrRef>")
    out.append("<BkTxCd/>")
    if entry.txs:
        out.append("<NtryDtls>" + "".join(camt_tx(t, entry, version) for t in entry.txs) + "</NtryDtls>")
    if entry.info:
        out.append(f"<AddtlNtryInf>{entry.info}</AddtlNtryInf>")
    out.append("</Ntry>")
    return "".join(out)


def camt_head(kind: str = "053", version: int = 8) -> str:
    root, _ = _CAMT[kind]
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version:02d}">'
            f"<{root}><GrpHdr><MsgId>MSG1</MsgId><CreDtTm>2026-12-05T08:00:00</CreDtTm></GrpHdr>")


def camt_statement_head(kind: str = "053", iban: str = IBAN, number: int = 1) -> str:
    _, container = _CAMT[kind]
    return (f"<{container}><Id>S{number}</Id><CreDtTm>2026-12-05T08:00:00</CreDtTm>"
            f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>")


def camt_tail(kind: str = "053") -> str:
    root, _ = _CAMT[kind]
    return f"</{root}></Document>"


def camt(entries: list[Entry], kind: str = "053", version: int = 8, iban: str = IBAN) -> bytes:
    _, container = _CAMT[kind]
    return (camt_head(kind, version) + camt_statement_head(kind, iban)
            + "".join(camt_entry(e, version) for e in entries) + f"</{container}>" + camt_tail(kind)).encode()


_CAMT = {"053": ("BkToCstmrStmt", "Stmt"), "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}


# ---- CFONB 120 -----------------------------------------------------------------------------------

BANK, BRANCH, ACCOUNT = "30002", "00550", "0000157841Z"


def signed(minor: int, width: int = 14) -> str:
    """The CFONB signed amount: the last digit becomes '{'/A-I (positive) or '}'/J-R (negative)."""
    digits = f"{abs(minor):0{width}d}"
    last = int(digits[-1])
    return digits[:-1] + ("{ABCDEFGHI" if minor >= 0 else "}JKLMNOPQR")[last]


def _header(code: str, currency: str, decimals: int, account: str, operation: str = "    ") -> str:
    return f"{code}{BANK}{operation}{BRANCH}{currency}{decimals} {account:<11}"


def balance(code: str, day: str, minor: int, currency: str = "EUR", decimals: int = 2,
            account: str = ACCOUNT) -> str:
    """01 old balance or 07 new balance."""
    record = _header(code, currency, decimals, account) + "  " + day + " " * 50 + signed(minor) + " " * 16
    assert len(record) == 120, len(record)
    return record


def movement(day: str, minor: int, label: str, reference: str = "", value_day: str | None = None,
             currency: str = "EUR", decimals: int = 2, account: str = ACCOUNT, entry: str = "0000001") -> str:
    """04 movement."""
    record = (_header("04", currency, decimals, account, "0005") + "05" + day + "  " + (value_day or day)
              + f"{label:<31.31}" + "  " + entry + "  " + signed(minor) + f"{reference:<16.16}")
    assert len(record) == 120, len(record)
    return record


def complement(day: str, qualifier: str, text: str, account: str = ACCOUNT, currency: str = "EUR") -> str:
    """05 complement of the preceding movement."""
    record = _header("05", currency, 2, account, "0005") + "05" + day + " " * 5 + qualifier + f"{text:<70.70}" + "  "
    assert len(record) == 120, len(record)
    return record


def cfonb(records: list[str], newline: str | None = "\r\n") -> bytes:
    joiner = newline if newline is not None else ""
    return (joiner.join(records) + (joiner if newline else "")).encode("latin-1")
