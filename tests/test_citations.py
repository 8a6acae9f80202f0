"""Citation parsing and verification: supported sentences stay, unsupported ones go, bad refs vanish."""

from __future__ import annotations

import pytest

from assistant.citations import Verifier, VerifySettings, is_abstention, parse_claims
from assistant.types import ABSTAIN_TEXT, Source
from retrieval.fakes import HashEmbedder

SOURCES = [
    Source(1, "manual.pdf", "d1", 3, "text", "The Aurora X2 battery lasts 14 hours of continuous playback. "
           "Charging takes 90 minutes.", bbox=(1.0, 2.0, 3.0, 4.0), chunk_id="c1"),
    Source(2, "manual.pdf", "d1", 7, "text", "The warranty covers manufacturing defects for two years."),
    Source(3, "report.pdf", "d2", 1, "figure", "Figure: revenue grew from 1,200 to 1,850 million in 2023."),
]


@pytest.mark.parametrize("text, expected", [
    ("The battery lasts 14 hours [1].", [("The battery lasts 14 hours.", (1,))]),
    ("The battery lasts 14 hours. [1] Warranty is two years [2].",
     [("The battery lasts 14 hours.", (1,)), ("Warranty is two years.", (2,))]),
    ("Both [1, 2]. Range [1-3]. Pair [1][3]. Word [Source 2].",
     [("Both.", (1, 2)), ("Range.", (1, 2, 3)), ("Pair.", (1, 3)), ("Word.", (2,))]),
    ("No citation here.", [("No citation here.", ())]),
    ("[1]", []),
])
def test_parse_claims(text: str, expected: list[tuple[str, tuple[int, ...]]]):
    assert [(c.text, c.cited) for c in parse_claims(text)] == expected


def test_supported_sentence_is_kept_with_a_structured_citation():
    result = Verifier().verify("The battery lasts 14 hours [1].", SOURCES, "How long does the battery last?")
    assert not result.abstained and result.text == "The battery lasts 14 hours [1]."
    (c,) = result.citations
    assert (c.n, c.doc, c.page, c.bbox, c.chunk_id, c.verified) == (1, "manual.pdf", 3, (1.0, 2.0, 3.0, 4.0),
                                                                    "c1", True)
    assert c.quote == "The Aurora X2 battery lasts 14 hours of continuous playback."


def test_unsupported_and_wrong_number_and_missing_source_are_dropped():
    answer = ("The battery lasts 14 hours [1]. The battery lasts 20 hours [1]. "
              "The device can fly to the moon [2]. Warranty is two years [9].")
    result = Verifier().verify(answer, SOURCES, "battery?")
    # [9] does not exist: the reference is removed, and the sentence re-attributed to the source that supports it
    assert result.text == "The battery lasts 14 hours [1]. Warranty is two years [2]."
    assert "The battery lasts 20 hours." in result.dropped  # a number the source does not state
    assert "The device can fly to the moon." in result.dropped
    assert result.invalid_refs == [9]
    assert [(c.n, c.inferred) for c in result.citations] == [(1, False), (2, True)]
    strict = Verifier(VerifySettings(infer_missing=False)).verify(answer, SOURCES, "battery?")
    assert strict.text == "The battery lasts 14 hours [1]."


def test_wrong_citation_number_is_re_attributed_and_marked_and_uncited_sentence_is_attributed():
    result = Verifier().verify("The warranty covers defects for two years [1].", SOURCES)
    # cited [1] (battery), which does not support it: [1] is never accepted; source 2 does support it
    assert [(c.n, c.verified, c.inferred) for c in result.citations] == [(2, True, True)]
    assert result.text == "The warranty covers defects for two years [2]."
    strict_wrong = Verifier(VerifySettings(infer_missing=False)).verify(
        "The warranty covers defects for two years [1].", SOURCES)
    assert strict_wrong.abstained
    inferred = Verifier().verify("The warranty covers defects for two years.", SOURCES)
    assert [(c.n, c.inferred) for c in inferred.citations] == [(2, True)]
    strict = Verifier(VerifySettings(infer_missing=False)).verify("The warranty covers defects for two years.", SOURCES)
    assert strict.abstained


def test_flag_mode_keeps_unsupported_sentences_marked():
    result = Verifier(VerifySettings(mode="flag")).verify(
        "The battery lasts 14 hours [1]. It is waterproof to 100 m [1].", SOURCES)
    assert "(unverified)" in result.text and not result.abstained
    assert [c.verified for c in result.citations] == [True, False]


