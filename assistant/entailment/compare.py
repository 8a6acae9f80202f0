"""Clause comparisons for the claim checks (`assistant.entailment.checks`): how much a source clause is about a
claim clause, and each way the two can disagree — polarity, quantifiers, direction and opposites, the order of two
events, swapped entities and roles, a number stated for another attribute or with another value. Each returns a
short machine-readable reason, or None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.entailment import lexicon
from assistant.entailment.numbers import (
    CLOCK,
    Quantity,
    close_to,
    comparable,
    in_minutes,
    in_unit,
    is_year_text,
    matches,
    normalise,
    same_quantity,
)
from assistant.entailment.text import (
    CHANGE_DOWN,
    CHANGE_UP,
    MONTHS,
    NEGATORS,
    ONLY_Q,
    OPPOSITES,
    ORDER,
    Analysis,
    Clause,
    analyse,
    can_be_noun,
    direction,
    direction_words,
    is_noun,
    lemma,
    quantifier,
    quantifier_words,
    readings,
)
from assistant.prompting import STOPWORDS


def plain_words(text: str) -> str:
    return " ".join(w.lower() for w in re.findall(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*", normalise(text)))


def contains_name(low: str, entity: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(entity)}(?![a-z0-9])", low) is not None


# words that frame a statement without being what it states: auxiliaries, connectives, focus adverbs. They do
# not count as support, nor does their absence count against it ("once it has been in place" = "after").
FRAME_WORDS = frozenset(["have", "do", "be", "get", "although", "though", "once", "if", "so", "just", "even",
                         "also", "still", "already", "yet", "far", "around", "out", "whether", "because", "since",
                         "while", "whereas", "unless", "however", "thus", "hence", "then", "there", "here",
                         "really", "actually", "indeed", "any", "much",  # "much": the lemma of more / most
                         "between", "each"])


def term_weight(term: str) -> int:
    """A thing (a noun and nothing else: 'theft', 'battery') weighs double: paraphrases change verbs and
    adjectives ('lasts' / 'battery life'), an answer that names another thing is another answer."""
    return 2 if is_noun(term) else 1


def _weight(cc: Clause, term: str) -> int:
    return 2 if any(term in e.split() for e in cc.entities) else 1


def _overlap(cc: Clause, cl: Clause, q: Quantity | None = None) -> int:
    """How much a source clause is about the claim clause: shared lemmas (entity words count double), units
    excluded (a shared 'hours' says nothing about which attribute a number belongs to)."""
    shared = {t for t in cc.terms & cl.terms if t not in cc.units}
    return sum(_weight(cc, t) for t in shared) + 3 * len(set(cc.entities) & set(cl.entities))


def _aligned(cc: Clause, span: list[Clause]) -> Clause | None:
    if not span or not cc.terms:
        return None
    scored = [(_overlap(cc, cl), -abs(len(cl.lemmas) - len(cc.lemmas)), i) for i, cl in enumerate(span)]
    best = max(scored)
    return span[best[2]] if best[0] > 0 else None


def clauses_about(cc: Clause, span: list[Clause], use_lexicon: bool = False) -> list[Clause]:
    """The source clauses that share most with the claim clause: words (names aside), and the claim's numbers,
    which anchor a clause more than any word does. With `use_lexicon`, a tie between clauses of a claim clause
    without figures goes to the clauses that also share WordNet synonyms ('eat' / 'feed')."""
    scores = [_bind(cc, cl) + 2 * sum(any(same_quantity(q, s) for s in cl.quantities) for q in cc.quantities)
              for cl in span]
    best = max(scores, default=0)
    ties = [cl for cl, sc in zip(span, scores, strict=True) if sc == best] if best > 0 else []
    if use_lexicon and len(ties) > 1 and not cc.quantities:  # a figure anchors a clause more than a synonym
        related = [_bind_related(cc, cl) for cl in ties]
        ties = [cl for cl, r in zip(ties, related, strict=True) if r == max(related)]
    return ties


def _sibling_name(cc: Clause, cl: Clause) -> bool:
    """The source clause names another member of the claim's family of names: "23 kg on Economy Flex fares"
    against the claim's "Economy Light" (the two share "Economy", and the names differ)."""
    mine, theirs = cc.name_words, cl.name_words
    return bool(mine) and bool(theirs - mine) and not theirs & mine and bool(theirs & set(cc.words))


