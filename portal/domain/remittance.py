"""Reading a bank line's free text for matching (portal/domain/matching.py): our RF references,
invoice numbers, payer names and provider payouts. Pure Python.

Text is folded once (accents dropped, upper case) and cut into tokens, the runs of ASCII letters
and digits: "Fact. n° 2023-0045" is FACT N 2023 0045. Both the creditor's invoice numbers and the
payer's words go through the same `number_key`, so "FA-230866", "F 230866" and "230866" meet.
"""
from __future__ import annotations

import re
import unicodedata

from portal.domain.references import parse_reference

_TOKEN = re.compile(r"[A-Z0-9]+")

#: words a payer puts before an invoice number; dropped from the front of a number's key when
#: digits follow, so the creditor's prefix and the payer's need not agree
NUMBER_PREFIXES = ("FACTURES", "FACTURE", "FACTS", "FACT", "FACS", "FAC", "FA", "F", "INVOICES",
                   "INVOICE", "INV", "NUMERO", "NUM", "NO", "N", "REF")
#: a key shorter than this is not looked for in free text: "12" is in every other bank label
MIN_NUMBER_KEY = 4
#: tokens joined into one number at most ("2023 0045", "F 23 08 66")
MAX_NUMBER_TOKENS = 3

#: legal forms and filler words left out of names before comparing them
NAME_NOISE = frozenset("""
    sa sas sasu sarl eurl sci snc scp selarl sca scop gie ei eirl earl gaec
    gmbh ag kg ug ltd limited plc llp llc inc corp co bv nv srl spa sl sprl bvba ab oy as
    ste societe ets etablissements cie compagnie groupe group et and the of de du des la le les
    m mme mr mrs ms mlle monsieur madame vir virement sepa recu emis from
""".split())

# Payouts. Stripe's default payout statement descriptor is "STRIPE" (the account may set its own;
# the bank may show "STRIPE PAYMENTS EUROPE LTD"); its payout ids are "po_" and 24 letters and
# digits. GoCardless payouts arrive from "GOCARDLESS LTD" (or "GOCARDLESS SAS") with the payout's
# reference; its payout ids are "PO" followed by 12 characters, the first ones zeros
# ("PO000099999999", "PO0000XH9A3T4C").
_PAYOUT_NAME = re.compile(r"\b(STRIPE|GOCARDLESS|GO CARDLESS)\b")
_STRIPE_PAYOUT_ID = re.compile(r"\bpo_[0-9A-Za-z]{14,}\b", re.IGNORECASE)
_GOCARDLESS_PAYOUT_ID = re.compile(r"\bPO000[0-9A-Z]{9}\b")


def fold(text: str | None) -> str:
    """Upper case, accents dropped, anything else non-ASCII gone."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii").upper()


def tokens(text: str | None) -> list[str]:
    return _TOKEN.findall(fold(text))


def number_key(number: str) -> str:
    """The key an invoice number is found by: letters and digits only, upper case, without one of
    the usual prefixes when digits follow it ("FA-2023/0045" -> "20230045")."""
    key = "".join(tokens(number))
    for prefix in NUMBER_PREFIXES:
        if key.startswith(prefix) and key[len(prefix):len(prefix) + 1].isdigit():
            return key[len(prefix):]
    return key


def number_candidates(words: list[str], find) -> list:
    """What `find(key)` (the invoices of a number key, or nothing) gives for the invoice numbers
    named in `words`, in order of appearance. At each word the longest run of up to
    MAX_NUMBER_TOKENS words forming a known key wins and its words are used up, so "2023 0045"
    never also counts as an invoice "2023". A key is only ever compared whole: "F23" does not
    find "F230866"."""
    found: list = []
    i, n = 0, len(words)
    while i < n:
        for width in range(min(MAX_NUMBER_TOKENS, n - i), 0, -1):
            key = number_key("".join(words[i:i + width]))
            invoices = find(key) if len(key) >= MIN_NUMBER_KEY else None
            if invoices:
                if invoices not in found:
                    found.append(invoices)
                i += width
                break
        else:
            i += 1
    return found


def references(words: list[str]) -> list[list[tuple[str, int]]]:
    """Our RF references among the words: for each word starting one, its valid readings as
    (kind, id), longest first (the caller keeps the first that names a row it knows).

    A reference may be split by spaces as it is printed ("RF18 5390 0754 7034": groups of four)
    or as a payer types it ("RF 18 D1", "RF18 D1"); words are joined only while that grouping
    holds ("RF18 D1 F230866" reads RF18D1 alone). A glued reading ("RF18D1AB" + "VIREMENT") passes
    the check digits once in 97: hence every reading, for the caller to try against the book."""
    found: list[list[tuple[str, int]]] = []
    for i, word in enumerate(words):
        if not word.startswith("RF"):
            continue
        joined, readings = word, []
        j = i + 1
        while True:
            parsed = parse_reference(joined) if len(joined) >= 6 else None
            if parsed:
                readings.insert(0, parsed)
            if j >= len(words) or len(joined) > 25 or not (
                    len(joined) % 4 == 0 or joined == "RF" or (len(joined) == 3 and joined[2].isdigit())):
                break
            joined += words[j]
            j += 1
        if readings and readings not in found:
            found.append(readings)
    return found


def name_words(name: str | None) -> list[str]:
    """A party's name as comparable words: folded, lower case, legal forms and fillers left out."""
    words = _TOKEN.findall(fold(name).replace(".", ""))  # "S.A.R.L." is SARL
    return [w for w in (t.lower() for t in words) if w not in NAME_NOISE and not w.isdigit()]


def is_payout(counterparty: str | None, remittance: str) -> bool:
    """A Stripe or GoCardless payout: money already recorded from the provider's webhooks."""
    folded = fold(counterparty) + " " + fold(remittance)
    return bool(_PAYOUT_NAME.search(folded) or _STRIPE_PAYOUT_ID.search(remittance or "")
                or _GOCARDLESS_PAYOUT_ID.search(folded))
