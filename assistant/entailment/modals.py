"""What the source says cannot be done: "remote exploitation is not possible" against "it can be exploited
remotely", "parking is not permitted on the verge" against "you may park on the verge".

The source names the act as a noun ("exploitation", "parking") and denies its possibility or permission; the claim
says the act with a modal verb ("can", "may"). The two are the same act when their words are the same words up to a
derivation suffix ("exploitation" / "exploit", "remote" / "remotely").
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.entailment.text import Analysis, Clause

_MODALS = frozenset(["can", "may", "could"])
# what a denied possibility or permission says: "is not possible", "is not permitted", "is prohibited"
# ("prohibited" reads as "not allow": the lemma its negation is kept under)
_DENIABLE = frozenset(["possible", "permitted", "allowed", "permissible", "available", "feasible", "allow", "permit"])
_DENYING = frozenset(["impossible", "prohibited", "forbidden", "banned", "disallowed", "impermissible"])
_SUFFIXES = ("ations", "ation", "ions", "ion", "ments", "ment", "ing", "ly", "s")
_FILLER = frozenset(["be", "can", "may", "could", "not", "no", "it", "they", "you", "this", "that"])


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _same_act(mine: set[str], theirs: set[str]) -> bool:
    """Every word of the source's act is a word of the claim, up to a derivation suffix, and the claim adds at
    most its agent ("visitors can park on the grass verge" against "parking is prohibited on the grass verge")."""
    a, b = {_stem(w) for w in mine}, {_stem(w) for w in theirs}
    return bool(b) and b <= a and len(a - b) <= (1 if len(b) >= 2 else 0)


def _denied_act(cl: Clause) -> set[str] | None:
    """The act a source clause says cannot or may not be done, as its content words; None if it says none."""
    words = set(cl.words)
    if words & _DENYING and not cl.negations % 2:
        return {t for t in cl.terms if t not in _DENYING and t not in _FILLER}
    if cl.negations % 2 and cl.negated & _DENIABLE:
        return {t for t in cl.terms if t not in _DENIABLE and t not in _FILLER}
    return None


def modal_denied(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """The claim says an act can (or may) be done that the source says is not possible (or not permitted)."""
    for cc in claim.clauses:
        if cc.negations % 2 or not set(cc.words) & _MODALS:
            continue
        names = cc.name_words
        mine = {t for t in cc.terms if t not in names and t not in _FILLER}
        for cl in span:
            act = _denied_act(cl)
            if act and _same_act(mine, act - names):
                return f"negation: the source says '{' '.join(sorted(act))}' is not possible or not allowed"
    return None
