"""SASLprep (RFC 4013) for AES-256 PDF passwords: the RFC's own examples, and the candidates tried in order."""

from __future__ import annotations

import pytest

from ingest.passwords import candidates, saslprep


@pytest.mark.parametrize(("typed", "prepared"), [
    ("I\u00adX", "IX"),  # soft hyphen mapped to nothing (RFC 4013 §3, example 1)
    ("user", "user"),
    ("USER", "USER"),  # case is kept
    ("\u00aa", "a"),  # NFKC
    ("\u2168", "IX"),
    ("pass\u00a0word", "pass word"),  # a non-ASCII space becomes a space
    ("cafe\u0301", "caf\u00e9"),  # composed
])
def test_rfc4013_examples(typed: str, prepared: str) -> None:
    assert saslprep(typed) == prepared


@pytest.mark.parametrize("typed", ["\u0007", "\u0627\u0031", "a\ue000b"])  # control, bad bidi, private use
def test_prohibited_output_is_no_candidate(typed: str) -> None:
    assert saslprep(typed) is None
    assert candidates([typed]) == [typed]  # still tried exactly as typed


def test_candidates_keep_order_and_drop_duplicates() -> None:
    assert candidates(["foo", "\u2168", "IX", "foo"]) == ["foo", "\u2168", "IX"]
