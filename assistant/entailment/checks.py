"""The offline default entailment backend: deterministic claim checks against the best supporting span.

A claim is supported by a span (one sentence, or two or three adjacent ones) of the premise when
  * its content words are there (lemmatised; with a text embedder, a close synonym counts too),
  * every entity it names is there, and every quantity it states is there with an equal value and unit,
  * each quantity is stated for the same thing (the clause holding it in the source is the one that matches the
    claim's clause best: "recharge takes 14 hours" is not supported by "lasts 14 hours, recharges in 3"),
  * and nothing contradicts it: negation, direction (rose/fell), opposites (before/after), quantifiers
    (some/all), the order of two events, or an entity whose number differs (Kestrel 3 vs Kestrel 5).
Words that occur only in the question never count: the premise is the source, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.entailment import lexicon
from assistant.entailment.acronyms import acronym_cover
from assistant.entailment.base import Entailment
from assistant.entailment.compare import (
    FRAME_WORDS,
    affirmed_inside,
    bound_instance,
    change_denied,
    claim_words,
    clauses_about,
    comparison_reversed,
    contains_name,
    entity_swap,
    exception_swap,
    exclusive_conflict,
    free_conflict,
    from_to_swap,
    implied_bound,
    is_proper_name,
    misplaced,
    month_span,
    name_key,
    negated_inside,
    no_effect,
    opposite,
    opposites_of,
    order_reversed,
    pair_reference,
    plain_words,
    polarity,
    quantifier_conflict,
    quantifier_gap,
    range_end_swap,
    role_reversed,
    role_swap,
    shifted_time,
    start_end_swap,
    superlative_swap,
    term_weight,
    unlimited_conflict,
    with_comparison,
    wrong_value,
    year_swap,
)
from assistant.entailment.modals import modal_denied
from assistant.entailment.numbers import Quantity, derived, matches, same_quantity
from assistant.entailment.order import reversed_order
from assistant.entailment.text import Analysis, Clause, analyse, can_be_noun, is_noun, lemma, readings
from assistant.prompting import STOPWORDS, split_sentences


@dataclass(frozen=True)
class CheckSettings:
    coverage: float = 0.75  # share of the claim's content words found in the span
    soft_coverage: float = 0.5  # ... enough when the claim and the span are also semantically close
    semantic: float = 0.7  # cosine of claim and span (needs an embedder)
    synonym: float = 0.72  # cosine at which a claim word counts as found through a span word (needs an embedder)
    min_aligned: float = 0.4  # a span must share this much with the claim before it can contradict it
    max_span: int = 3  # adjacent sentences a supporting span may join
    lexicon: bool = True  # WordNet synonyms, derivations, broader terms and antonyms (`assistant.entailment.lexicon`)


_SUBORDINATORS = frozenset(["if", "when", "unless", "because", "to", "after", "before", "while", "once", "as", "so",
                            "since", "until", "whenever", "where"])


# a sentence that sets out what a study or report asks ("OBJECTIVE To assess the risks of ...", "We examined
# whether ...") states no finding, unless it also reports one ("... and found that ...")
_ASKS = re.compile(r"^\W*(?:objectives?|aims?|purpose|background and aims?|questions?)\b|\bto (?:assess|determine|"
                   r"investigate|examine|evaluate|explore|test|compare|study|establish|identify) (?:whether|if|how|"
                   r"the|what|which|a|an|its|their)\b|\b(?:asked|examined|investigated|tested|studied|explored|"
                   r"assessed|evaluated|determined|unclear|unknown|uncertain) (?:whether|if)\b", re.I)
_FINDS = re.compile(r"\b(?:found|finds?|show(?:s|ed|n)?|demonstrat\w*|reveal\w*|indicat\w*|conclu\w*|results?|"
                    r"suggest\w*|confirm\w*|observed|identified|report(?:s|ed)? that)\b", re.I)


_CONDITIONS = frozenset(["if", "when", "unless", "whenever", "once", "because"])  # and causes
_RELATIVE = frozenset(["who", "which", "whose"])
_AUXILIARIES = frozenset(["have", "be", "do", "get"])  # not a clause's own verb
_DETERMINERS = frozenset(["a", "an", "the", "his", "her", "their", "its", "your", "our", "my", "this", "that", "these",
                          "those"])
_NOUN_BEFORE = _DETERMINERS | frozenset(["by", "of", "with", "for", "in", "on", "from", "via"])


def _noun_use(lem: str, cc: Clause) -> bool:
    """A word with a noun reading used as a noun: after a determiner or a preposition ('a fever', 'by telephone')."""
    for before, w in zip(cc.words, cc.words[1:], strict=False):
        if before in _NOUN_BEFORE and lemma(w) == lem and "NOUN" in readings(w):
            return True
    return False


def _verb_missing(cc: Clause, missing: Sequence[str]) -> bool:
    """The clause's verb (its first word read as a verb and not as a noun: 'lifted', not 'water') is missing."""
    for w in cc.words:
        found = readings(w)
        if "VERB" in found and "NOUN" not in found and found["VERB"][0] not in _AUXILIARIES:
            return lemma(w) in missing
    return False


