"""What a claim check needs to know about a sentence: lemmas, quantities (number + unit), named entities,
clauses, negation, direction and quantifier words.

Kept libraries do the language work: `lemminflect` lemmatises (rose → rise, went → go, higher → high); numbers,
units and their arithmetic are read in `assistant.entailment.numbers` (`number-parser`, `pint`). The word lists
below are only the closed classes no library names for us: negators, quantifiers and direction words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from assistant.entailment.numbers import (
    BOUND_WORDS,
    NUMBER_WORDS,
    Quantity,
    is_year_text,
    normalise,
    read_quantities,
    unit_of,
)
from assistant.prompting import STOPWORDS

NEGATORS = frozenset(["not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "n't",
                      "nowhere"])
# words that carry a negation of another word: "excludes" = "does not include"
NEGATIVE_OF = {"exclude": "include", "lack": "have", "absent": "present", "fail": "succeed", "unable": "able",
               "prohibit": "allow", "forbid": "allow", "deny": "confirm", "reject": "accept", "omit": "include",
               "unavailable": "available", "impossible": "possible", "ineffective": "effective",
               "unsafe": "safe", "unsupported": "supported", "insufficient": "sufficient", "ban": "allow",
               "prevent": "allow", "refuse": "accept", "ineligible": "eligible", "invalid": "valid",
               "exempt": "subject", "unaffected": "affected"}
# verbs that deny what follows them: "avoid cutting into old wood" = "without cutting into old wood", "fixes a crash"
# = "no longer crashes"
SCOPED_NEGATORS = frozenset(["avoid", "avoids", "avoided", "avoiding", "fixes", "fixing", "resolves", "resolving",
                             "eliminates", "eliminating", "eliminated", "refrain", "refrains", "refrained"])
# direction: a change ("rose", "was cut") or a comparison ("higher", "fewer", "more", "below"). A plain adjective is
# a description, not a direction: "large projects", "a high-fibre diet", "cold water".
_CHANGE_UP = ("increase rise grow gain raise boost climb jump improve expand soar surge exceed strengthen accelerate "
              "add enlarge widen lengthen double triple upgrade extend heighten deepen intensify "
              "induce stimulate promote enhance upregulate elevate augment amplify")
_CHANGE_DOWN = ("decrease fall decline drop reduce plunge slump shrink cut weaken decelerate remove narrow shorten "
                "halve downgrade worsen deteriorate lower lessen diminish ease slow contract "
                "inhibit suppress attenuate downregulate impair repress abolish counteract")
_SCALE_UP = "high great large big fast long heavy warm hot strong wide deep many much"
_SCALE_DOWN = "low small little slow short light cool cold weak narrow shallow few"
_ALWAYS_UP = "more most above over up max maximum peak"
_ALWAYS_DOWN = "less least fewer fewest below under down min minimum trough"
CHANGE_UP, CHANGE_DOWN = frozenset(_CHANGE_UP.split()), frozenset(_CHANGE_DOWN.split())
SCALE_UP, SCALE_DOWN = frozenset(_SCALE_UP.split()), frozenset(_SCALE_DOWN.split())
ALWAYS_UP, ALWAYS_DOWN = frozenset(_ALWAYS_UP.split()), frozenset(_ALWAYS_DOWN.split())
UP = CHANGE_UP | SCALE_UP | ALWAYS_UP
DOWN = CHANGE_DOWN | SCALE_DOWN | ALWAYS_DOWN
# pairs that are opposites without being up/down
OPPOSITES = {frozenset(p.split()) for p in (
    "before after", "first last", "earlier later", "early late", "begin end", "start finish", "open close",
    "inside outside", "enable disable", "accept reject", "allow prohibit", "win lose", "buy sell", "import export",
    "north south", "east west", "left right", "young old", "old new", "cheap expensive", "wet dry", "on off",
    "input output", "internal external", "public private", "male female", "daily weekly", "weekly monthly",
    "daily monthly", "monthly annual", "monthly yearly", "precede follow", "prior after", "former latter",
    "minimum maximum", "lower upper", "better worse", "good bad", "success failure", "benefit harm", "safe unsafe",
    "include exclude", "true false", "always never", "mandatory optional", "required optional", "direct indirect",
    "high low", "large small", "big small", "fast slow", "long short", "heavy light", "hot cold", "warm cool",
    "strong weak", "wide narrow", "deep shallow", "many few", "positive negative", "gain loss", "profit loss",
    "common uncommon", "common rare", "keep lose", "pass fail", "guilty innocent", "legal illegal", "frequent rare",
    "dry sweet", "light dark", "increase decrease")}
# a precedence word in the claim reversed against the source ("A before B" vs "B before A")
ORDER = frozenset(["before", "after", "precede", "follow", "prior", "earlier", "later"])
ALL_Q = frozenset(["all", "every", "each", "always", "entire", "whole", "everyone", "everything", "entirely",
                   "exclusively", "completely", "fully", "wholly", "full", "throughout"])
MOST_Q = frozenset(["most", "majority", "mostly", "usually", "generally"])
SOME_Q = frozenset(["some", "several", "few", "many", "sometimes", "occasionally", "part", "minority", "certain",
                    "rarely", "seldom"])
NONE_Q = frozenset(["none", "no", "never", "nobody", "nothing"])
ONLY_Q = frozenset(["only", "solely"])  # a restriction: "only on the ground floor" against "every storey"

_TOKEN = re.compile(r"[$€£¥]|n't|[A-Za-z]+(?:-[A-Za-z]+)*-?\d[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*|\d+[A-Za-z]+\d[A-Za-z0-9]*|"
                    r"\d+(?:\.\d+){2,}|\d{1,2}:\d{2}(?!\d)|\b\d[KGD]\b|\d+(?:\.\d+)?|[A-Za-z][A-Za-z'’]*(?:-[A-Za-z]+)*|%|°[CF]|[A-Za-z0-9]+")
_ALNUM = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_CLAUSE = re.compile(r"\s*(?:[,;]|:(?!\d)|\s(?:and|plus(?= [a-z])|but|while|whereas|although|though|which|whose|who|"
                     r"where|because|since|so|yet|or)\s)\s*|\s(?=(?:in order |so as )?to (?:avoid|prevent)\b)", re.I)


@dataclass
class Clause:
    words: list[str]  # lower-case surface words
    lemmas: list[str]  # lemmas of the content words, in order
    quantities: list[Quantity] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    negations: int = 0
    negated: set[str] = field(default_factory=set)  # the content lemmas a negation applies to (its scope)
    link: str = ""  # the connective that joined it to the clause before ("which", "and", ","; "" for the first)

    @property
    def terms(self) -> set[str]:
        return set(self.lemmas)

    @property
    def units(self) -> set[str]:
        return {lemma(w) for q in self.quantities if q.unit_word for w in re.split(r"[\s-]+", q.unit_word)}

    @property
    def name_words(self) -> set[str]:
        """The words of the names the clause gives ('kestrel', '5' for 'Kestrel 5')."""
        return {w for e in self.entities for w in e.split()}


@dataclass
class Analysis:
    text: str
    clauses: list[Clause]

    @property
    def terms(self) -> set[str]:
        return set().union(*(c.terms for c in self.clauses)) if self.clauses else set()

    @property
    def quantities(self) -> list[Quantity]:
        return [q for c in self.clauses for q in c.quantities]

    @property
    def entities(self) -> list[str]:
        return [e for c in self.clauses for e in c.entities]

    @property
    def words(self) -> set[str]:
        return {w for c in self.clauses for w in c.words}

    @property
    def name_words(self) -> set[str]:
        return set().union(*(c.name_words for c in self.clauses)) if self.clauses else set()


@lru_cache(maxsize=8192)
def readings(word: str) -> dict[str, tuple[str, ...]]:
    """lemminflect's lemmas of a word by part of speech ({'VERB': ('lift',)}), cached: every check asks often."""
    from lemminflect import getAllLemmas

    return dict(getAllLemmas(word))