def test_nothing_supported_means_abstain():
    result = Verifier().verify("Paris is the capital of France [1].", SOURCES, "capital of France?")
    assert result.abstained and result.text == ABSTAIN_TEXT and not result.citations


def test_threshold_is_configurable():
    sentence = "The battery gives 14 hours of music playback [1]."  # 'give' and 'music' are not in the source
    assert Verifier(VerifySettings(coverage=0.5)).verify(sentence, SOURCES).citations
    assert Verifier(VerifySettings(coverage=0.95, semantic=1.0)).verify(sentence, SOURCES).abstained
    with pytest.raises(ValueError):
        VerifySettings(coverage=1.5)


def test_support_names_its_span_verdict_and_reason():
    verifier = Verifier(embedder=HashEmbedder(64))
    support = verifier.support("Charging takes 90 minutes", SOURCES[0])
    assert support.supported and support.quote == "Charging takes 90 minutes."
    wrong = verifier.support("Charging takes 14 hours", SOURCES[0])
    assert wrong.verdict == "contradicted" and "14" in wrong.reason
    result = verifier.verify("Charging takes 90 minutes [1]. Charging takes 14 hours [1].", SOURCES)
    assert [(c.verdict, c.shown) for c in result.checks] == [("supported", True), ("contradicted", False)]


def test_numbers_with_separators_match():
    result = Verifier().verify("Revenue grew to 1,850 million in 2023 [3].", SOURCES)
    assert [c.n for c in result.citations] == [3]


@pytest.mark.parametrize("text", [ABSTAIN_TEXT, "The sources do not contain this information.",
                                  "I cannot answer that from the documents."])
def test_abstention_phrases(text: str):
    assert is_abstention(text)
    assert Verifier().verify(text, SOURCES).abstained


def test_a_supported_negative_is_an_answer_not_an_abstention():
    sources = [Source(1, "terms.pdf", "d3", 2, "text", "Water damage is excluded from the standard warranty.")]
    result = Verifier().verify("The standard warranty does not include water damage [1].", sources)
    assert not result.abstained and result.citations[0].verdict == "supported"
    unsupported = Verifier().verify("The standard warranty does not include theft [1].", sources,
                                    "Does the standard warranty include theft?")
    assert unsupported.abstained


def test_flag_mode_never_shows_a_contradicted_sentence():
    result = Verifier(VerifySettings(mode="flag")).verify(
        "The battery lasts 14 hours [1]. The battery does not last 14 hours [1].", SOURCES)
    assert result.text == "The battery lasts 14 hours [1]."
    assert [c.verdict for c in result.checks] == ["supported", "contradicted"]


PAGE_BREAK = [
    Source(1, "watch.pdf", "w", 24, "text", "If \"--\" is displayed as the resting heart rate reading, the watch could "
           "not measure it. In this case, ensure that you"),
    Source(2, "watch.pdf", "w", 25, "text",
           "measure your resting heart rate in a quiet and relaxed environment when you "
           "are awake. Measure it right after you wake up."),
    Source(3, "other.pdf", "o", 25, "text",
           "measure your resting heart rate in a quiet and relaxed environment when you "
           "are awake."),
]


@pytest.mark.parametrize("sources, kept", [(PAGE_BREAK[:2], True), (PAGE_BREAK[1::-1], True),
                                           ([PAGE_BREAK[0], PAGE_BREAK[2]], False)])
def test_a_sentence_across_a_page_break_is_supported_by_both_pages_of_one_document(sources, kept):
    claim = ("If \"--\" is displayed as the resting heart rate reading, the user should stay in a quiet and relaxed "
             "environment when they are awake.")
    result = Verifier().verify(claim + " [1]", sources, "What should I do if -- is displayed?")
    assert result.abstained is not kept
    if kept:
        assert sorted((c.doc, c.page, c.verified) for c in result.citations) == [("watch.pdf", 24, True),
                                                                                ("watch.pdf", 25, True)]


def test_a_contradiction_across_a_page_break_is_not_verified():
    claim = ("If \"--\" is displayed as the resting heart rate reading, the user should stay in a quiet and relaxed "
             "environment when they are asleep.")
    result = Verifier().verify(claim + " [1]", PAGE_BREAK[:2], "What should I do if -- is displayed?")
    assert result.abstained and not any(c.verified for c in result.citations)