def _modified(cc: Clause) -> list[tuple[int, str, str]]:
    """(position, modifier, noun) for each kind word before its noun, over a figure between them ('the blue
    500 ml bottles')."""
    out = []
    for k, before in enumerate(cc.words):
        prev = cc.words[k - 1] if k else ""
        if k and prev not in _NOUN_BEFORE and set(readings(prev)) != {"ADJ"}:
            continue  # a noun phrase begins after a determiner or a preposition: not 'the X20 films 4K video'
        j = k + 1
        while j < len(cc.words) and j <= k + 3 and (cc.words[j][:1].isdigit() or lemma(cc.words[j]) in cc.units):
            j += 1
        if j < len(cc.words) and _modifies(before, cc.words[j], cc):
            out.append((k, before, cc.words[j]))
    return out


def _modifies(before: str, w: str, cc: Clause) -> bool:
    """`before` is a kind word of the noun `w`: an adjective or a noun, not a verb form ('white dwarf', 'winter
    timetable'; not 'hold its', 'given bolus'), and neither is a unit ('20 minutes of') or a stop word."""
    if not (before.isalpha() and w.isalpha()) or before in STOPWORDS or w in STOPWORDS:
        return False
    if lemma(w) in cc.units or lemma(before) in cc.units or not can_be_noun(w):
        return False
    found = readings(before)
    return "ADJ" in found or ("NOUN" in found and not before.endswith(("ed", "ing")))


def _opposite_bound(cc: Clause, q: Quantity, span: list[Clause]) -> str | None:
    """'at least twelve cars were sold' against 'fewer than 12 were sold': the same figure bounded the other way,
    in a clause about the same thing (another figure may well satisfy the claim's bound: '40 cars' taken)."""
    if not q.bound:
        return None

    def shared(cl: Clause) -> int:
        return len((cc.terms - cc.units) & (cl.terms - cl.units))

    for cl in span:
        for s in cl.quantities:
            if s.bound and s.bound != q.bound and s.value == q.value and (s.unit == q.unit or not s.unit) \
                    and shared(cl) and not any(matches(q, x) and shared(other) > shared(cl)
                                               or same_quantity(q, x) and x.bound == q.bound
                                               for other in span for x in other.quantities):
                said = "at least" if q.bound == "lower" else "at most"
                theirs = "under" if s.bound == "upper" else "over"
                return f"bound: the claim says {said} {q.text}, the source {theirs} {s.text}"
    return None


def _head_noun(lem: str, cc: Clause) -> bool:
    """A noun that ends its noun phrase: 'glucose' in 'lowered blood glucose in the mice', not 'normal' in
    'under a normal load'."""
    for i, w in enumerate(cc.words):
        found = readings(w)
        before = cc.words[i - 1] if i else ""
        if lemma(w) == lem and "NOUN" in found and (set(found) <= {"NOUN", "ADJ"} or before in _DETERMINERS):
            after = cc.words[i + 1] if i + 1 < len(cc.words) else ""
            if not after or after in STOPWORDS:
                return True
    return False