def _binds(cc: Clause, cl: Clause | None) -> bool:
    """The aligned source clause is about the same attribute (shares most of the claim clause's words)."""
    return cl is not None and _overlap(cc, cl) >= max(1, len(cc.terms) // 2)


_NEGATIVE_PREFIXES = ("non-", "non", "un", "in", "im", "ir", "il", "dis")


def _prefixed(term: str, other: set[str]) -> str | None:
    """The word `term` negates by its prefix when the other text says the plain word: 'unchanged' against
    'change', 'non-refundable' against 'refundable', 'inactive' against 'active'. The stem must be a dictionary
    word that the other side uses, so 'union', 'under' or 'insight' never read as negations."""
    for prefix in _NEGATIVE_PREFIXES:
        stem = term[len(prefix):]
        if term.startswith(prefix) and len(stem) >= 3 and readings(stem):
            plain = lemma(stem)
            if plain in other or stem in other:
                return plain
    return None


def _negations(cl: Clause, other: Clause) -> tuple[int, set[str]]:
    """A clause's negations with its negative-prefix words read against the other clause."""
    count, negated = cl.negations, set(cl.negated)
    for term in cl.terms - other.terms:
        plain = _prefixed(term, other.terms)
        if plain:
            count, negated = count + 1, negated | {plain}
    return count, negated


def _flipped(cc: Clause, cl: Clause) -> bool:
    """The two clauses state opposite directions, which cancels an opposite polarity."""
    mine, theirs = direction(cc.words), direction(cl.words)
    return bool(mine and theirs and mine != theirs)


_EXCEPT = re.compile(r"\b(?:except(?:ing)?(?: for)?|unless|excluding|other than|apart from|save for|but not)\b")


def _exception(cl: Clause) -> tuple[set[str], set[str]]:
    """A clause's exception: the content lemmas before its marker (what the rule says) and after it (what it
    excepts): "included in all rates | except the Saver rate", "can be renewed online | unless another member
    has reserved them"."""
    text = " ".join(cl.words)
    m = _EXCEPT.search(text)
    if m is None:
        return set(), set()
    return _content(text[: m.start()]), _content(text[m.end():])


def _content(text: str) -> set[str]:
    return {t for c in analyse(text).clauses for t in c.terms} - FRAME_WORDS


def _excepted(cc: Clause, cl: Clause) -> bool:
    """The claim speaks of what the source clause excepts (and names no exception itself)."""
    before, after = _exception(cl)
    return bool((after - before) & cc.terms) and _EXCEPT.search(" ".join(cc.words)) is None


def exception_swap(cc: Clause, cl: Clause) -> str | None:
    """'Breakfast is included in the Saver rate' against 'included in all rates except the Saver rate': the claim
    states the rule, with the source's polarity, of the very thing the source excepts. The rule's own verb or
    adjective must be the claim's ('include'), so a claim about something else said of the excepted thing
    ('on Linux it remains experimental') is left alone."""
    if not _excepted(cc, cl) or _negations(cc, cl)[0] % 2 != _negations(cl, cc)[0] % 2:
        return None
    before, after = _exception(cl)
    if not {t for t in (before - after) & cc.terms if not is_noun(t)}:
        return None
    return f"exception: the source excepts '{' '.join(sorted((after - before) & cc.terms))}' from what the claim states"


# what must be: "does not need to be taken with food" denies a requirement, which a source stating a mere
# possibility ("can be taken with or without food") does not affirm
NECESSITY = frozenset(["need", "require", "necessary", "must", "obligatory", "mandatory", "compulsory", "essential",
                       "have", "should", "needed", "required"])


POSSIBILITY = frozenset(["can", "may", "optional", "optionally", "regardless", "either", "allowed", "permitted",
                         "possible", "might", "could"])


def _denies_need(cc: Clause, cl: Clause) -> bool:
    """The claim denies a requirement ("need not", "not required") where the source states only a possibility
    ("can be taken with or without food"), not a fact ("with a change at Pine Junction") or a requirement."""
    said = set(cl.words) | cl.terms
    return bool(cc.negations % 2 and cc.negated & NECESSITY and said & POSSIBILITY) \
        and not said & (NECESSITY - {"have"})


def _nothing_beats(cc: Clause, cl: Clause) -> bool:
    """'No March has been warmer than last month', 'no other turtle dives as deep as the leatherback' against a
    superlative of the same word ('the warmest March', 'deeper than any other'): the denial is the superlative."""
    words = cc.words
    compared = {lemma(w) for i, w in enumerate(words)
                if i + 1 < len(words) and (words[i + 1] == "than" and w.endswith("er")
                                           or i and words[i - 1] == "as" and words[i + 1] == "as")}
    if not compared:
        return False
    theirs = cl.words
    top = {lemma(w) for i, w in enumerate(theirs)
           if w.endswith("est") or (w.endswith("er") and theirs[i + 1: i + 3] == ["than", "any"])}
    return bool(compared & top)


def _other_negated(cc: Clause, cl: Clause, cc_neg: set[str], cl_neg: set[str]) -> str | None:
    """Both clauses negate, but not the same thing: "may not book transfers" against "may book 2 fee-free
    transfers" (the source denies the fee, and states the booking)."""
    denied = {t for t in cc_neg if t not in FRAME_WORDS and t not in cc.units and len(t) > 2}
    stated = cl.terms - cl_neg - FRAME_WORDS
    if not denied or not cl_neg or denied & cl_neg or not denied <= stated:
        return None
    if _flipped(cc, cl) or _excepted(cc, cl) or _denies_need(cc, cl):
        return None
    return f"negation: the claim negates what the source affirms ('{_gist(cl)}'); the source denies " \
           f"'{' '.join(sorted(cl_neg))}'"


def polarity(cc: Clause, cl: Clause, span: Sequence[Clause] = ()) -> str | None:
    (cc_n, cc_neg), (cl_n, cl_neg) = _negations(cc, cl), _negations(cl, cc)
    if cc_n % 2 == cl_n % 2:
        return _other_negated(cc, cl, cc_neg, cl_neg) if cc_n % 2 else None
    if cc_n % 2 and _nothing_beats(cc, cl):
        return None  # "no March has been warmer than last month" against "last month was the warmest March"
    if _denies_need(cc, cl):
        return None  # "need not be taken with food" against "can be taken with or without food"
    if _excepted(cc, cl):
        return None  # "not included with the Saver rate" against "included in all rates except the Saver rate"
    if cl_n % 2 and cl_neg and not cl_neg & cc.terms:
        return None  # the source negates something the claim does not speak of
    if cc_n % 2 and cc_neg:
        # the claim negates a thing: judge it where the source states that thing ("... and is covered by X") about
        # the same subject (every other noun of the claim clause is there: "internet is not included in the rent"
        # is not contradicted by "rent, including water and heating")
        nouns = {t for t in cc.terms - cc_neg if is_noun(t)}
        # a clause about another named thing does not state it of the claim's ("23 kg on Economy Flex fares")
        stated = [i for i, c in enumerate(span) if cc_neg & c.terms and not _sibling_name(cc, c)]
        if not stated or any(_negations(span[i], cc)[0] % 2 for i in stated):
            return None
        # the clause before a stated one is its context ("This policy covers ..., including liquid damage")
        if nouns and not any(nouns <= span[i].terms | (span[i - 1].terms if i else set()) for i in stated):
            return None
        cl = span[stated[0]]
        denied = {t for t in cc_neg if is_noun(t)}
        if set(cl.words) & ONLY_Q and denied and not denied <= cl.terms:
            return None  # "does not include checked baggage" against "include only a 10 kg cabin bag"
    if _flipped(cc, cl):  # "did not fall" against "rose": polarity and direction both flip
        return None
    said = "negates" if cc.negations % 2 else "affirms"
    return f"negation: the claim {said} what the source {'affirms' if cc.negations % 2 else 'negates'} ('{_gist(cl)}')"


_Q_OK = {"all": {"all"}, "most": {"most", "all"}, "some": {"some", "most", "all", "few", "only"},
         "few": {"few", "some", "only"}, "none": {"none", "only"}, "only": {"only", "some", "few", "most", "none"}}


def _q(words: list[str]) -> str:
    found = quantifier(words)
    return "few" if found == "some" and set(words) & {"few", "minority", "rarely", "seldom"} else found


# what "excluded" denies ("excluded" reads as "not included"): a policy that covers or contains a thing includes it
_INCLUDES = frozenset(["cover", "contain", "include"])


def negated_inside(cc: Clause, span: Sequence[Clause]) -> str | None:
    """An affirmative claim clause that holds every content word of a negated source clause states what the
    source denies, whichever source clause shares most words with it: "Sale items can be refunded" against
    "exchanged but not refunded", "may sublicense the Software" against "shall not sublicense, sell or
    distribute the Software". A source clause that says more than the claim ("not issued in cash") does not."""
    if cc.negations % 2:
        return None
    said = cc.terms | ({"include"} if cc.terms & _INCLUDES else set())  # "is covered" states "is included"
    for i, cl in enumerate(span):
        count, negated = _negations(cl, cc)  # "uncommon" negates the claim's "common"
        plain = {t: _prefixed(t, cc.terms) for t in cl.terms - cc.terms}
        own = {plain.get(t) or t for t in cl.terms - FRAME_WORDS - cl.units}
        if not (count % 2 and negated and negated & own <= said and own <= said):
            continue
        if len(own) < 2 and not (i and (span[i - 1].terms - own) & cc.terms):
            continue  # "... but not refunded": a fragment whose subject is in the clause before it
        if _flipped(cc, cl):
            continue  # "rose" against "did not fall"
        return f"negation: the claim affirms what the source negates ('{_gist(cl)}')"
    return None


def affirmed_inside(cc: Clause, span: Sequence[Clause]) -> str | None:
    """The mirror of `negated_inside`: a negated claim clause whose scope holds every content word of an
    affirmative source clause denies what the source states, whichever clause shares most words with it:
    "the solution does not decompose in acid" against "... but decomposes in acid". A source clause with
    figures the claim does not give is about another case, and one that says more than the claim is left alone."""
    if not cc.negations % 2 or not cc.negated:
        return None
    for i, cl in enumerate(span):
        own = cl.terms - FRAME_WORDS - cl.units
        if cl.negations or len(own) < 2 or not own <= cc.negated:
            continue
        if any(not any(matches(q, s) for q in cc.quantities) for s in cl.quantities):
            continue
        if not (i and (span[i - 1].terms - own) & cc.terms) and len(own) < 3:
            continue  # a fragment ("... but decomposes in acid") needs its subject in the clause before it
        if _flipped(cc, cl):
            continue
        return f"negation: the claim denies what the source states ('{_gist(cl)}')"
    return None


def quantifier_conflict(cc: Clause, cl: Clause) -> str | None:
    claim_q, source_q = _q(cc.words), _q(cl.words)
    if claim_q and source_q and source_q not in _Q_OK[claim_q]:
        return f"quantifier: the claim says '{claim_q}', the source '{source_q}'"
    return None


STRONG = ("all", "every", "always", "most", "majority", "entire", "whole", "full")


def strong_quantifier(cc: Clause) -> str:
    words = quantifier_words(cc.words)
    for w in STRONG:
        if w in words:
            return w
    return ""


_Q_SKIP = frozenset(["of", "the", "a", "an", "its", "their", "his", "her", "our", "your", "this", "these", "those"])


def quantified_noun(cc: Clause) -> str:
    """The thing a claim's strong quantifier is about: 'all of the adults' -> adult, 'every platform' ->
    platform, 'the full cost' -> cost, 'most of the 84 works' -> work ('' for 'fully', 'always')."""
    words, q = cc.words, strong_quantifier(cc)
    if not q or q == "always":
        return ""
    at = words.index(q)
    after = [w for w in words[at + 1: at + 7] if w not in _Q_SKIP and re.search(r"[a-z]", w)]
    if after and lemma(after[0]) in cc.units:
        return ""  # a rate, not a thing: "for every pound raised", "every hour"
    # a participle before the head is a modifier: "most surveyed adults" -> adult
    after = [w for k, w in enumerate(after) if not (w.endswith(("ed", "ing")) and k + 1 < len(after))]
    following = [lemma(w) for w in after]
    following = [t for t in following if t in cc.terms]
    # the head noun ("most of the 1,284 new near-Earth asteroids" -> asteroid), else the next word ("full cost")
    return next((t for t in following if is_noun(t)), following[0] if following else "")


def _restricts(words: list[str]) -> bool:
    """An 'only' / 'solely' that restricts a thing ("available only to customers with ..."), not one that stresses a
    figure ("ate only around 19 g")."""
    for k, w in enumerate(words):
        if w in ONLY_Q:
            nxt = [x for x in words[k + 1: k + 3] if x not in ("about", "around", "roughly", "some", "approximately")]
            if not (nxt and re.match(r"[\d$€£]", nxt[0])):
                return True
    return False


def quantifier_gap(cc: Clause, span: Sequence[Clause]) -> str | None:
    """A claim that says all (most, the entire, the full) of a thing is supported only where the source says so
    of that thing: not by 'most adults', 'all platforms except Linux', 'available only to customers with ...',
    'up to 70% of the cost', or a source that names the thing with no quantifier at all."""
    q = strong_quantifier(cc)
    if not q:
        return None
    noun = quantified_noun(cc)
    about = [cl for cl in span if noun and noun in cl.terms]
    if not about:
        if any(quantifier(cl.words) for cl in span):
            return None
        return f"quantifier: the source does not say '{q}'"
    wanted = _q(cc.words)
    for cl in about:
        theirs = _q(cl.words)
        if theirs and theirs in _Q_OK.get(wanted, {theirs}) and not _EXCEPT.search(" ".join(cl.words)) \
                and not _restricts(cl.words):
            return None
    return f"quantifier: the claim says '{q} {noun}'; the source does not say it of every {noun}"


def opposite(cc: Clause, cl: Clause, use_lexicon: bool = True) -> str | None:
    # a direction word both sides use is no evidence either way ("schools with more than 1,000 pupils had lower
    # / higher pass rates"): compare the rest
    shared = set(cc.words) & set(cl.words)
    mine = direction([w for w in cc.words if w not in shared])
    theirs = direction([w for w in cl.words if w not in shared])
    if mine and theirs and not (mine & theirs):
        return (f"direction: the claim says {'/'.join(sorted(mine))} ({_dir_words(cc, shared)}), the source "
                f"{'/'.join(sorted(theirs))} ({_dir_words(cl, shared)})")
    for word in sorted(cc.terms - cl.terms - ORDER, key=cc.lemmas.index):  # in the claim's order: one reason
        against = opposites_of(word, use_lexicon) & (cl.terms - cc.terms)
        if against:
            return f"opposite: the claim says '{word}', the source '{min(against)}'"
    return None


def opposites_of(word: str, use_lexicon: bool = True) -> frozenset[str]:
    """The words that say the opposite of `word`: the hand-listed pairs (`OPPOSITES`) and, with `use_lexicon`
    and WordNet installed, WordNet's direct antonyms in its frequent senses."""
    partners = frozenset(w for pair in OPPOSITES if word in pair for w in pair - {word})
    if use_lexicon and lexicon.available():
        partners |= lexicon.antonyms(word)
    return partners


def _dir_words(cl: Clause, shared: set[str]) -> str:
    return ", ".join(w for w, _ in direction_words(w for w in cl.words if w not in shared))


def order_reversed(cc: Clause, cl: Clause) -> str | None:
    """'A before B' against 'B before A' (or 'A after B'): the two sides of the order word are swapped."""
    mine, theirs = _sides(cc), _sides(cl)
    if not mine or not theirs:
        return None
    (m_left, m_right, m_word), (t_left, t_right, t_word) = mine, theirs
    reverse = _order_sign(m_word) != _order_sign(t_word)
    if reverse:
        t_left, t_right = t_right, t_left
    straight = len(m_left & t_left) + len(m_right & t_right)
    swapped = len(m_left & t_right) + len(m_right & t_left)
    if swapped > straight:
        return f"order: the source puts it the other way round ('{_gist(cl)}')"
    return None


def _sides(cl: Clause) -> tuple[set[str], set[str], str] | None:
    for i, t in enumerate(cl.lemmas):
        if t in ORDER:
            return set(cl.lemmas[:i]), set(cl.lemmas[i + 1:]), t
    return None


def _order_sign(word: str) -> int:
    return 1 if word in ("before", "precede", "prior", "earlier") else -1


def entity_swap(claim: Analysis, text: str) -> str | None:
    """'Kestrel 3' claimed where the source only names 'Kestrel 5': the same name with another number."""
    low = plain_words(text)
    for e in claim.entities:
        parts = e.split()
        if len(parts) == 2 and parts[1].isdigit() and not contains_name(low, e):
            others = re.findall(rf"(?<![a-z0-9]){re.escape(parts[0])} (\d+)", low)
            if others:
                return f"entity: the source states this for '{parts[0]} {others[0]}', not '{e}'"
    return None


_FROM_TO = re.compile(r"\bfrom\s+(?:the\s+)?([a-z0-9.]+)\s+to\s+(?:the\s+)?([a-z0-9.]+)")


# "every 12 minutes instead of every 15", "Lyon rather than Prague": the new thing and the one it replaces
_INSTEAD = re.compile(r"\b(\d[\d.]*)(?:\s+[a-z]+){0,3}?\s+(?:instead\s+of|rather\s+than|in\s+place\s+of)\s+"
                      r"(?:every\s+|the\s+|a\s+)?(\d[\d.]*)|\b([a-z]+)\s+(?:instead\s+of|rather\s+than|in\s+place\s+of)"
                      r"\s+(?:the\s+|a\s+)?([a-z]+)")


def _pairs_of(pattern: re.Pattern[str], text: str) -> set[tuple[str, str]]:
    found = set()
    for groups in pattern.findall(text):
        if isinstance(groups, str):
            continue
        parts = [g for g in groups if g]
        if len(parts) == 2:
            found.add((parts[0], parts[1]))
    return found


def from_to_swap(claim: str, text: str) -> str | None:
    """'from Tarsk to Pellam' against 'from Pellam to Tarsk', 'every 15 minutes instead of every 12' against
    'every 12 minutes instead of every 15 minutes': the two ends swapped."""
    mine, theirs = plain_words(claim), plain_words(text)
    for pattern, say in ((_FROM_TO, "from {a} to {b}"), (_INSTEAD, "{a} instead of {b}")):
        pairs = _pairs_of(pattern, mine)
        for a, b in _pairs_of(pattern, theirs):
            if (b, a) in pairs and (a, b) not in pairs and a != b:
                return "order: the source says " + say.format(a=a, b=b)
    return None


def _roles(cl: Clause) -> list[tuple[str, str, str]]:
    """(name before, verb, name after) triples of a clause: 'Denholm Ltd breached its contract with Perrin' ->
    (denholm ltd, breach, perrin). A passive 'by' between them reverses them."""
    words = cl.name_words - MONTHS - WEEKDAYS  # a date is no party ("Tuesday will start cold in Brackley")
    names: list[tuple[int, int, str]] = []  # (start, end, name) of runs of name words
    i = 0
    while i < len(cl.lemmas):
        if cl.lemmas[i] in words:
            j = i
            while j + 1 < len(cl.lemmas) and cl.lemmas[j + 1] in words:
                j += 1
            names.append((i, j, " ".join(cl.lemmas[i: j + 1])))
            i = j + 1
        else:
            i += 1
    passive = "by" in cl.words
    out = []
    for (_, a_end, first), (b_start, _, second) in zip(names, names[1:], strict=False):
        if first == second:
            continue
        for verb in cl.lemmas[a_end + 1: b_start]:
            if is_noun(verb) or verb in FRAME_WORDS:
                continue
            out.append((second, verb, first) if passive else (first, verb, second))
    return out


def role_reversed(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """Two names on either side of the same verb, the other way round from the source: 'Perrin breached its
    contract with Denholm' against 'Denholm breached its contract with Perrin'."""
    theirs = {(a, v, b) for cl in span for a, v, b in _roles(cl)}
    if not theirs:
        return None
    for cc in claim.clauses:
        for a, v, b in _roles(cc):
            if (b, v, a) in theirs and (a, v, b) not in theirs:
                return f"entity: the source says '{b} {v} ... {a}', not '{a} {v} ... {b}'"
    return None


_RANKED = frozenset(["high", "low", "large", "small", "big", "great", "many", "much", "few", "little", "heavy", "light",
                     "strong", "weak", "wide", "narrow", "deep", "shallow", "long", "short"])


def _comparisons(cc: Clause) -> list[tuple[set[str], str, set[str], set[str]]]:
    """(first side, 'up' | 'down', second side, what is compared) for each 'X ... higher APR than Y' of a clause
    (a bound, 'more than 1,000', is not a comparison)."""
    words, out = cc.words, []
    for i, w in enumerate(words):
        if w != "than" or i == 0 or i + 1 >= len(words) or re.match(r"[\d$€£]", words[i + 1]):
            continue
        for k in range(i - 1, max(-1, i - 6), -1):  # "more of Delmark's electricity than"
            found = direction_words([words[k]])
            if found and (words[k] in ("more", "less", "fewer") or _adjective(words[k]) in _RANKED):
                # each side by its head: the first two content words ("cash advances", "gas plants")
                left = set(_ordered_content(" ".join(words[:k]))[:2])
                right = set(_ordered_content(" ".join(words[i + 1:]))[:2])
                measure = set(_ordered_content(" ".join(words[k + 1: i])))
                out.append((left - right, found[0][1], right - left, measure))
                break
    return out


def _ordered_content(text: str) -> list[str]:
    return [t for c in analyse(text).clauses for t in c.lemmas if t not in FRAME_WORDS and t not in c.units]


def _adjective(word: str) -> str:
    return str(readings(word).get("ADJ", ("",))[0])


def _value_of(side: set[str], other: set[str], span: Sequence[Clause]) -> Quantity | None:
    """The figure the source states for one side of a comparison: in a clause that names it and not the other."""
    things = {t for t in other if is_noun(t)} or other
    for cl in span:
        if side & cl.terms and not things & cl.terms:
            figures = [q for q in cl.quantities if not _is_year(q) and q.unit != "fold"]
            if len(figures) == 1:
                return figures[0]
    return None


def _clause_of(q: Quantity, span: Sequence[Clause]) -> Clause | None:
    return next((cl for cl in span if any(x is q for x in cl.quantities)), None)


def comparison_reversed(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'Cash advances carry a lower APR than purchases' where the source gives 27.9% for cash advances and 22.9%
    for purchases: the claim's comparison against the source's own figures."""
    for cc in claim.clauses:
        for left, way, right, measure in _comparisons(cc):
            if not left or not right:
                continue
            a, b = _value_of(left, right, span), _value_of(right, left, span)
            if a is None or b is None or a is b or not comparable(a, b) or a.unit != b.unit:
                continue
            held = [_clause_of(a, span), _clause_of(b, span)]
            if measure and not any(cl is not None and measure & cl.terms for cl in held):
                continue  # "used less irrigation water than" is not measured by the tonnes of wheat
            if a.value == b.value:
                continue
            actual = "up" if a.value > b.value else "down"
            if actual != way:
                return (f"direction: the source gives {a.text}{' ' + a.unit if a.unit else ''} against "
                        f"{b.text}{' ' + b.unit if b.unit else ''}, the claim says {way}")
    return None


def role_swap(claim: Analysis, span: list[Clause], use_lexicon: bool = False) -> str | None:
    """A name the source states in a clause about another attribute, while the clause about the claim's
    attribute names someone else: 'opens in Prague' where the source opens in Lyon and closes in Prague."""
    for cc in claim.clauses:
        if cc.negations % 2 and set(cc.words) & NEGATORS:
            continue  # "Economy Light does not include checked baggage": the source giving it to Flex agrees
        for e in dict.fromkeys(cc.entities):
            if not (_titled(e, claim.text) or _model_name(e)):
                continue  # a code or a technical term (AIRE, p53, TCR) is not a party that can swap roles
            holders = [cl for cl in span if e in cl.entities]
            if not holders or len(holders) == len(span):
                continue

            def about(cl: Clause, cc: Clause = cc) -> int:  # the claim's figures anchor it ("rose to 68%")
                shared = _bind_related(cc, cl) if use_lexicon else _bind(cc, cl)  # synonyms count
                return shared + 2 * sum(any(matches(q, x) for x in cl.quantities) for q in cc.quantities
                                        if not _is_year(q))

            score = {id(cl): about(cl) for cl in span}  # once per clause: `about` may ask WordNet
            own = max(holders, key=lambda cl: score[id(cl)])
            best = max(score.values())
            if score[id(own)] >= best:
                continue
            known = {name_key(x) for x in _names(claim)}
            said = plain_words(claim.text)
            for rival in (cl for cl in span if score[id(cl)] == best):
                # a name the claim also gives in lower case ("the Iron Age bronze helmet") is nobody else
                other = [x for x in rival.entities if name_key(x) not in known and not contains_name(said, x)]
                # the rival clause may give the name too, as its sentence's first word ("Kestrel FC came ...")
                if other and name_key(e) not in {name_key(x) for x in rival.entities} \
                        and not contains_name(" ".join(rival.words), e):
                    return f"entity: '{e}' is stated for '{_gist(own)}'; '{_gist(rival)}' is stated for '{other[0]}'"
    return None


def is_proper_name(entity: str, text: str) -> bool:
    """A place or person named in running text ('... Wales, Scotland and ...'), not a code, an acronym that the
    source may spell out, or a technical term that opens the sentence."""
    if not entity.isalpha() or entity.isupper():
        return False
    return re.search(rf"(?<=[a-z,;] ){re.escape(entity.title())}\b", text) is not None


def _titled(entity: str, text: str) -> bool:
    """Written as a name in `text`: each word capitalised and otherwise lower case ('Perrin', 'Kallan Reef'),
    unlike an acronym or a gene symbol ('AIRE', 'TCR', 'mosGCTL-1')."""
    m = re.search(rf"(?<![A-Za-z0-9]){re.escape(entity)}(?![A-Za-z0-9])", text, re.I)
    return m is not None and all(w.isalpha() and w[0].isupper() and w[1:].islower() for w in m.group(0).split())


def _model_name(entity: str) -> bool:
    """A name with a model number: 'Kestrel 5', 'Nimbus 30' (not a gene symbol such as 'irg1' or 'p53')."""
    return re.fullmatch(r"[a-z][a-z-]+(?: [a-z][a-z-]+)* [0-9][0-9a-z.]*", entity) is not None


def name_key(entity: str) -> str:
    """One spelling of a name: 'GATA-3' = 'gata3', 'ILCs' = 'ilc'."""
    return re.sub(r"[-\s]", "", entity.lower()).removesuffix("s")


def _names(claim: Analysis) -> set[str]:
    return {e for cl in claim.clauses for e in cl.entities}


def misplaced(cc: Clause, q: Quantity, span: list[Clause], said: frozenset[str] = frozenset(),
              use_lexicon: bool = True) -> str | None:
    """The number is in the source, but in a clause about something else than the claim's clause: another
    attribute ("recharge takes 14 hours" where 14 is the battery life) or another entity (the Kestrel 5's).
    `said`: the content lemmas of the whole claim (a figure that moves the measure on must be told apart by one)."""
    holders = [cl for cl in span if any(matches(q, s) for s in cl.quantities)]
    if not holders:
        return None
    full, cc = cc, _around(cc, q)
    own = max(holders, key=lambda cl: _bind(cc, cl))
    rival = max(span, key=lambda cl: _bind(cc, cl))
    # "completed in 2030" from "... begin in 2026 and finish in 2030": the figure's clause is the claim's event
    same_event = any(cc.terms & kind and own.terms & kind and not rival.terms & kind for kind in (_STARTS, _ENDS))
    if same_event and (_is_year(q) or _is_day(q, own)):
        return None
    if _is_year(q) or _is_day(q, own):
        # a year or a day of the month dates its whole sentence ("In fiscal 2024, X opened ... and deposits
        # grew"), unless a clause more about the claim's event gives another one ("signed in 1648 ... ratified
        # in 1649")
        closer = [cl for cl in span if _bind(cc, cl) > _bind(cc, own)]
        year = _is_year(q)
        if year and any(x is not q and _is_year(x) and matches(x, s) for x in cc.quantities
                        for cl in closer for s in cl.quantities):
            return None  # "between 2019 and 2024": the claim's span of years joins both clauses' years
        if not any((_is_year(s) if year else _is_day(s, cl)) and s.value != q.value
                   for cl in closer for s in cl.quantities):
            return None
    bare = not (own.terms - own.units) and not own.entities  # "10 hours" alone (a table cell): says for nothing
    own_bind, rival_bind = _bind(cc, own), _bind(cc, rival)
    reworded = use_lexicon and own_bind < rival_bind and _bind_related(cc, own) >= _bind_related(cc, rival)
    whole = [own] if _is_year(q) or _is_day(q, own) else _with_fragments(own, q, span)
    if len(whole) > 1:
        # the figure's clause with its fragments ("On weekdays, | the 07:12 ..."), against the best clause beyond them
        outside = [cl for cl in span if all(cl is not x for x in whole)]
        rival = max(outside, key=lambda cl: _bind(cc, cl)) if outside else own
        own_bind, rival_bind = _bind(cc, _joined(whole)), _bind(cc, rival) if outside else 0
    after = _next_with_subject(own, span)
    if after is not None and _bind(cc, after) == own_bind == rival_bind:
        rival, rival_bind = after, _bind(cc, _joined([own, after]))  # "X melts at 48 °C and loses its water at ..."
    # (reworded: the figure's clause says it in other words, "erased" for "delete", "tall" for "height")
    # every figure of the claim's clause in the figure's clause, none in the rival: "a ten-minute top-up gives
    # three hours" from "a 10-minute charge adds 3 hours"
    together = len(full.quantities) >= 2 and not any(_is_year(x) or _is_day(x, own) for x in full.quantities) \
        and all(any(matches(x, s) for s in own.quantities) for x in full.quantities) \
        and not any(matches(x, s) for x in full.quantities for s in rival.quantities)
    if own_bind < rival_bind and not (bare or reworded or same_event or together or _merged(cc, own, rival)) \
            and not _continues(own, rival, span, said):
        return f"number: {q.text} is stated for '{_gist(own)}', not for '{_gist(rival)}'"
    mine, theirs = set(cc.entities) - MONTHS - WEEKDAYS, set(own.entities) - MONTHS - WEEKDAYS  # a date names no one
    if mine and theirs and not mine & theirs and any(mine & set(cl.entities) for cl in span):
        return f"entity: {q.text} is stated for '{min(theirs)}', not for '{min(mine)}'"
    return _crowded(full, q, own)


# a clause that goes on to give the same measure another figure: "25 days a year, | rising to 28 days after five
# years", "profit of $412 million, | up 8% on a year earlier"
_CONTINUING = frozenset(["rising", "falling", "increasing", "decreasing", "climbing", "dropping", "growing",
                         "up", "down", "compared", "against", "versus", "from"])


def _merged(cc: Clause, own: Clause, rival: Clause) -> bool:
    """The claim clause joins two source clauses, each saying its own part of it: "cut lavender back by roughly
    33% | without going into the old wood" from "cut plants back by about a third ..., | but avoid cutting into
    old wood". The other clause holds no figure, so it cannot be the figure's rightful place."""
    if rival.quantities:
        return False
    names = cc.name_words
    mine = {t for t in cc.terms & own.terms if t not in cc.units and t not in names}
    theirs = {t for t in cc.terms & rival.terms if t not in cc.units and t not in names}
    return len(mine) >= 2 and len(mine - theirs) >= 1 and len(theirs - mine) >= 2


def _next_with_subject(own: Clause, span: Sequence[Clause]) -> Clause | None:
    """The clause right after `own` when it has no subject of its own: it begins with a finite verb ("... melts at
    48 °C | and loses its water ..."), so the subject `own` names is its subject too."""
    at = next((i for i, cl in enumerate(span) if cl is own), -1)
    if not 0 <= at < len(span) - 1 or not span[at + 1].words:
        return None
    nxt = span[at + 1]
    words = nxt.words[1:] if nxt.words[0] in ("and", "but", "or", "then") else nxt.words
    if not words or nxt.link.rsplit(" ", 1)[-1] not in ("and", "but", "or", ",") or words[0] in STOPWORDS:
        return None
    first = words[0]
    finite = "VERB" in readings(first) and lemma(first) != first and not first.endswith("ing")
    return nxt if finite else None


def _continues(own: Clause, rival: Clause, span: Sequence[Clause], said: frozenset[str]) -> bool:
    """`own` (holding the figure) follows `rival` (the clause about the claim's attribute) and only moves the
    same measure on, so the figure is the rival's attribute's where the claim also says what sets it apart
    ("after five years of service", "untreated plots"; not "cut its dividend to EUR 1.05" from "a dividend of
    EUR 1.15, up from EUR 1.05 a year earlier")."""
    at = next((i for i, cl in enumerate(span) if cl is own), 0)
    if not (at > 0 and span[at - 1] is rival and own.words and own.words[0] in _CONTINUING):
        return False
    return bool((own.terms - rival.terms - own.units - FRAME_WORDS - _CONTINUING) & said)


_FRONTED = frozenset(["on", "in", "at", "for", "during", "from", "after", "before", "by", "under", "within", "over",
                      "since", "until", "throughout", "outside", "inside"])
_FOLLOWING = frozenset(["with", "a", "an", "its", "their", "including", "plus"])
_RELATIVE = frozenset(["which", "who", "whose", "whom"])


def _fragment_before(cl: Clause) -> bool:
    """A fronted phrase with no verb, which qualifies the clause after it: "On weekdays, | the 07:12 ..."."""
    return 0 < len(cl.words) <= 4 and cl.words[0] in _FRONTED and not cl.quantities


def _comparative(cl: Clause) -> bool:
    """A fragment that opens with a comparison: "a net loss of $12 million, | narrower than the $19 million loss"."""
    return len(cl.words) > 1 and cl.words[1] == "than" and cl.words[0].endswith("er")


def _fragment_after(cl: Clause) -> bool:
    """A phrase that goes on describing the clause before it: "..., | with temperatures near 2 C", "a power rating
    of 200 MW | and a storage capacity of 800 MWh", "Release 2.6.4, | published two weeks earlier"."""
    if not cl.words:
        return False
    first = cl.words[0]
    if first in _RELATIVE or cl.link.rsplit(" ", 1)[-1] in _RELATIVE:
        return True  # "two or three cubs, | which stay with her for about 18 to 22 months"
    if _comparative(cl):
        return True
    return first in _FOLLOWING or (first.endswith(("ed", "ing")) and "VERB" in readings(first))


def _with_fragments(own: Clause, q: Quantity, span: Sequence[Clause]) -> list[Clause]:
    """The figure's clause with the fragments that belong to it: a fronted phrase before it, and the clause it
    describes where it is a fragment itself, unless that clause has a figure of its own of the same kind (then
    the two figures are two attributes: "lasts 14 hours, | recharging in 3")."""
    at = next((i for i, cl in enumerate(span) if cl is own), -1)
    out = [own]
    if at > 0 and _fragment_before(span[at - 1]):
        out.append(span[at - 1])
    # (of the same kind: both counts, or both measures; "3 cubs" gives no figure to "18 to 22 months")
    if at > 0 and _fragment_after(own) and not any(comparable(q, s) and bool(q.unit) == bool(s.unit)
                                                   for s in span[at - 1].quantities):
        out.append(span[at - 1])
    return out


def _joined(clauses: Sequence[Clause]) -> Clause:
    if len(clauses) == 1:
        return clauses[0]
    return Clause([w for cl in clauses for w in cl.words], [t for cl in clauses for t in cl.lemmas],
                  [x for cl in clauses for x in cl.quantities], [e for cl in clauses for e in cl.entities],
                  sum(cl.negations for cl in clauses), set().union(*(cl.negated for cl in clauses)))


def with_comparison(cl: Clause, span: Sequence[Clause], cc: Clause | None = None) -> Clause:
    """A source clause with the fragment after it that gives a direction ("a net loss of $12 million, | narrower
    than the $19 million loss", "61,000 tonnes, | a 12% reduction"): the direction the claim must agree with."""
    at = next((i for i, x in enumerate(span) if x is cl), -1)
    nxt = span[at + 1] if 0 <= at < len(span) - 1 else None
    if nxt is None:
        return cl
    if _comparative(nxt):
        return _joined([cl, nxt])
    # "... set at 61,000 tonnes, | a 12% reduction on 2024": a fragment with a direction for the claim's figure
    figures = cc.quantities if cc is not None else []
    if _fragment_after(nxt) and not nxt.negations and direction(nxt.words) \
            and any(same_quantity(q, s) for q in figures for s in nxt.quantities):
        return _joined([cl, nxt])
    return cl


def _around(cc: Clause, q: Quantity) -> Clause:
    """The part of a claim clause that speaks of `q`, where the clause gives several figures of its kind: each
    content word goes with the figure nearest to it ("road maintenance accounts for EUR 22 million | of Ashby's
    EUR 84 million budget"). A clause with one such figure is all about it."""
    if _is_year(q) or _is_day(q, cc):
        return cc
    others = [x for x in cc.quantities if x is not q and x.unit == q.unit and not _is_year(x) and not _is_day(x, cc)
              and x.text != q.text]
    spots = {i for i, w in enumerate(cc.words) if w == q.text}
    rivals = {i for x in others for i, w in enumerate(cc.words) if w == x.text}
    if not others or not spots or not rivals:
        return cc
    # only figures set apart by a thing of their own: not "from 68% in 2023 to 63%", "by 11.3 versus 2.1 mmHg"
    between = cc.words[min(spots | rivals) + 1: max(spots | rivals)]
    if not any(lemma(w) in cc.terms and is_noun(lemma(w)) and lemma(w) not in cc.units for w in between):
        return cc
    mine = [w for i, w in enumerate(cc.words)
            if min(abs(i - j) for j in spots) <= min(abs(i - j) for j in rivals)]
    lemmas = [t for t in (lemma(w) for w in mine) if t in cc.terms]
    return Clause(mine, lemmas, [q], [e for e in cc.entities if set(e.split()) & set(mine)], cc.negations,
                  cc.negated)


def _near(words: list[str], number: str, reach: int = 3) -> set[str]:
    """The lemmas within `reach` words of each place `number` stands in `words`."""
    at = [i for i, w in enumerate(words) if w == number]
    return {lemma(p) for i in at for w in words[max(0, i - reach): i + reach + 1] if w != number
            for p in w.split("-")}


def _crowded(cc: Clause, q: Quantity, own: Clause) -> str | None:
    """Two figures of one kind in one clause, each beside its own noun: "a floor area of 142 square metres on a
    510-square-metre lot". A claim that gives the first figure to the second's noun ("the lot measures 142 square
    metres") moves it; a claim that gives both figures is left to the other checks."""
    held = next((s for s in own.quantities if matches(q, s)), None)
    if held is None:
        return None
    others = [s for s in own.quantities if s is not held and s.unit == held.unit and s.value != held.value]
    if not others:
        return None
    if any(x is not q and x.unit == q.unit for x in cc.quantities):
        return None  # the claim gives both figures too: word distance cannot tell which noun is whose
    names = cc.name_words
    nouns = {t for t in cc.terms if is_noun(t) and t not in cc.units and t not in names}
    beside = _near(own.words, held.text)
    for other in others:
        moved = sorted(nouns & (_near(own.words, other.text) - beside))
        if moved:
            return (f"number: {q.text} is stated beside '{' '.join(sorted(beside & own.terms)[:3])}', "
                    f"the source gives '{moved[0]}' {other.text}")
    return None




def _is_day(q: Quantity, cl: Clause) -> bool:
    """A day of the month: "from 10 June", "on 1 October", "June 10"."""
    if q.unit or not q.value.is_integer() or not 1 <= q.value <= 31:
        return False
    words = cl.words
    at = [i for i, w in enumerate(words) if w == q.text]
    return any(words[j] in MONTHS for i in at for j in (i - 1, i + 1) if 0 <= j < len(words))


def _is_year(q: Quantity) -> bool:
    return not q.unit and 1500 <= q.value <= 2200 and is_year_text(q.text)  # the value too: not "2024 million"


def _bind_related(cc: Clause, cl: Clause) -> int:
    """`_bind` where a WordNet synonym or derivation counts as shared ('erased' = 'delete', 'tall' = 'height')."""
    names = cc.name_words
    theirs = cl.terms - cl.units
    return sum(1 for t in cc.terms - cc.units - names
               if t in theirs or any(lexicon.related(t, u) for u in theirs))


def _bind(cc: Clause, cl: Clause) -> int:
    """Shared words of the claim clause and a source clause, leaving out units and names (a subject named once
    serves every clause of its sentence)."""
    names = cc.name_words
    return len({t for t in cc.terms & cl.terms if t not in cc.units and t not in names})


def wrong_value(cc: Clause, q: Quantity, span: list[Clause]) -> str | None:
    """The source states this attribute with another value, or this value in another unit."""
    if any(matches(q, s) for cl in span for s in cl.quantities):
        return None
    same_number = [s for cl in span for s in cl.quantities if s.value == q.value and s.unit and q.unit]
    bounded = [s for s in same_number if s.unit == q.unit and s.bound and q.bound and s.bound != q.bound]
    if bounded:
        words = {"lower": "at least / above", "upper": "at most / up to"}
        return f"bound: the claim says {words[q.bound]} {q.text} {q.unit}, the source {words[bounded[0].bound]}"
    if same_number:
        return f"unit: the claim says {q.text} {q.unit}, the source {same_number[0].text} {same_number[0].unit}"
    target = _aligned(cc, span)
    if target is None or not _binds(cc, target):
        return None
    # a year is compared with years, a day of the month with days (2024 is no 74%, 20 July no 84 works)
    # (a span of years may be set against the source's years: "68 years after" against 1887 and 1965)
    others = [s for s in target.quantities if comparable(q, s) and _is_day(q, cc) == _is_day(s, target)
              and (_is_year(q) == _is_year(s) or q.unit in ("year", "decade", "century"))]
    if others:
        shown = ", ".join(f"{s.text}{' ' + s.unit if s.unit else ''}" for s in others[:2])
        return f"number: the source states {shown}, not {q.text}{' ' + q.unit if q.unit else ''}"
    return None


def claim_words(claim: Analysis) -> set[str]:
    return {lemma(w) for cl in claim.clauses for w in cl.words} | {w for cl in claim.clauses for w in cl.words}


def _gist(cl: Clause) -> str:
    return " ".join(cl.lemmas[:4])


# what a claim of "no effect" denies: "had no effect on", "did not affect", "no change in", "no difference in"
EFFECT_WORDS = frozenset(["effect", "impact", "influence", "change", "difference", "affect", "alter"])


def no_effect(claim: Analysis, sentences: Sequence[Analysis]) -> str | None:
    """A claim of no effect on something, where the source's sentence most about that thing states a change
    ("had no effect on the incidence of diabetes" against "reduce ... diabetes incidence by 1.6%")."""
    for cc in claim.clauses:
        denied = {t for t in cc.lemmas if t in EFFECT_WORDS}
        if not cc.negations or not denied or not (cc.negated & denied or denied & {"affect", "alter", "change"}):
            continue
        topic = cc.terms - EFFECT_WORDS - FRAME_WORDS
        about = [(len(a.terms & topic), a) for a in sentences]
        most = max((n for n, _ in about), default=0)
        if most < 2:
            continue
        top = [a for n, a in about if n == most]  # every sentence most about it must state a change
        moved = [[w for cl in a.clauses for w in cl.lemmas if w in CHANGE_UP or w in CHANGE_DOWN] for a in top]
        if all(moved) and not any(cl.negations for a in top for cl in a.clauses):
            return f"effect: the claim says no effect, the source '{moved[0][0]}'"
    return None


_BIGGER = frozenset(["larger", "bigger", "greater", "higher", "heavier", "longer", "older", "more"])
_SMALLER = frozenset(["smaller", "lower", "lighter", "shorter", "younger", "less", "fewer"])


def implied_bound(q: Quantity, span: Sequence[Clause]) -> bool:
    """'larger than 100 mL' from 'spills smaller than 100 mL may be neutralised; larger spills must be reported':
    the other side of a stated limit, named by the opposite comparative without a figure of its own."""
    if not q.bound:
        return False
    opposite_words = _BIGGER if q.bound == "lower" else _SMALLER
    for i, cl in enumerate(span):
        limit = [s for s in cl.quantities if s.bound and s.bound != q.bound and s.unit == q.unit and s.value == q.value]
        if not limit:
            continue
        for other in span[i: i + 3]:
            words = other.words
            if any(w in opposite_words and (k + 1 >= len(words) or words[k + 1] != "than")
                   for k, w in enumerate(words)) and other is not cl:
                return True
    return False


def bound_instance(q: Quantity, claim: Analysis, span: Sequence[Clause]) -> bool:
    """'not suitable for children under 12, so a 10-year-old should not take them': a figure inside a limit the
    source states, where the claim states that limit too (so the claim applies the source's rule to one case)."""
    if q.bound or q.hedged:
        return False
    for s in (x for cl in span for x in cl.quantities):
        if not s.bound or not comparable(q, s) or CLOCK in (q.unit, s.unit) or "%" in (q.unit, s.unit):
            continue
        stated = any(x is not q and x.bound == s.bound and same_quantity(x, s) for x in claim.quantities)
        if not stated:
            continue
        # "under 12 years" against "a 10-year-old"; a bare "under 12" takes the claim's unit
        value = in_unit(q, s.unit) if q.unit and s.unit else q.value
        if value is not None and (value < s.value if s.bound == "upper" else value > s.value):
            return True
    return False


_MONTH_NUMBER = {m: i % 12 + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
     "december", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_MONTH_NUMBER["sept"] = 9


def _months(span: Sequence[Clause]) -> list[int]:
    """Each 'March 2023' (a month and its year) of the span, in order, as a count of months."""
    out = []
    for cl in span:
        words = cl.words
        for i, w in enumerate(words[:-1]):
            if w in _MONTH_NUMBER and is_year_text(words[i + 1]):
                out.append(int(words[i + 1]) * 12 + _MONTH_NUMBER[w] - 1)
    return out


def month_span(q: Quantity, span: Sequence[Clause]) -> bool:
    """'released six months after it was bottled' from 'bottled in March 2023 and released in September 2023': a
    duration between two dated months the source gives one after the other."""
    months = in_unit(q, "month") if q.unit in ("month", "year", "week") else None
    if months is None:
        return False
    dates = _months(span)
    return any(abs(abs(b - a) - months) < 0.5 for a, b in zip(dates, dates[1:], strict=False))


def pair_reference(cc: Clause, q: Quantity, span: Sequence[Clause], passage: str = "") -> bool:
    """'between the two groups': 'the two' refers back to a pair the source speaks of ('between groups'), it is no
    count the claim states, unless the source counts that thing itself."""
    if q.value != 2 or q.unit or q.text not in cc.words:
        return False
    at = cc.words.index(q.text)
    if not at or cc.words[at - 1] not in ("the", "both", "these", "those") or at + 1 >= len(cc.words):
        return False
    noun = cc.words[at + 1]
    thing = lemma(noun)
    if thing == noun or not any(thing in cl.terms for cl in span):
        return False  # a plural noun the source names
    counted = [cl for cl in span for x in cl.quantities if x.text in cl.words
               and lemma(cl.words[min(cl.words.index(x.text) + 1, len(cl.words) - 1)]) == thing]
    elsewhere = re.search(rf"\b(?!2\b)\d+ {re.escape(noun)}\b", passage)  # "Three groups were compared"
    return not counted and elsewhere is None


def _dated(cl: Clause) -> list[tuple[Quantity, str]]:
    """(figure, year) for each figure a clause dates right after it: "63% in 2023", "$412 million in 2024"."""
    out = []
    for q in cl.quantities:
        if _is_year(q) or q.text not in cl.words:
            continue
        at = cl.words.index(q.text)
        after = cl.words[at + 1: at + 5]
        for k, w in enumerate(after[:-1]):
            if w == "in" and is_year_text(after[k + 1]):
                out.append((q, after[k + 1]))
                break
            if re.match(r"[\d$€£]", w):
                break  # another figure comes first
    return out


def year_swap(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'fell from 68% in 2023 to 63% in 2024' where the source gives '63% in 2023': a figure dated with another
    year than the source dates it."""
    theirs = [pair for cl in span for pair in _dated(cl)]
    for cc in claim.clauses:
        for q, year in _dated(cc):
            same = [y for s, y in theirs if s.value == q.value and s.unit == q.unit]  # exactly: "to 68%" is no 63%
            other = [y for y in same if y != year]
            if other and year not in same:
                return f"date: the source gives {q.text}{' ' + q.unit if q.unit else ''} for {other[0]}, not {year}"
    return None


_STARTS = frozenset(["open", "start", "begin", "launch", "commence", "introduce"])
_ENDS = frozenset(["close", "end", "finish", "conclude", "expire", "stop", "complete"])


def start_end_swap(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'expected to be completed in 2026' where the source says 'begin in spring 2026 and finish in 2030': the
    claim's date is the one the source gives the other end of the event, and the source dates the claim's end
    otherwise."""
    for cc in claim.clauses:
        starts, ends = bool(cc.terms & _STARTS), bool(cc.terms & _ENDS)
        if starts == ends:
            continue
        mine, other = (_STARTS, _ENDS) if starts else (_ENDS, _STARTS)
        for q in cc.quantities:
            holders = [cl for cl in span if any(same_quantity(q, s) for s in cl.quantities)]
            if not holders or not all(cl.terms & other and not cl.terms & mine for cl in holders):
                continue
            rivals = [s for cl in span if cl.terms & mine and not cl.terms & other for s in cl.quantities
                      if comparable(q, s) and not same_quantity(q, s) and _is_year(s) == _is_year(q)]
            if rivals:
                return (f"order: the source gives {q.text} for the {'end' if starts else 'start'}, "
                        f"{rivals[0].text} for the {'start' if starts else 'end'}")
    return None


def _range_ends(cl: Clause) -> tuple[Quantity, Quantity] | None:
    """The two ends of a 'from A to B' (or 'until B') span of time in a clause."""
    words = cl.words
    if "from" not in words:
        return None
    at = words.index("from")
    first = next((q for q in cl.quantities if q.text in words[at + 1: at + 4]), None)
    end = next((i for i in range(at + 1, len(words)) if words[i] in ("to", "until", "till")), None)
    last = next((q for q in cl.quantities if end is not None and q.text in words[end + 1: end + 4]
                 and q is not first), None)
    return (first, last) if first is not None and last is not None else None


def range_end_swap(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'opens on 20 July' where the source 'runs from 4 March to 20 July': the claim gives a start the end of the
    source's span of time (or an end its start)."""
    for cc in claim.clauses:
        starts, ends = bool(cc.terms & _STARTS), bool(cc.terms & _ENDS)
        if starts == ends:
            continue
        for cl in span:
            pair = _range_ends(cl)
            if pair is None:
                continue
            first, last = pair
            wrong, right = (last, first) if starts else (first, last)
            for q in cc.quantities:
                if same_quantity(q, wrong) and not same_quantity(q, right):
                    return (f"order: the source's span runs from {first.text} to {last.text}; the claim gives "
                            f"{q.text} as its {'start' if starts else 'end'}")
    return None


_STILL = frozenset(["unchanged", "unaffected", "steady", "stable", "flat"])


def _still(cl: Clause) -> bool:
    """A clause that states no change: "did not differ significantly", "was unchanged at 74%", "had no effect"."""
    denied = cl.negations % 2 and cl.negated & (EFFECT_WORDS | {"differ", "vary", "move"})
    return bool(denied or set(cl.words) & _STILL)


def change_denied(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """A claim of a change in something the source says did not change: "lowered diastolic blood pressure"
    against "diastolic pressure did not differ significantly", "the English pass rate rose to 74%" against "the
    pass rate in English was unchanged at 74%". The unchanged clause must hold a word of the claim that no
    clause stating a change holds ("diastolic", "English"; not an adverb), so "systolic pressure fell" is left
    alone."""
    for cc in claim.clauses:
        moved = [t for t in cc.lemmas if t in CHANGE_UP or t in CHANGE_DOWN]
        if cc.negations % 2 or not moved:
            continue
        topic = cc.terms - CHANGE_UP - CHANGE_DOWN - EFFECT_WORDS - FRAME_WORDS - cc.units
        changing = [cl for cl in span if not _still(cl)
                    and (cl.terms & (CHANGE_UP | CHANGE_DOWN) or set(cl.words) & {"up", "down"})]
        for cl in span:
            shared = cl.terms & topic
            if len(shared) < 2 or not _still(cl):
                continue
            own = {t for t in shared if not t.endswith("ly") and not any(t in other.terms for other in changing)}
            if own:
                return f"change: the claim says '{moved[0]}', the source says '{' '.join(sorted(own))}' did not change"
    return None


EXCLUSIVE = frozenset(["solely", "exclusively", "purely", "only"])
_BY = frozenset(["by", "to", "in", "on", "at", "for", "from", "through", "via", "with"])
_LEAD = frozenset(["by", "to", "in", "on", "at", "for", "from", "through", "via", "the", "a", "an", "with", "of"])


def exclusive_conflict(claim: Analysis, span: list[Clause]) -> str | None:
    """"determined solely by environmental factors" against a source that names genetic factors: the claim
    says one kind of a thing alone, the source (not denying it) names another kind of the same thing."""
    for cc in claim.clauses:
        words = cc.words
        for i, w in enumerate(words):
            if w not in EXCLUSIVE or i + 1 >= len(words) or words[i + 1] not in _BY:
                continue  # a restriction of how or where ("solely by", "only at"), not "only the Premier plan"
            j = i + 1
            while j < len(words) and words[j] in _LEAD:
                j += 1
            phrase: list[str] = []
            while j < len(words) and len(phrase) < 3 and words[j].isalpha() and words[j] not in STOPWORDS:
                phrase.append(words[j])
                j += 1
            while phrase and not can_be_noun(phrase[-1]):
                phrase.pop()  # the kind ends at its noun: "by environmental factors", not "... factors act"
            if len(phrase) < 2:
                continue  # "only the Kestrel": no kind of a thing to set against another
            head, kinds = lemma(phrase[-1]), {lemma(x) for x in phrase[:-1]}
            for cl in span:
                if cl.negations:
                    continue
                low = [lemma(x) for x in cl.words]
                for k, x in enumerate(low):
                    if x != head or k == 0:
                        continue
                    before = [y for y in low[max(0, k - 2): k] if y.isalpha() and y not in STOPWORDS]
                    if before and not set(before) & kinds:
                        return (f"exclusive: the claim says only {' '.join(phrase)}, the source names "
                                f"{' '.join(before)} {phrase[-1]}")
    return None


def _free(cl: Clause) -> bool:
    """A clause that says something costs nothing ("the cathedral itself is free" reads "is no charge")."""
    words = cl.words
    return any(w == "no" and words[i + 1: i + 2] == ["charge"] for i, w in enumerate(words))


def free_conflict(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'Entry to the cathedral costs EUR 6' where the source says 'entry to the cloister costs EUR 6, but the
    cathedral itself is free': the claim prices a thing the source says is free (and gives the price to another)."""
    for cc in claim.clauses:
        prices = [q for q in cc.quantities if q.unit.isupper() and q.value > 0]
        if not prices or cc.negations % 2:
            continue
        for cl in span:
            if not _free(cl):
                continue
            things = {t for t in (cl.terms - FRAME_WORDS - {"charge"}) & cc.terms if is_noun(t)}
            held = [x for x in span if any(same_quantity(prices[0], s) for s in x.quantities)]
            if things and not any(things & x.terms for x in held):
                return f"price: the claim says {prices[0].text} {prices[0].unit}, the source says " \
                       f"'{' '.join(sorted(things))}' is free"
    return None


_TOP = frozenset(["largest", "biggest", "highest", "greatest", "main", "leading", "smallest", "lowest", "fastest",
                  "slowest", "oldest", "newest", "longest", "shortest", "deepest", "tallest", "heaviest"])


def superlative_swap(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'Wind was the largest single source' where the source says 'gas remained the largest single source' and
    speaks of wind elsewhere: the superlative belongs to another thing."""
    for cc in claim.clauses:
        at = next((i for i, w in enumerate(cc.words) if w in _TOP), None)
        if at is None or cc.negations % 2:
            continue
        top, after = cc.words[at], [lemma(w) for w in cc.words[at + 1: at + 3]]
        subject = {lemma(w) for w in cc.words[:at]} & cc.terms - FRAME_WORDS - {"be", "remain"}
        subject = subject - cc.name_words or subject  # "Wind was Delmark's largest": the thing is wind
        if not subject or not after:
            continue
        for cl in span:
            if top not in cl.words:
                continue
            k = cl.words.index(top)
            if [lemma(w) for w in cl.words[k + 1: k + 1 + len(after)]] != after:
                continue
            if subject & cl.terms:
                continue  # the source's superlative clause names the claim's thing
            theirs = {lemma(w) for w in cl.words[:k]} & cl.terms - FRAME_WORDS - {"be", "remain"}
            elsewhere = any(subject & other.terms for other in span if other is not cl)
            if theirs and elsewhere:
                return (f"superlative: the source gives '{top} {' '.join(after)}' to "
                        f"'{' '.join(sorted(theirs))}', not to '{' '.join(sorted(subject))}'")
    return None


_UNLIMITED = frozenset(["unlimited", "limitless", "uncapped"])


def unlimited_conflict(claim: Analysis, span: Sequence[Clause]) -> str | None:
    """'Unlimited EU roaming' where the source gives the allowance a figure ('5 GB of EU roaming') and does not
    call it unlimited."""
    for cc in claim.clauses:
        at = next((i for i, w in enumerate(cc.words) if w in _UNLIMITED), None)
        if at is None:
            continue
        thing = {lemma(w) for w in cc.words[at + 1: at + 5]} & cc.terms
        if not thing:
            continue
        best = max(span, key=lambda cl: len(thing & cl.terms), default=None)
        if best is None or len(thing & best.terms) < min(2, len(thing)) or set(best.words) & _UNLIMITED:
            continue
        figures = [q for q in best.quantities if q.unit and q.unit != "%" and not q.unit.isupper()]
        if figures:
            f = figures[0]
            return f"limit: the claim says unlimited, the source gives {f.text} {f.unit} ('{_gist(best)}')"
    return None


WEEKDAYS = frozenset(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
_LATER = {"later": 1, "after": 1, "afterwards": 1, "earlier": -1, "before": -1, "prior": -1}


def _before(words: list[str], token: str, reach: int = 3) -> set[str]:
    """Content lemmas of the words just before `token` in a clause: the verb a figure belongs to ("was lifted
    | 1 hour later", "check-in closes | 45 minutes before")."""
    at = words.index(token) if token in words else -1
    return {lemma(w) for w in words[max(0, at - reach): max(0, at)] if w not in STOPWORDS and w.isalpha()}


def shifted_time(cc: Clause, q: Quantity, span: Sequence[Clause]) -> str | None:
    """A time of day the source gives as another one moved by a duration: "lifted at 05:10" from "issued at
    04:10 was lifted an hour later", "check-in closes at 07:00" from "departs at 07:45 ... check-in closes 45
    minutes before departure". The claim must be about what the duration moves (the words before it), not what
    the first time is for ("issued at 05:10" is not)."""
    if q.unit != CLOCK:
        return None
    times = [(a, cl) for cl in span for a in cl.quantities if a.unit == CLOCK]
    for cl in span:
        for d in cl.quantities:
            minutes = in_minutes(d)
            at = cl.words.index(d.text) if d.text in cl.words else -1
            if minutes is None or at < 0:
                continue
            cue = next((_LATER[w] for w in cl.words[at + 1: at + 4] if w in _LATER), 0)
            moved = _before(cl.words, d.text) & cc.terms
            for a, home in times:
                if cue and moved - _before(home.words, a.text) and close_to(q, (a.value + cue * minutes) % 1440):
                    return f"{a.text} {'+' if cue > 0 else '-'} {d.text} {d.unit}"
    return None
