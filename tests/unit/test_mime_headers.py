"""The outbox's SMTP policy writes a short printable-ASCII header itself instead of through
compat32's Header class: the bytes must be exactly compat32's, whatever the header."""
from email.policy import compat32

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.services.mime import _SMTP

COMPAT32_SMTP = compat32.clone(linesep="\r\n", mangle_from_=False)
NAMES = st.sampled_from(["To", "From", "Subject", "Message-ID", "Date", "X-Relance-Kind", "Content-Type"])


@settings(max_examples=500, deadline=None)
@given(NAMES, st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=120))
def test_printable_headers_fold_as_compat32(name, value):
    assert _SMTP.fold_binary(name, value) == COMPAT32_SMTP.fold_binary(name, value)


@settings(max_examples=300, deadline=None)
@given(NAMES, st.text(max_size=120))
def test_any_header_folds_as_compat32(name, value):
    """Tabs, line ends, non-ASCII and long values take compat32's own path."""
    try:
        expected = COMPAT32_SMTP.fold_binary(name, value)
    except Exception as e:  # noqa: BLE001 - then ours must refuse it the same way
        try:
            _SMTP.fold_binary(name, value)
        except type(e):
            return
        raise AssertionError("compat32 refused it, ours did not") from e
    assert _SMTP.fold_binary(name, value) == expected


def test_long_header_is_folded():
    subject = "Relance : factures " + " ".join(f"F-2026-{n:04d}" for n in range(12))
    folded = _SMTP.fold_binary("Subject", subject)
    assert folded == COMPAT32_SMTP.fold_binary("Subject", subject) and folded.count(b"\r\n") > 1
