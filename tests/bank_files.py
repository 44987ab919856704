"""Bank statement files written for the tests from the published layouts, never copied: camt.053
(ISO 20022 BankToCustomerStatement, .001.02), one Stmt of one account, one TxDtls per Ntry."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

#: the creditor's account the statements are of
ACCOUNT = "FR7630006000011234567890189"


@dataclass
class Entry:
    amount: str  # decimal, positive; `debit` says the direction
    booked: date
    ref: str | None  # AcctSvcrRef; None: the line's identity is a hash
    name: str | None = None
    text: str = ""  # Ustrd
    rf: str | None = None  # CdtrRefInf/Ref
    debit: bool = False
    currency: str = "EUR"


def camt053(entries: list[Entry], statement_id: str = "STMT-1", account: str = ACCOUNT) -> bytes:
    ntries = "".join(_entry(e) for e in entries)
    first = min((e.booked for e in entries), default=date(2026, 11, 30)).isoformat()
    last = max((e.booked for e in entries), default=date(2026, 11, 30)).isoformat()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>{statement_id}</MsgId><CreDtTm>{last}T20:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>{statement_id}</Id>
      <ElctrncSeqNb>1</ElctrncSeqNb>
      <CreDtTm>{last}T20:00:00</CreDtTm>
      <FrToDt><FrDtTm>{first}T00:00:00</FrDtTm><ToDtTm>{last}T23:59:59</ToDtTm></FrToDt>
      <Acct><Id><IBAN>{account}</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{first}</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{last}</Dt></Dt></Bal>
{ntries}    </Stmt>
  </BkToCstmrStmt>
</Document>
""".encode()


def _entry(e: Entry) -> str:
    side = "DBIT" if e.debit else "CRDT"
    party = "Cdtr" if e.debit else "Dbtr"
    ref = f"<AcctSvcrRef>{escape(e.ref)}</AcctSvcrRef>" if e.ref else ""
    name = f"<RltdPties><{party}><Nm>{escape(e.name)}</Nm></{party}></RltdPties>" if e.name else ""
    rmt = (f"<Ustrd>{escape(e.text)}</Ustrd>" if e.text else "") + (
        f"<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>ISO</Issr></Tp>"
        f"<Ref>{e.rf}</Ref></CdtrRefInf></Strd>" if e.rf else "")
    family = "ICDT" if e.debit else "RCDT"
    return f"""      <Ntry>
        <Amt Ccy="{e.currency}">{e.amount}</Amt>
        <CdtDbtInd>{side}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>{e.booked.isoformat()}</Dt></BookgDt>
        <ValDt><Dt>{e.booked.isoformat()}</Dt></ValDt>
        {ref}
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
          <AmtDtls><TxAmt><Amt Ccy="{e.currency}">{e.amount}</Amt></TxAmt></AmtDtls>
          {name}
          {f"<RmtInf>{rmt}</RmtInf>" if rmt else ""}
        </TxDtls></NtryDtls>
      </Ntry>
"""
