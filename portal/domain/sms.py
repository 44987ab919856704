"""SMS text: segments counted as Twilio counts them, the reminder composed to fit two of them
(its link a portal link's short code: services/links).

GSM 03.38: a message written only with the basic set (1 septet a character) and its extension
table (2 septets: an escape and the character) goes as GSM-7, 160 septets alone or 153 a segment
once split (7 septets go to the concatenation header). One character outside both switches the
whole message to UCS-2: 70 UTF-16 units alone, 67 a segment, a character beyond the BMP (an
emoji) taking 2 units. A segment never splits an escape pair nor a surrogate pair.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# The basic set, in table order (0x1B, the escape, is not a character). Note é è ù ì ò and the
# capital Ç are there, but not ç ê â ô î û ë ï: most French text goes UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}  # (one segment alone, each of several)
MAX_SEGMENTS = 2
MAX_CHARACTERS = 320


@dataclass(frozen=True)
class Count:
    encoding: str   # GSM-7 | UCS-2
    units: int      # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    characters: int

    @property
    def per_segment(self) -> int:
        single, multi = LIMITS[self.encoding]
        return single if self.segments <= 1 else multi


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def count(text: str) -> Count:
    """How Twilio bills `text`: its encoding, its length in that encoding and its segments."""
    encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    if encoding == "GSM-7":
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
    else:
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    units = sum(sizes)
    single, multi = LIMITS[encoding]
    if units <= single:
        return Count(encoding, units, 1 if text else 0, len(text))
    segments, room = 1, multi
    for size in sizes:  # fill segment by segment: a pair that does not fit starts the next one
        if size > room:
            segments, room = segments + 1, multi
        room -= size
    return Count(encoding, units, segments, len(text))


def fits(text: str) -> bool:
    """Within what a Relance SMS may be: 320 characters and two segments."""
    c = count(text)
    return c.characters <= MAX_CHARACTERS and c.segments <= MAX_SEGMENTS


# --- the reminder --------------------------------------------------------------------------------

class SmsTooLong(ValueError):
    """The reminder cannot fit two segments, even with the creditor's name cut to one letter."""


# One template a tone (the plan step's: courtesy before the due date, then reminder, firm,
# formal). Plain spaces before ":" on purpose: a no-break space is outside GSM-7 and would turn
# the whole message into UCS-2 (70 characters a segment); "é", "è" and "à" are in GSM-7, so the
# French is worded without ç, ê, â or ô where a natural wording allows.
TEMPLATES = {
    "fr": {
        "courtesy": "{name} : votre facture{ref} de {amount} arrive à échéance le {due}. Pour la régler : {link}",
        "reminder": "{name} : votre facture{ref} de {amount} est échue depuis le {due}. Pour la régler : {link}",
        "firm": "{name} : relance, votre facture{ref} de {amount} échue le {due} reste impayée. "
                "Merci de la régler sans délai : {link}",
        "formal": "{name} : dernier rappel avant mise en demeure. Facture{ref} de {amount} échue le {due}. "
                  "Réglez-la ici : {link}",
    },
    "en": {
        "courtesy": "{name}: your invoice{ref} for {amount} is due on {due}. Pay it here: {link}",
        "reminder": "{name}: your invoice{ref} for {amount} was due on {due}. Pay it here: {link}",
        "firm": "{name}: reminder, your invoice{ref} for {amount} due on {due} is still unpaid. "
                "Please pay it now: {link}",
        "formal": "{name}: final reminder before formal notice. Invoice{ref} for {amount} due on {due}. "
                  "Pay it here: {link}",
    },
}
STOP = {"fr": " STOP au {number}", "en": " Text STOP to {number} to opt out."}
STOP_BY_REPLY = {"fr": " Répondez STOP pour ne plus recevoir de SMS.", "en": " Reply STOP to opt out."}
ELLIPSES = ("…", "...")  # "…" is UCS-2: in a GSM-7 message three dots keep more of the name


