"""The legal basis of late-payment charges, by kind of debtor, and the sentences that state it.

Pure rules and wording (fr, en): no Flask, no database. Letters and e-mails print `paragraph()`;
charges.py takes its margin and indemnity from `basis()`, so the figures claimed and the law cited
cannot drift apart.

- business: Code de commerce L441-10 (interest of right from the day after the due date, without a
  reminder, at the contractual rate or else the ECB main refinancing rate + 10 points; the rate of
  1 January serves January-June, that of 1 July serves July-December) and D441-5 (40 EUR recovery
  indemnity per invoice paid late).
- public (a public buyer under a public contract): Code de la commande publique L2192-13 (interest
  and indemnity of right from the day after the payment period), R2192-31 (ECB main refinancing
  rate in force on the first day of the half-year in which interest began to run, + 8 points, for
  the whole period; no contractual rate) and D2192-35 (40 EUR).
- consumer: no indemnity and no interest of right; money owed bears interest at the legal rate
  only from a formal notice (Code civil 1231-6). Code de commerce articles are never cited.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_decimal

BUSINESS, PUBLIC, CONSUMER = "business", "public", "consumer"
DEBTOR_KINDS = (BUSINESS, PUBLIC, CONSUMER)
LANGUAGES = ("fr", "en")
RECOVERY_INDEMNITY_EUR_MINOR = 4000  # 40.00 EUR, D441-5 and D2192-35 alike


@dataclass(frozen=True)
class LegalBasis:
    kind: str
    #: points (bp) over the ECB main refinancing rate; None: no interest of right
    margin_bp: int | None
    #: fixed recovery indemnity per late invoice, EUR minor units (0: none)
    indemnity_eur_minor: int
    #: a contractual rate replaces the statutory one (business only)
    contractual_rate: bool
    #: one ECB rate for the whole late period, that of the half-year in which interest began
    rate_fixed_at_start: bool
    #: articles cited, as (article, code)
    articles: tuple[tuple[str, str], ...]


_BASES = {
    BUSINESS: LegalBasis(BUSINESS, 1000, RECOVERY_INDEMNITY_EUR_MINOR, True, False,
                         (("L441-10", "commerce"), ("D441-5", "commerce"))),
    PUBLIC: LegalBasis(PUBLIC, 800, RECOVERY_INDEMNITY_EUR_MINOR, False, True,
                       (("L2192-13", "commande publique"), ("R2192-31", "commande publique"),
                        ("D2192-35", "commande publique"))),
    CONSUMER: LegalBasis(CONSUMER, None, 0, False, False, (("1231-6", "civil"),)),
}


def basis(kind: str) -> LegalBasis:
    try:
        return _BASES[kind]
    except KeyError:
        raise ValueError(f"debtor kind must be one of {DEBTOR_KINDS}, not {kind!r}") from None


def articles(kind: str) -> list[str]:
    """The article numbers a letter to this kind of debtor cites, e.g. ["L441-10", "D441-5"]."""
    return [number for number, _code in basis(kind).articles]


def _rate(bp: int, lang: str) -> str:
    """1200 -> "12 %" (fr, narrow no-break space) / "12%" (en); 1250 -> "12,5 %" / "12.5%"."""
    number = format_decimal(Decimal(bp) / 100, "0.##", locale=lang)
    return f"{number}\u202f%" if lang == "fr" else f"{number}%"


_TEXTS = {
    ("fr", BUSINESS): (
        "Conformément à l'article L441-10 du Code de commerce, toute somme non réglée à son échéance "
        "porte intérêt de plein droit, sans qu'un rappel soit nécessaire, à compter du jour suivant "
        "la date d'échéance, {rate}. Une indemnité forfaitaire pour frais de recouvrement de 40 euros "
        "est en outre due pour chaque facture payée en retard (articles L441-10 et D441-5 du même code)."),
    ("en", BUSINESS): (
        "Under article L441-10 of the French Commercial Code (Code de commerce), any sum not paid by its "
        "due date bears interest as of right, without any reminder being necessary, from the day after "
        "the due date, {rate}. A fixed indemnity of €40 for recovery costs is also due for each invoice "
        "paid late (articles L441-10 and D441-5 of the same code)."),
    ("fr", PUBLIC): (
        "En application de l'article L2192-13 du Code de la commande publique, le retard de paiement "
        "fait courir de plein droit et sans autre formalité, dès le lendemain de l'expiration du délai "
        "de paiement, des intérêts moratoires au taux de la Banque centrale européenne majoré de huit "
        "points de pourcentage (article R2192-31) ainsi qu'une indemnité forfaitaire pour frais de "
        "recouvrement de 40 euros (article D2192-35)."),
    ("en", PUBLIC): (
        "Under article L2192-13 of the French Public Procurement Code (Code de la commande publique), "
        "late payment gives rise as of right, without further formality, from the day after the payment "
        "period expires, to late-payment interest at the European Central Bank's rate plus eight "
        "percentage points (article R2192-31) and to a fixed indemnity of €40 for recovery costs "
        "(article D2192-35)."),
    ("fr", CONSUMER): (
        "Conformément à l'article 1231-6 du Code civil, la somme due porte intérêt au taux légal à compter "
        "de la présente mise en demeure."),
    ("en", CONSUMER): (
        "Under article 1231-6 of the French Civil Code, the sum due bears interest at the statutory rate "
        "from the date of this formal notice."),
}

_STATUTORY_RATE = {
    "fr": "au taux de la Banque centrale européenne à son opération de refinancement la plus récente, "
          "majoré de dix points de pourcentage",
    "en": "at the European Central Bank's most recent main refinancing rate plus ten percentage points",
}
_CONTRACTUAL_RATE = {
    "fr": "au taux prévu par nos conditions de vente, soit {rate} l'an",
    "en": "at the rate set in our terms of sale, {rate} a year",
}


def paragraph(kind: str, lang: str, *, formal_notice: bool, contractual_bp: int | None = None) -> str:
    """The legal basis as one paragraph in `lang`, for a letter or an e-mail to a debtor of `kind`.

    `contractual_bp`: the creditor's contractual annual rate (business debtors only; a public buyer
    owes the regulatory rate whatever a contract says). A consumer owes nothing of right before a
    formal notice, so a reminder to a consumer has no legal paragraph: "" (the caller prints nothing).
    """
    basis(kind)  # an unknown kind is an error, not a silent blank
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {lang!r}")
    if kind == CONSUMER and not formal_notice:
        return ""
    text = _TEXTS[(lang, kind)]
    if kind == BUSINESS:
        rate = (_STATUTORY_RATE[lang] if contractual_bp is None
                else _CONTRACTUAL_RATE[lang].format(rate=_rate(contractual_bp, lang)))
        text = text.format(rate=rate)
    return text
