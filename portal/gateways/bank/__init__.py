"""Bank statement files in, plain transactions out (CONTRACT §8).

The formats French and European banks deliver, recognised from the content, never the file name:
camt.053 and camt.054 (ISO 20022, .001.02 to .001.08), CFONB 120, MT940 and OFX. Each reader
streams its file and yields `StatementLine`s; none touches the database. A file that cannot be
read raises `StatementError` naming the line or element at fault; the service then records nothing.
The results and what the readers share (exact amounts, identities) live in `base`, re-exported here.
"""
from __future__ import annotations

import io
import re
from typing import BinaryIO

from . import camt, cfonb, mt940, ofx
from .base import Identities, Statement, StatementError, StatementLine, joined, minor_units

__all__ = ["Identities", "Statement", "StatementError", "StatementLine", "joined", "minor_units",
           "read_statement"]


def read_statement(stream: BinaryIO) -> Statement:
    """Recognise the format from the first bytes of `stream` and return its reader.
    Raises StatementError when the content is none of the formats."""
    head = stream.read(_HEAD)
    if isinstance(head, str):
        raise StatementError("a statement is read as bytes, not text")
    while 0 < len(head) < _HEAD:  # a pipe or a request body may give less than asked
        more = stream.read(_HEAD - len(head))
        if not more:
            break
        head += more
    whole = io.BufferedReader(_Rewound(head, stream), buffer_size=1 << 16)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        # no camt or OFX file carries a DTD; refusing them shuts out XXE and entity bombs
        raise StatementError("the file declares a DTD or entities, which statements never do")
    found = _CAMT.search(head)
    if found:
        return Statement(f"camt.05{found[1].decode()}", camt.read(whole, found[1].decode(), int(found[2])))
    if text.startswith(b"OFXHEADER:") or b"<?OFX" in head or text.startswith(b"<OFX>"):
        return Statement("ofx", ofx.read(whole))
    if text.startswith(b"<"):
        raise StatementError("an XML file, but neither camt.053 nor camt.054 .001.02 to .001.08 nor OFX")
    if re.match(rb"(\{1:|:20:)", text):
        return Statement("mt940", mt940.read(whole))
    if cfonb.looks_like(head):
        return Statement("cfonb120", cfonb.read(whole))
    raise StatementError("unknown format: not camt.053/054, CFONB 120, MT940 or OFX")


_HEAD = 8192
_CAMT = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:camt\.05([34])\.001\.(0[2-8])\b")


class _Rewound(io.RawIOBase):
    """The sniffed head put back in front of the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


