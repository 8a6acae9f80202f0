"""PDF passwords as a user types them and as the file was encrypted with them.

AES-256 PDFs (security handler revision 6, PDF 2.0 §7.6.4.3.3) key on the SASLprep (RFC 4013) form of the
password, which conforming writers such as Acrobat apply before encrypting. MuPDF authenticates with the bytes it
is given, so a password typed with a no-break space, a soft hyphen, a compatibility character (Ⅻ, ﬁ) or in
decomposed form (e + U+0301) fails against such a file unless we try its SASLprep form too.
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Iterable

_PROHIBITED = (stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
               stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
               stringprep.in_table_c8, stringprep.in_table_c9)


def saslprep(text: str) -> str | None:
    """The RFC 4013 form of `text` (as a query: unassigned code points allowed), or None if it is prohibited."""
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    out = unicodedata.normalize("NFKC", mapped)
    if any(check(c) for c in out for check in _PROHIBITED):
        return None
    rtl = [stringprep.in_table_d1(c) for c in out]
    if any(rtl) and (any(stringprep.in_table_d2(c) for c in out) or not (rtl[0] and rtl[-1])):
        return None
    return out


def candidates(passwords: Iterable[str]) -> list[str]:
    """Each password as given, then its SASLprep form where that differs; no duplicates, order kept."""
    out: list[str] = []
    for pw in passwords:
        for form in (pw, saslprep(pw)):
            if form is not None and form not in out:
                out.append(form)
    return out
