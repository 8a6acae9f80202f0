"""Acronyms and their expansions count as the same words: "all HSCs segregate ..." supports "all hematopoietic
stem cells segregate ...", "interventions based on CBT" supports "cognitive behavioral therapy", and a claim
that defines its own acronym ("epigenetic modulating agents (EMAs)") is not asked to find both forms.

An acronym is a token with at least two capitals and no digits (CBT, HSCs, mRNA is not one); its expansion is a
run of two to eight consecutive words, hyphenated parts counted apart, whose initials spell it (an inner "of",
"and", "the", "in", "for", "to" may be skipped, as in "World Health Organization" / "Department of Energy").
"""

from __future__ import annotations

import re

from assistant.entailment.text import lemma

_ACRONYM = re.compile(r"(?<![A-Za-z0-9-])([A-Z][A-Za-z]*[A-Z])(s?)(?![A-Za-z0-9-])")
_WORD = re.compile(r"[A-Za-z]+")
_SKIPPABLE = frozenset(["of", "and", "the", "in", "for", "to", "on", "a"])


def acronyms(text: str) -> set[str]:
    """The acronyms `text` uses, lower case, without a plural s: {"hsc", "cbt"}."""
    out = set()
    for m in _ACRONYM.finditer(text):
        core = m.group(1)
        if sum(ch.isupper() for ch in core) >= 2 and len(core) <= 8 and core.upper() != core.lower():
            out.add(core.lower())
    return out


def _expansions(text: str, wanted: set[str]) -> dict[str, list[str]]:
    """For each acronym in `wanted`, the words of `text` (lower case) whose initials spell it."""
    words = [w.lower() for w in _WORD.findall(text)]
    found: dict[str, list[str]] = {}
    for i, first in enumerate(words):
        if first in _SKIPPABLE:
            continue
        initials, run = "", list[str]()
        for w in words[i: i + 12]:
            if w in _SKIPPABLE and run:
                run.append(w)
                continue
            initials += w[0]
            run.append(w)
            if initials in wanted and len(run) >= 2 and initials not in found:
                found[initials] = [x for x in run if x not in _SKIPPABLE]
            if len(initials) >= 8 or not any(a.startswith(initials) for a in wanted):
                break
    return found


def acronym_cover(claim: str, span: str) -> set[str]:
    """Words of the claim (lower-case words and their lemmas) that the span states in the other form: the
    expansion of an acronym the span uses, or an acronym whose expansion the span spells out. A claim's own
    acronym whose expansion the claim also spells is covered too: it states nothing new."""
    cover: set[str] = set()
    in_span, in_claim = acronyms(span), acronyms(claim)
    for words in _expansions(claim, in_span).values():  # the claim spells out what the span abbreviates
        cover.update(words)
        cover.update(lemma(w) for w in words)
    spelled = set(_expansions(span, in_claim)) | set(_expansions(claim, in_claim))
    for acr in spelled:  # the claim abbreviates what the span (or the claim itself) spells out
        cover.update((acr, acr + "s", lemma(acr)))
    return cover