def _plain(text: str) -> str:
    """Spaces and apostrophes as GSM-7 has them: Babel's amounts carry (narrow) no-break spaces,
    which would make the message UCS-2 and which Twilio's smart encoding may rewrite anyway."""
    text = " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())
    return text.replace("\u2019", "'").replace("\u2018", "'")


LOOK_ALIKES = {"œ": "oe", "Œ": "OE", "«": '"', "»": '"', "“": '"', "”": '"', "–": "-", "—": "-", "ç": "c"}


def gsm7_lookalike(text: str) -> str:
    """`text` with what GSM-7 lacks written as it has it (ç → c, ê → e, œ → oe), as phones and
    Twilio's smart encoding do; a character with no such form stays."""
    out = []
    for c in text:
        if c in GSM7_BASIC or c in GSM7_EXTENSION:
            out.append(c)
        elif c in LOOK_ALIKES:
            out.append(LOOK_ALIKES[c])
        else:
            base = unicodedata.normalize("NFD", c)[0]
            out.append(base if base in GSM7_BASIC else c)
    return "".join(out)


def _cut(name: str, keep: int, ellipsis: str) -> str:
    return name[:keep].rstrip(" .,-") + ellipsis


def _longest(lo: int, hi: int, ok) -> int | None:
    """The largest k in [lo, hi] with ok(k), ok being true up to some k and false beyond."""
    found = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if ok(mid):
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    return found


def compose(kind: str, language: str, creditor_name: str, amount_text: str, due_text: str, link: str, *,
            invoice_ref: str | None = None, replies: bool = False, stop_number: str | None = None) -> str:
    """The reminder SMS of a plan step of tone `kind` in `language` ("fr" or "en"), within 320
    characters and two segments. When it does not fit, the creditor's name and the invoice number
    lose first what GSM-7 lacks ("Françoise" → "Francoise": one ç costs half the room), then the
    name is cut (with an ellipsis); never the amount, the due date or the link. `replies`: the sender can receive replies, so the text
    says how to opt out by answering STOP (or, with `stop_number`, to which number)."""
    language = "fr" if language.startswith("fr") else "en"
    try:
        template = TEMPLATES[language][kind]
    except KeyError:
        raise ValueError(f"no SMS for a step of tone {kind!r}") from None
    tail = ""
    if replies:
        tail = STOP[language].format(number=stop_number) if stop_number else STOP_BY_REPLY[language]
    fields = {"amount": _plain(amount_text), "due": _plain(due_text), "link": link.strip(),
              "ref": f" {_plain(invoice_ref)}" if invoice_ref else ""}
    name = _plain(creditor_name) or "?"

    def text(shown: str) -> str:
        return template.format(name=shown, **fields) + tail

    if fits(text(name)):
        return text(name)
    fields["ref"] = gsm7_lookalike(fields["ref"])
    name = gsm7_lookalike(name)
    if fits(text(name)):
        return text(name)
    # The longest cut that fits. A longer cut never takes less room as long as the encoding
    # stays: so search apart below and above the first letter GSM-7 lacks, for each ellipsis.
    gsm_until = next((i for i, c in enumerate(name) if not is_gsm7(c)), len(name))
    best = None
    for ellipsis in ELLIPSES:
        for lo, hi in ((1, min(gsm_until, len(name) - 1)), (gsm_until + 1, len(name) - 1)):
            keep = _longest(lo, hi, lambda k: fits(text(_cut(name, k, ellipsis))))
            if keep and (best is None or keep > best[0]):
                best = (keep, ellipsis)
    if best:
        return text(_cut(name, *best))
    raise SmsTooLong(f"a {language} SMS of tone {kind} cannot fit {MAX_SEGMENTS} segments "
                     f"({count(text(name[:1] + ELLIPSES[1])).units} units with the name cut short)")