@lru_cache(maxsize=4096)
def lemma(word: str) -> str:
    """The lemma lemminflect gives, preferring verb, then noun, then adjective readings for an unknown POS."""
    from lemminflect import getAllLemmasOOV

    w = word.lower().replace("’", "'")
    if w in STOPWORDS or w in NEGATORS or not w.isalpha():
        return w
    found = readings(w)
    for pos in ("VERB", "ADJ", "NOUN", "ADV"):
        if pos in found:
            # "rose" is a noun and a past tense: the verb reading matters for direction checks
            return str(found[pos][0])
    oov = getAllLemmasOOV(w, upos="NOUN")
    return str(oov.get("NOUN", (w,))[0]) if oov else w


@lru_cache(maxsize=4096)
def is_noun(lem: str) -> bool:
    found = readings(lem)
    return set(found) == {"NOUN"} or (not found and lem.isalpha())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalise(text))


def analyse(text: str) -> Analysis:
    clean = normalise(text)
    # a range is one clause: "between 2019 and 2024", "between 900 and 1000 mm"
    clean = re.sub(r"\b(between\s+\S*\d\S*)\s+and\s+(?=\S*\d)", r"\1 to ", clean, flags=re.I)
    pieces: list[tuple[str, str]] = []  # (the clause, the connective before it: "which", "and", ",")
    last, link = 0, ""
    for m in [*_CLAUSE.finditer(clean), None]:
        piece = clean[last: m.start() if m else len(clean)]
        if piece.strip():
            pieces.append((piece, link))
            link = ""
        if m is not None:
            link = f"{link} {m.group(0).strip().lower()}".strip()
            last = m.end()
    clauses = []
    for i, (piece, link) in enumerate(pieces):
        clause = _clause(piece, first=i == 0)
        clause.link = link
        clauses.append(clause)
    return Analysis(text, [c for c in clauses if c.words])