def _only_asks(text: str, about: set[str] | None = None) -> bool:
    """Every sentence of `text` that speaks of `about` (content lemmas; all sentences when None) only asks."""
    sentences = [x for x in split_sentences(text) or [text] if about is None or analyse(x).terms & about]
    return bool(sentences) and all(_ASKS.search(x) and not _FINDS.search(x) for x in sentences)


@dataclass
class _Outcome:
    verdict: str  # supported | unsupported | contradicted
    coverage: float
    reason: str
    span: str


class ClaimChecks:
    """`EntailmentModel` backend `checks`. An optional text embedder (any `TextEmbedder`) adds synonym matching
    and a semantic-closeness allowance for paraphrases; the hard checks never depend on it."""

    name = "checks"

    def __init__(self, embedder: Any = None, settings: CheckSettings | None = None) -> None:
        self.embedder = embedder
        self.settings = settings or CheckSettings()
        self.lexicon = self.settings.lexicon and lexicon.available()
        self._vectors: dict[str, np.ndarray] = {}

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Entailment]:
        return [self.check(premise, hypothesis).entailment for premise, hypothesis in pairs]

    def check(self, premise: str, claim: str, question: str = "") -> Result:
        """The verdict on `claim` from `premise` alone. `question` only marks which of the claim's words are its
        answer (those not in the question): they must be in the span as well as most of the rest."""
        c = analyse(claim)
        asked = analyse(question).terms if question else set()
        sentences = [analyse(s) for s in (split_sentences(premise) or [premise])]
        passage = plain_words(premise)
        outcomes = [self._judge(c, span, text, asked, passage) for span, text in self._spans(sentences)]
        if not outcomes or not c.clauses:
            return Result("unsupported", 0.0, "empty: nothing to check", "")
        supported = [o for o in outcomes if o.verdict == "supported"]
        if supported:
            best = max(supported, key=lambda o: o.coverage)
            # support from one span is not enough when the rest of the source says otherwise: a date that
            # belongs to the neighbouring sentence's event, a number stated for another attribute
            whole = [cl for a in sentences for cl in a.clauses]
            conflict = self._conflict(c, whole, premise, entire=True) if len(sentences) > 1 else None
            if conflict:
                return Result("contradicted", best.coverage, conflict, best.span)
        else:
            contra = [o for o in outcomes if o.verdict == "contradicted"]
            best = max(contra or outcomes, key=lambda o: o.coverage)
        return Result(best.verdict, best.coverage, best.reason, best.span)

    def _spans(self, sentences: list[Analysis]) -> list[tuple[list[Clause], str]]:
        out = []
        for size in range(1, self.settings.max_span + 1):
            for i in range(len(sentences) - size + 1):
                group = sentences[i: i + size]
                out.append(([cl for a in group for cl in a.clauses], " ".join(a.text for a in group)))
        return out

    # -- one span ---------------------------------------------------------------------------------------------
    def _judge(self, claim: Analysis, span: list[Clause], text: str, asked: set[str], passage: str = "") -> _Outcome:
        span_terms = set().union(*(cl.terms for cl in span)) if span else set()
        cover = acronym_cover(claim.text, text)
        span_terms |= cover  # "HSCs" states "hematopoietic stem cells"
        # a span that names nothing of its own speaks of the passage's subject: "Versions 2.x are not affected",
        # four sentences after "the Tarn web server"
        own_names = set().union(*(cl.name_words for cl in span)) - claim.name_words
        inherited = passage if passage and not own_names else ""
        coverage, missing = self._coverage(claim, span_terms, plain_words(text), inherited)
        aligned = coverage >= self.settings.min_aligned
        conflict = self._conflict(claim, span, text) if aligned else None
        conflict = conflict or (self._other_modifier(claim, span, span_terms) if aligned else None)
        if conflict:
            return _Outcome("contradicted", coverage, conflict, text)
        gap = self._gap(claim, span, text, passage, cover) or self._addition(claim, span_terms, plain_words(text))
        if gap:
            return _Outcome("unsupported", coverage, gap, text)
        s = self.settings
        if coverage >= s.coverage or (coverage >= s.soft_coverage and self._semantic(claim.text, text) >= s.semantic):
            return _Outcome("supported", coverage, f"supported: coverage {coverage:.2f}", text)
        words = ", ".join(f"'{w}'" for w in missing[:4])
        return _Outcome("unsupported", coverage, f"coverage: {coverage:.2f}; not in the source: {words}", text)

    def _coverage(self, claim: Analysis, span_terms: set[str], low: str,
                  inherited: str = "") -> tuple[float, list[str]]:
        """Weighted share of the claim found in the span: entities weigh 3 (a name the source does not give is
        an addition: 'Norway and Sweden'), other nouns 2, other words 1."""
        entities = list(dict.fromkeys(claim.entities))
        in_entities = {w for e in entities for w in e.replace("-", " ").split()}
        units = {u for cl in claim.clauses for u in cl.units}
        terms = [t for t in dict.fromkeys(t for cl in claim.clauses for t in cl.lemmas)
                 if t not in units and t not in in_entities and t not in FRAME_WORDS]
        if not terms and not entities:
            return 1.0, []
        negated = {t for cl in claim.clauses for t in cl.negated}
        missing = [t for t in terms if t not in span_terms and not self._synonym(t, span_terms)
                   and not (t in negated and self._antonym(t, span_terms))]
        lost = [e for e in entities if not contains_name(low, e) and e not in span_terms
                and not (inherited and contains_name(inherited, e))]
        weight = sum(map(term_weight, terms)) + 3 * len(entities)
        return 1 - (sum(map(term_weight, missing)) + 3 * len(lost)) / weight, lost + missing

    def _disagree(self, cc: Clause, cl: Clause, span: list[Clause]) -> str | None:
        negated, opposed = polarity(cc, cl, span), opposite(cc, cl, self.lexicon)
        if opposed and (cc.negations + cl.negations) % 2:
            return None  # two flips: "have not won" against "lost", "not included" against "excluded"
        return (negated or quantifier_conflict(cc, cl) or opposed or order_reversed(cc, cl)
                or exception_swap(cc, cl))

    def _addition(self, claim: Analysis, span_terms: set[str], low: str) -> str | None:
        """A clause of the claim the span says (almost) nothing of: "..., and because sea temperatures are
        rising", "... or if you develop a fever". The whole claim's coverage can stay high while one of its
        clauses is an addition."""
        if len(claim.clauses) < 2:
            return None
        for cc in claim.clauses:
            _, missing = self._coverage(Analysis(claim.text, [cc]), span_terms, low)
            terms = [t for t in dict.fromkeys(cc.lemmas) if t not in cc.units and t not in FRAME_WORDS]
            thing = any(is_noun(m) or m in cc.entities or _noun_use(m, cc) for m in missing)
            # a short fragment of a coordination ("stay in a quiet | and relaxed environment") must be missing
            # whole; a clause of its own ("if you develop a fever", four words or more) only mostly
            opener = (cc.link.split() or [""])[-1]  # the split takes "because" off the clause into its link
            whole = bool(cc.words) and (cc.words[0] in _SUBORDINATORS or opener in _SUBORDINATORS) or len(terms) >= 4
            lead = next((w for w in cc.words if w not in ("and", "or", "but")), "")
            relative = opener in _RELATIVE or lead in _RELATIVE
            if relative and terms and set(terms) <= set(missing) and not cc.quantities:
                # a relative clause that says something of its own: "by her nephew, who had inherited it"
                return f"addition: the source does not say '{' '.join(missing[:4])}'"
            if (opener in _CONDITIONS or lead in _CONDITIONS) and terms and _verb_missing(cc, missing):
                # a condition of its own, the act of which the source never names: ", or when it is lifted off
                # its base" beside "when the water boils or if it is switched on empty"
                return f"addition: the source does not say '{' '.join(missing[:4])}'"
            # a thing the source never names, two words long ("blood glucose"), added beside what it does say
            pair = any(a in missing and b in missing and _head_noun(b, cc)
                       for a, b in zip(cc.lemmas, cc.lemmas[1:], strict=False))
            if pair and not cc.quantities:
                return f"addition: the source does not say '{' '.join(missing[:4])}'"
            if not whole and len(missing) < len(terms):
                continue
            if len(terms) == 1 and missing and thing and len(cc.words) >= 2 and cc.link == "," and not cc.quantities:
                return f"addition: the source does not say '{missing[0]}'"  # ", by telephone"
            if len(terms) >= 2 and len(missing) >= max(2, 0.6 * len(terms)) and (thing or len(missing) >= 3):
                return f"addition: the source does not say '{' '.join(missing[:4])}'"
        return None

    def _conflict(self, claim: Analysis, span: list[Clause], text: str, entire: bool = False) -> str | None:
        """`entire`: the span is the whole source (a figure bounded the other way is judged only there: one
        sentence may give 'over 12' where the next gives 'under 12')."""
        for cc in claim.clauses:
            # the source clauses most about this claim clause (names aside: a subject named once serves every
            # clause); a conflict counts only when every one of them conflicts
            ties = [with_comparison(cl, span, cc) for cl in clauses_about(cc, span, self.lexicon)]
            reasons = [self._disagree(cc, cl, span) for cl in ties]
            if ties and all(reasons):
                return reasons[0]
            inside = negated_inside(cc, span) or affirmed_inside(cc, span)
            if inside:
                return inside
        return (entity_swap(claim, text) or from_to_swap(claim.text, text)
                or reversed_order(claim.text, text, self.lexicon) or role_swap(claim, span, self.lexicon)
                or role_reversed(claim, span) or comparison_reversed(claim, span)
                or self._quantity_conflict(claim, span, entire) or exclusive_conflict(claim, span)
                or unlimited_conflict(claim, span) or change_denied(claim, span) or year_swap(claim, span)
                or range_end_swap(claim, span) or start_end_swap(claim, span) or free_conflict(claim, span)
                or superlative_swap(claim, span) or modal_denied(claim, span)
                or no_effect(claim, [analyse(x) for x in split_sentences(text) or [text]]))

    def _other_modifier(self, claim: Analysis, span: list[Clause], span_terms: set[str]) -> str | None:
        """The claim's thing with a modifier the source never uses, where the source gives the same thing another
        one: 'a white dwarf' against 'its red dwarf host star'. The modifier is a kind, not an extra detail."""
        if not self.lexicon:
            return None
        mods: dict[str, set[str]] = {}  # head lemma -> the modifiers the span puts before it
        for cl in span:
            for k, before, w in _modified(cl):
                negated = k > 0 and (cl.words[k - 1].startswith("non") or cl.words[k - 1] in ("not", "never"))
                if not negated:  # "non-chromatin bound histones" are free ones
                    mods.setdefault(lemma(w), set()).add(lemma(before))
        for cc in claim.clauses:
            for _, before, w in _modified(cc):
                head, mod = lemma(w), lemma(before)
                if head not in mods:
                    continue
                if mod in span_terms or mod in mods[head] or self._synonym(mod, span_terms):
                    continue
                # a rival of the same kind: an opposite ('front' / 'back') or a sibling ('red' / 'white', 'copper'
                # / 'zinc'); words WordNet cannot place ('straight' / 'consecutive') tell nothing
                rivals = sorted(m for m in mods[head] if m not in claim.terms and m != head
                                and (m in lexicon.antonyms(mod) or lexicon.broader(m, 2) & lexicon.broader(mod, 2)))
                if rivals:
                    return f"modifier: the source says '{rivals[0]} {w}', not '{before} {w}'"
        return None

    def _gap(self, claim: Analysis, span: list[Clause], text: str, passage: str = "",
             cover: frozenset[str] | set[str] = frozenset()) -> str | None:
        """`cover`: the claim's words the span states in the other form of an acronym (`acronym_cover`)."""
        span_q = [q for cl in span for q in cl.quantities]
        words = claim_words(claim)
        for cc in claim.clauses:
            for q in cc.quantities:
                if any(matches(q, s) for s in span_q) or self._worked_out(cc, q, span, span_q, words):
                    continue
                if pair_reference(cc, q, span, passage) or bound_instance(q, claim, span):
                    continue  # "between the two groups"; "under 12, so a 10-year-old ..."
                return f"number: {q.text}{' ' + q.unit if q.unit else ''} is not in the source"
        for cc in claim.clauses:
            gap = quantifier_gap(cc, span)
            if gap:
                return gap
        low = plain_words(text)
        spelled = {name_key(x) for cl in span for x in cl.entities}
        names = [e for e in dict.fromkeys(claim.entities) if is_proper_name(e, claim.text)]
        # "West Nile virus" where the source says "WNV"
        found = [e for e in names if contains_name(low, e) or name_key(e) in spelled
                 or set(e.lower().replace("-", " ").split()) <= cover]
        for e in names:
            # "in Wales, Scotland and the north": an addition; "ran on 12 hectares ... in Denmark": a place the
            # whole source never names
            if e not in found and (found or passage and not contains_name(passage, e)):
                return f"name: '{e}' is not in the source"
        if _only_asks(text, claim.terms) and not _only_asks(claim.text):
            return "question: the source sets out to find this; it does not state it"
        return None

    @staticmethod
    def _worked_out(cc: Clause, q: Quantity, span: list[Clause], pool: list[Quantity], words: set[str]) -> bool:
        """The claim's figure follows from the source's own: arithmetic on two of them, a time moved by a
        duration, the other side of a stated limit, the months between two dated months."""
        return bool(derived(q, pool, words) or shifted_time(cc, q, span) or implied_bound(q, span)
                    or month_span(q, span))

    def _quantity_conflict(self, claim: Analysis, span: list[Clause], entire: bool = False) -> str | None:
        pool, words, said = [s for cl in span for s in cl.quantities], claim_words(claim), frozenset(claim.terms)
        for cc in claim.clauses:
            for q in cc.quantities:
                if not any(matches(q, s) for s in pool) and self._worked_out(cc, q, span, pool, words):
                    continue  # "rose by 15" from "from 80 to 95": arithmetic on the source's own figures
                bounded = _opposite_bound(cc, q, span) if entire else None
                reason = bounded or misplaced(cc, q, span, said, self.lexicon) or wrong_value(cc, q, span)
                if reason:
                    return reason
        return None

    # -- embeddings (optional) ----------------------------------------------------------------------------------
    def _vectors_for(self, texts: Sequence[str]) -> None:
        """Embed every text not yet cached in one batch (word lists are embedded once per verifier)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if not todo:
            return
        if len(self._vectors) > 20000:
            self._vectors.clear()
        for t, v in zip(todo, self.embedder.embed(todo), strict=True):
            self._vectors[t] = np.asarray(v, dtype=np.float32)

    def _vector(self, text: str) -> np.ndarray:
        self._vectors_for([text])
        return self._vectors[text]

    def _antonym(self, word: str, span_terms: set[str]) -> bool:
        """A negated claim word is found through its opposite: "have not won" in "have lost"."""
        return bool(opposites_of(word, self.lexicon) & span_terms)

    def _synonym(self, word: str, span_terms: set[str]) -> bool:
        if not span_terms or len(word) < 3:
            return False
        if self.lexicon and any(lexicon.related(word, t) for t in span_terms):
            return True
        if self.embedder is None:
            return False
        others = sorted(t for t in span_terms if len(t) >= 3)
        if not others:
            return False
        self._vectors_for([word, *others])
        matrix = np.stack([self._vectors[t] for t in others])
        return bool(float(np.max(matrix @ self._vectors[word])) >= self.settings.synonym)

    def _semantic(self, claim: str, span: str) -> float:
        if self.embedder is None:
            return 0.0
        return float(self._vector(claim) @ self._vector(span))


@dataclass(frozen=True)
class Result:
    verdict: str
    coverage: float
    reason: str
    span: str  # the premise span the verdict was reached on (the quote)

    @property
    def entailment_score(self) -> float:
        return max(self.entailment.entail, self.entailment.neutral, self.entailment.contradict)

    @property
    def entailment(self) -> Entailment:
        c = max(0.0, min(1.0, self.coverage))
        scores = {"supported": (max(c, 0.51), 0.0, 0.0), "unsupported": (0.0, max(1 - c, 0.51), 0.0),
                  "contradicted": (0.0, 0.0, max(c, 0.51))}[self.verdict]
        return Entailment(*scores, reason=self.reason)
