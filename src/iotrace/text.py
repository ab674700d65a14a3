"""Names from a trace made safe to print.

A file name on Linux is any bytes but '/' and NUL: not always UTF-8 (the readers keep such bytes
as surrogates, `surrogateescape`), and it may hold newlines, terminal escapes or bidi controls.
Every text output (show, report, missed, the stracer's console lines, HTML) prints names through
`escape`, as strace does: a name can neither forge a line nor reach the terminal as a control.
Exports keep the exact bytes instead (`os.fsencode` of the name gives them back)."""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", '"': '\\"'}


def _escape_char(c: str, quote: bool = True) -> str:
    named = _NAMED.get(c) if quote or c not in '\\"' else None
    if named is not None:
        return named
    o = ord(c)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x80:
        return c if 0x20 <= o < 0x7F else f"\\x{o:02x}"
    if unicodedata.category(c)[0] in "CZ" and c != " ":  # controls, format, separators
        return "".join(f"\\x{b:02x}" for b in c.encode("utf-8", "surrogatepass"))
    return c


def escape(s: object, quote: bool = True) -> str:
    """`s` with every byte that is not printable text as \\xNN (newline \\n, tab \\t, CR \\r),
    and (`quote`) backslash and double quote escaped, so that the result reads back
    unambiguously."""
    s = str(s)
    if s.isascii() and s.isprintable() and (("\\" not in s and '"' not in s) or not quote):
        return s  # the common case, fast
    return "".join(_escape_char(c, quote) for c in s)


_DATA_NAMED = {9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}


def data_text(data: bytes) -> str:
    """A call's buffer as strace prints it, unquoted: printable ASCII as is, \\t \\n \\v \\f \\r
    \\" \\\\ named, every other byte in octal (its shortest form; three digits before a digit 0-7,
    so that it reads back)."""
    out = []
    for i, c in enumerate(data):
        named = _DATA_NAMED.get(c)
        if named is not None:
            out.append(named)
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37:
            out.append(f"\\{c:03o}")
        else:
            out.append(f"\\{c:o}")
    return "".join(out)


def quote_data(data: bytes, moved: int) -> str:
    """The bytes `iotrace run -s N` kept of a call's buffer, as strace prints a buffer: quoted
    `data_text`, "..." after it when the call moved more."""
    return f'"{data_text(data)}"' + ("..." if moved > len(data) else "")


def to_bytes(s: str) -> bytes:
    """The exact bytes of a name read with surrogateescape."""
    return s.encode("utf-8", "surrogateescape")