def _clause(piece: str, first: bool = True) -> Clause:
    toks = _TOKEN.findall(piece)
    words = [t.lower() for t in toks]
    entities = _entities(toks, first)
    quantities = read_quantities(toks)
    entity_numbers = {w for e in entities for w in e.split() if w.isdigit()}
    quantities = [q for q in quantities if not (q.text.isdigit() and q.text in entity_numbers and not q.unit)]
    lemmas, negations, negated, scope, bounded = [], 0, set(), 0, False
    parts = [part for word in words for part in _parts(word)]
    for k, w in enumerate(parts):
        if w in SCOPED_NEGATORS or (w in ("fixed", "resolved") and k + 1 < len(parts) and parts[k + 1] in _DET):
            negations += 1
            scope = SCOPE
            lemmas.append(lemma(w))
            continue
        if w in NEGATORS or w == "non":  # "non" only ever comes from a compound: "non-refundable"
            if not (w == "nor" and "neither" in parts[:k]):  # "neither A nor B" is one negation
                negations += 1
            scope = 1 if w == "non" else SCOPE
            bounded = w in _BOUNDED  # "withdrawals without penalty per calendar year": the penalty only
            continue
        if bounded and w in _PREPOSITIONS:
            scope = 0
        if w in STOPWORDS or not re.search(r"[a-z]", w) or w in NUMBER_WORDS:
            continue
        if w in BOUND_WORDS and any(re.match(r"\d", x) for x in parts[k + 1: k + 3]):
            continue  # "just over 0.5 hour", "under 12": the figure's bound, which the figure itself carries
        lem = lemma(w)
        if lem in NEGATIVE_OF:
            negations += 1
            lem = NEGATIVE_OF[lem]
            negated.add(lem)
        elif scope:
            negated.add(lem)
            scope -= 1
        lemmas.append(lem)
    return Clause(words, lemmas, quantities, entities, negations, negated)


_BOUNDED = frozenset(["without", "nobody", "nothing", "none"])  # negators whose scope ends at a preposition
_PREPOSITIONS = frozenset(["per", "in", "on", "at", "for", "of", "by", "from", "to", "during", "within", "after",
                           "before", "until"])
_DET = frozenset(["a", "an", "the", "this", "that", "these", "those", "two", "several", "some", "an"])
SCOPE = 3  # content words after a negator that it applies to ("does not last 14 hours": last, hour)


_CONTRACTED = {"can't": "can", "won't": "will", "shan't": "shall", "ain't": "be"}


def _parts(word: str) -> list[str]:
    """'user-serviceable' -> user, serviceable (a hyphenated compound says what its parts say); codes stay whole;
    a contracted negation is its verb and a negator ("aren't" -> are, n't; "won't" -> will, n't)."""
    if word.endswith("n't") and len(word) > 3:
        return [_CONTRACTED.get(word, word[:-3]), "n't"]
    if "-" in word and not re.search(r"\d", word):
        return [p for p in word.split("-") if p]
    return [word.strip("'")] if word.strip("'") else []


def _entities(toks: list[str], first: bool = True) -> list[str]:
    """Names the claim commits to: capitalised words (not sentence-initial), codes like X2 or COVID-19, and a
    name with its number ('Kestrel 3')."""
    out: list[str] = []
    skip = 0
    for i, t in enumerate(toks):
        low = t.lower()
        if skip:
            skip -= 1
            continue
        named = _numbered_name(toks, i, first)
        if named:
            out.append(" ".join(x.lower() for x in toks[i: i + named]))
            skip = named - 1
            continue
        if ((_ALNUM.fullmatch(t) and not re.fullmatch(r"\d+(?:st|nd|rd|th|s)", low))
                or re.fullmatch(r"\d+(?:\.\d+){2,}", t)):
            out.append(low)  # a code (X2, COVID-19) or a version (2.6.4)
        elif i and (re.fullmatch(r"\d+(?:\.\d+)?", toks[i - 1]) or toks[i - 1].lower() == "per") and unit_of(t):
            continue  # the unit of a figure ('0.6 MHz', '5 kWh', '£2 per GB'), not a name
        elif t[:1].isupper() and t.isalpha() and low not in STOPWORDS and (i > 0 or not first
                                                                             or t.isupper() and len(t) > 1
                                                                             or _unknown_word(low)):
            nxt = toks[i + 1] if i + 1 < len(toks) else ""
            then = toks[i + 2] if i + 2 < len(toks) else ""
            # 'Kestrel 3', not 'reached Tromso 25 minutes late' (a number with its unit is a quantity)
            # nor 'beat Harbour United 3-2' (a score or a range: another figure follows)
            numbered = (nxt.isdigit() and len(nxt) < 4 and not unit_of(then) and then not in ("%", "percent")
                        and not then.isdigit())
            out.append(f"{low} {nxt}" if numbered else low)
    return out


