"""The order of events a text states, and a claim that reverses it.

"Wash the filter and let it dry for 24 hours before refitting" orders (dry, refit); "Refit the filter straight
after washing it, and then let it dry" orders (wash, refit) and (refit, dry): the second pair reverses the source's.
Markers read: before / prior to, after / once, then / and then / followed by / afterwards, first ... then, and a
sentence that opens with one ("After a 4-week washout, patients were randomised"). An event is the content words
of the clause next to its marker; two events are the same when they share a content word (or a WordNet synonym).
"""

from __future__ import annotations

import re

from assistant.entailment import lexicon
from assistant.entailment.text import analyse
from assistant.prompting import split_sentences

_MARKER = re.compile(r"\b(prior to|followed by|and then|before|after|once(?!\s+(?:a|an|per|every|more|again|daily|"
                     r"weekly|monthly|or|in)\b)|following(?=\s+(?:a|an|the|its|their|this|his|her)\b)|then|afterwards|afterward|first|"
                     r"subsequently|later)\b", re.I)
_GENERIC = frozenset(["have", "do", "be", "get", "take", "make", "first", "then", "later", "place", "start", "begin",
                      "straight", "immediately", "just", "also", "only", "once"])

Event = frozenset[str]


def _event(text: str, last: bool) -> Event:
    """The content lemmas of the clause of `text` nearest the marker (its last clause when the marker follows it,
    its first when the marker precedes it)."""
    clauses = [c for c in analyse(text).clauses if c.terms - _GENERIC]
    if not clauses:
        return frozenset()
    clause = clauses[-1] if last else clauses[0]
    return frozenset(t for t in clause.terms - _GENERIC - clause.units if re.search(r"[a-z]", t))


def order_pairs(text: str) -> list[tuple[Event, Event]]:
    """(earlier, later) event pairs the text states."""
    pairs: list[tuple[Event, Event]] = []
    previous = ""
    for sentence in split_sentences(text) or [text]:
        parts = _MARKER.split(sentence)
        if len(parts) > 1 and parts[1].lower() in _THEN and len(parts[0].split()) <= 3 and previous:
            parts[0] = previous  # "... fermented in open vats. The wine is then aged ...": the sentence before
        previous = sentence
        # parts: text, marker, text, marker, text ...; an empty segment ("first, before ...", "first and then")
        # stands for the one before it, and a "then" after a subordinate "after X" continues the main clause
        for i in range(1, len(parts), 2):
            marker, left, right = parts[i].lower(), parts[i - 1], parts[i + 1]
            opening = i == 1 and not left.strip(" ,;:")
            j = i - 1
            while j >= 2 and (not _content(parts[j]) or (marker in _THEN and parts[j - 1].lower() in _SUBORDINATE)):
                j -= 2
            left = parts[j]
            marker = "after" if marker == "following" else marker
            if opening and marker in ("before", "after", "once", "prior to") and "," in right:
                # "After a 4-week washout, patients were randomised": the sentence's own clause follows the comma
                first, _, rest = right.partition(",")
                inner, main = _event(first, last=False), _event(rest, last=False)
                pair = (main, inner) if marker in ("before", "prior to") else (inner, main)
            elif marker in ("before", "prior to"):
                pair = (_event(left, last=True), _event(right, last=False))
            elif marker in ("after", "once"):
                pair = (_event(right, last=False), _event(left, last=True))
            elif marker in _THEN:
                pair = (_event(left, last=True), _event(right, last=False))
            elif marker in ("afterwards", "afterward"):
                # "Apply the drops first and remove your lenses afterwards": the clause before the marker is later
                clauses = [c for c in analyse(left).clauses if c.terms - _GENERIC]
                if len(clauses) < 2:
                    continue
                pair = (_event(" ".join(clauses[-2].words), last=True), _event(" ".join(clauses[-1].words), True))
            else:  # "first": the clause it closes comes before the one after it ("beat in the eggs first, then")
                if not re.match(r"\s*(?:[,;]|and\b|then\b)", right) or not right.strip(" ,;:."):
                    continue  # "patients first completed a washout": an adverb of the verb that follows
                pair = (_event(left, last=True), _event(right, last=False))
            if pair[0] and pair[1] and not (pair[0] <= pair[1] or pair[1] <= pair[0]):
                pairs.append(pair)
    return pairs


_THEN = frozenset(["then", "and then", "followed by", "subsequently", "later"])
_SUBORDINATE = frozenset(["after", "once", "following"])


def _content(text: str) -> bool:
    return bool(_event(text, last=True))


def _same(a: Event, b: Event, use_lexicon: bool) -> int:
    shared = len(a & b)
    if use_lexicon:
        shared += sum(1 for x in a - b if any(lexicon.related(x, y) for y in b - a))
    return shared


def reversed_order(claim: str, source: str, use_lexicon: bool = True) -> str | None:
    """The claim orders two events the other way round from the source (`use_lexicon`: WordNet synonyms and
    derivations count as the same event word, when WordNet is installed)."""
    use_lexicon = use_lexicon and lexicon.available()
    theirs = order_pairs(source)
    if not theirs:
        return None
    for early, late in order_pairs(claim):
        for s_early, s_late in theirs:
            straight = min(_same(early, s_early, use_lexicon), _same(late, s_late, use_lexicon))
            swapped = min(_same(early, s_late, use_lexicon), _same(late, s_early, use_lexicon))
            if swapped > straight:
                said = " ".join(sorted(s_early)[:3]), " ".join(sorted(s_late)[:3])
                return f"order: the source puts '{said[0]}' before '{said[1]}'"
    return None