MONTHS = frozenset(["january", "february", "march", "april", "may", "june", "july", "august", "september",
                    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
                    "oct", "nov", "dec"])


def _titled(t: str) -> bool:
    return t[:1].isupper() and t.isalpha() and t.lower() not in STOPWORDS and t.lower() not in MONTHS


@lru_cache(maxsize=4096)
def can_be_noun(word: str) -> bool:
    """A noun in one of its readings ('factors', 'residents'), or a word lemminflect does not know."""
    found = readings(word)
    return not found or "NOUN" in found


def _numbered_name(toks: list[str], i: int, first: bool) -> int:
    """How many tokens from `i` make a name that holds a number (0: none): a house number and its street
    ('14 Alder Close', two capitalised words after the number), or a sentence-opening name with its model number
    ('Nimbus 30 has ...', 'Chapter 3 explains ...'; 'The Kestrel 3' is read below)."""
    t = toks[i]
    after = toks[i + 1: i + 3]
    then = toks[i + 3] if i + 3 < len(toks) else ""
    if (t.isdigit() and len(t) <= 4 and not is_year_text(t) and len(after) == 2
            and all(_titled(x) for x in after) and (i == 0 or not _titled(toks[i - 1]))
            and not (then.islower() and then.isalpha() and can_be_noun(then))):  # "40 New York residents"
        return 3
    if (i == 0 and first and _titled(t) and is_noun(t.lower()) and len(toks) > 1 and toks[1].isdigit()
            and len(toks[1]) < 4):
        nxt = toks[2] if len(toks) > 2 else ""
        if not nxt or nxt.lower() in STOPWORDS or not is_noun(lemma(nxt)):
            return 2
    return 0


@lru_cache(maxsize=4096)
def _unknown_word(low: str) -> bool:
    """Not an English word lemminflect knows: a capitalised first word like this is a name ('Firmicutes ...')."""
    return len(low) > 2 and not readings(low)


_UP_VERBS = frozenset(["go", "move", "step", "climb", "shoot", "jump", "rise", "push", "scale", "ramp", "speed"])


_NOMINAL_CHANGES = {"reduction": "reduce", "reductions": "reduce", "growth": "grow", "expansion": "expand",
                    "contraction": "contract", "improvement": "improve", "deterioration": "deteriorate",
                    "elevation": "elevate", "inhibition": "inhibit", "suppression": "suppress"}


def direction_words(words: Iterable[str]) -> list[tuple[str, str]]:
    """The (word, "up" | "down") pairs of a clause's surface words: changes, comparatives, and bound words."""
    out = []
    seq = list(words)
    for i, w in enumerate(seq):
        if w == "up" and i + 1 < len(seq) and seq[i + 1] == "to" and (i == 0 or lemma(seq[i - 1]) not in _UP_VERBS):
            continue  # "up to 20%": a bound ("rose up to" and "went up to" still say up)
        lem = _NOMINAL_CHANGES.get(w, lemma(w))  # "a 12% reduction" is "reduce"
        if lem in CHANGE_UP or w in ALWAYS_UP or (w != lem and lem in SCALE_UP and w.endswith(("er", "est"))):
            out.append((w, "up"))
        elif lem in CHANGE_DOWN or w in ALWAYS_DOWN or (w != lem and lem in SCALE_DOWN and w.endswith(("er", "est"))):
            out.append((w, "down"))
    return out


def direction(words: Iterable[str]) -> set[str]:
    return {d for _, d in direction_words(words)}


def quantifier_words(words: Iterable[str]) -> set[str]:
    """A clause's words less the bounds that look like quantifiers: 'at most 70%', 'at least 30 g'."""
    seq = list(words)
    return {w for i, w in enumerate(seq) if not (w in ("most", "least") and i and seq[i - 1] == "at")
            and not (w in ("every", "each") and i + 1 < len(seq) and _rate(seq, i))}


def _rate(seq: list[str], i: int) -> bool:
    """'every 90 minutes', 'every hour', 'for every pound', 'each month': how often or how much per, not all of a
    thing."""
    nxt = seq[i + 1]
    return bool(re.match(r"\d", nxt)) or bool(unit_of(nxt)) or (i > 0 and seq[i - 1] == "for")


def quantifier(words: Iterable[str]) -> str:
    ws = quantifier_words(words)
    for name, group in (("none", NONE_Q), ("all", ALL_Q), ("most", MOST_Q), ("some", SOME_Q), ("only", ONLY_Q)):
        if ws & group:
            return name
    return ""


