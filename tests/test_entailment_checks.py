"""The offline claim checks, one case per trap, and the contract every entailment backend keeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.entailment import Entailment, EntailmentModel, build_entailment
from assistant.entailment.checks import CheckSettings, ClaimChecks
from assistant.entailment.numbers import Quantity, same_quantity
from assistant.entailment.text import analyse
from assistant.errors import UnknownEntailment
from tests.conftest import SHARED_DATA, needs_data

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = SHARED_DATA / "scifact"

P = ("The Corvid 7 drone flies for 38 minutes per charge, and a full recharge takes 2 hours. "
     "The Corvid 9 flies for 52 minutes.")


@pytest.fixture(scope="module")
def embedded_checks() -> ClaimChecks:
    """The checks as the product runs them: with the offline text embedder (synonyms, semantic closeness)."""
    from retrieval.embedders import build_text_embedder

    return ClaimChecks(build_text_embedder("minilm-q8"))


def _expect(premise: str, claim: str, verdict: str) -> None:
    r = ClaimChecks().check(premise, claim)
    assert r.verdict == verdict, r.reason


@pytest.mark.parametrize("premise, claim, verdict, reason", [
    (P, "The Corvid 7 flies for 38 minutes on a charge.", "supported", "supported"),
    (P, "Recharging the Corvid 7 takes 120 minutes.", "supported", "supported"),  # unit conversion
    (P, "A full recharge takes two hours.", "supported", "supported"),  # number word
    (P, "The Corvid 7 does not fly for 38 minutes.", "contradicted", "negation"),
    (P, "A full recharge takes 38 minutes.", "contradicted", "number"),  # a number of another clause
    (P, "The Corvid 7 flies for 52 minutes.", "contradicted", "number"),  # another entity's attribute
    (P, "The Corvid 7 flies for 38 hours.", "contradicted", "unit"),
    (P, "The Corvid 7 flies for thirty minutes.", "contradicted", "number"),
    (P, "The Corvid 7 flies for 38 minutes in rain and snow.", "unsupported", "coverage"),
    ("Exports rose 4% in 2023, while imports fell 2%.", "Exports fell 4% in 2023.", "contradicted", "direction"),
    ("Some participants reported mild headaches.", "All participants reported mild headaches.", "contradicted",
     "quantifier"),
    ("The filter is replaced before the pump is restarted.", "The pump is restarted before the filter is replaced.",
     "contradicted", "order"),
    ("The filter is replaced before the pump is restarted.", "The pump is restarted after the filter is replaced.",
     "supported", "supported"),
    ("The clinic was opened in 1994 and moved to Leeds in 2006.", "The clinic moved to Leeds in 1994.",
     "contradicted", "number"),
    ("Water damage is excluded from the basic plan.", "The basic plan does not cover water damage.", "supported",
     "supported"),
    ("The ferry runs in Norway.", "The ferry runs in Norway and Sweden.", "unsupported", "name"),
    # a negated source clause inside an affirmative claim, whichever clause shares most words with it
    ("The tenant shall not sublet, assign or share the flat with any other person.",
     "The tenant may sublet the flat to another person.", "contradicted", "negation"),
    ("Gift cards can be exchanged but not refunded.", "Gift cards can be refunded at any store.", "contradicted",
     "negation"),
    # a negative prefix is a negation of the plain word the other side uses
    ("Weekend opening hours are unchanged.", "There are no changes to the weekend opening hours.", "supported",
     "supported"),
    ("The deposit is non-refundable.", "The deposit is refundable.", "contradicted", "negation"),
    # a day of the month dates its whole sentence, like a year
    ("From 3 May, trains will run every 20 minutes instead of every 30 minutes.",
     "Trains will run every 20 minutes from 3 May.", "supported", "supported"),
    # a negated claim is judged where the source speaks of the same subject
    ("Rent is $900 a month, including water; electricity and internet are paid by the tenant.",
     "Internet is not included in the rent.", "supported", "supported"),
])
def test_each_trap(premise: str, claim: str, verdict: str, reason: str):
    r = ClaimChecks().check(premise, claim)
    assert (r.verdict, r.reason.split(":")[0]) == (verdict, reason), r.reason


FEE = "From 1 April the permit fee will rise from £80 to £95 a year, and 30% of the 1,200 permits go to residents."


BREAKFAST = "Check-in is from 3 pm and check-out is by 11 am. Breakfast is included in all rates except the Saver rate."


@pytest.mark.parametrize("premise, claim, verdict", [
    (FEE, "The permit fee increases by £15 a year.", "supported"),  # a difference the claim says it is
    (FEE, "The permit fee increases by £25 a year.", "contradicted"),
    (FEE, "The permit fee will be £15 a year.", "contradicted"),  # no arithmetic cue: 15 is not the fee
    (FEE, "360 of the 1,200 permits go to residents.", "supported"),  # 30% of 1,200
    (FEE, "400 of the 1,200 permits go to residents.", "contradicted"),
    ("The college was founded in 1887 and gained university status in 1965.",
     "The college gained university status in 1965, 78 years after it was founded.", "supported"),
    ("The college was founded in 1887 and gained university status in 1965.",
     "The college gained university status in 1965, 68 years after it was founded.", "contradicted"),
    ("Trains take 1 hour 50 minutes.", "Trains take 110 minutes.", "supported"),  # a compound duration
    ("Trains take 1 hour 50 minutes.", "Trains take 100 minutes.", "contradicted"),
    ("The college enrols 21,000 students, a third of them postgraduates.",
     "Roughly 7,000 of the college's 21,000 students are postgraduates.", "supported"),  # a spoken share
    ("The college enrols 21,000 students, a third of them postgraduates.",
     "Roughly 9,000 of the college's 21,000 students are postgraduates.", "contradicted"),
    ("Two thirds of the 900 trees survived the winter.", "600 of the 900 trees survived the winter.", "supported"),
    ("Food waste collections now serve 80% of households.", "Four in five households are served by food waste "
     "collections.", "supported"),
    ("Food waste collections now serve 80% of households.", "Three in five households are served by food waste "
     "collections.", "contradicted"),
    ("The handrail must be between 900 mm and 1,000 mm high.", "The handrail should be 90 to 100 centimetres high.",
     "supported"),  # a range: the first number has the second's unit
    ("The Standard plan and the Premier plan both exclude pre-existing conditions.",
     "Neither the Standard nor the Premier plan covers pre-existing "
     "conditions.", "supported"),  # neither ... nor is one negation
    ("Using fuel with more than 10% ethanol may damage the engine and is not covered by the warranty.",
     "Damage from fuel with more than 10% ethanol is not covered by the warranty.", "supported"),  # negation scope
    ("Using fuel with more than 10% ethanol may damage the engine and is covered by the warranty.",
     "Damage from fuel with more than 10% ethanol is not covered by the warranty.", "contradicted"),
    ("The Aurora X2 battery lasts 14 hours.", "The Aurora X2 battery doesn't last 14 hours.", "contradicted"),
    ("The Aurora X2 battery lasts 14 hours.", "The Aurora X2 battery won’t last 14 hours.", "contradicted"),
    ("The warranty does not cover water damage.", "The warranty doesn't cover water damage.", "supported"),
    ("The warranty does not cover water damage.", "The warranty covers water damage.", "contradicted"),
    # an exception: the negated claim about the excepted thing agrees, the affirmed one contradicts
    ("Mount Ketter rises to 2,914 metres.", "Mount Ketter rises to 2,914 feet.", "contradicted"),  # 'feet'
    ("The fence is 1.83 metres high.", "The fence is 6 feet high.", "supported"),  # a conversion, rounded
    ("The fence is 1.83 metres high.", "The fence is 7 feet high.", "contradicted"),
    ("The route is 100 km long.", "The route is 62 miles long.", "supported"),
    ("The route is 100 km long.", "The route is 60 miles long.", "contradicted"),
    (BREAKFAST, "Breakfast is not included with the Saver rate.", "supported"),
    (BREAKFAST, "Breakfast is included in the Saver rate.", "contradicted"),
    (BREAKFAST, "Breakfast is not included in the Flex rate.", "contradicted"),
    ("Items can be renewed twice online unless another member has reserved them.",
     "Items reserved by another member cannot be renewed online.", "supported"),
    ("Items can be renewed twice online unless another member has reserved them.",
     "Items reserved by another member can be renewed online.", "contradicted"),
    ("Dark mode is available on all platforms except Linux, where it remains experimental.",
     "On Linux, dark mode remains experimental.", "supported"),  # the exception's own clause, not the rule's
])
def test_arithmetic_ratios_ranges_and_negation_scope(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    ("Startup time has been reduced by about 40% on large projects.",
     "Startup time increased by about 40% on large projects.", "contradicted"),  # 'large' describes, 'reduced' moves
    ("Startup time has been reduced by about 40% on large projects.",
     "Startup time fell by about 40% on large projects.", "supported"),
    ("Bacteroides abundance was 2.3-fold higher in the high-fibre group.",
     "Bacteroides abundance was 2.3-fold lower in the high-fibre group.", "contradicted"),
    ("Dizziness is common with Lorvex.", "Dizziness is uncommon with Lorvex.", "contradicted"),  # base-form opposites
    ("Bacteroides abundance was 2.3-fold higher in the high-fibre group, whereas Firmicutes abundance was lower.",
     "Firmicutes abundance was 2.3-fold higher in the high-fibre group.", "contradicted"),  # a first-word name
])
def test_direction_is_a_change_or_a_comparison_not_a_description(premise: str, claim: str, verdict: str):
    assert ClaimChecks().check(premise, claim).verdict == verdict


TOUR = "The quartet will tour 14 cities, opening in Lyon on 2 October and closing in Prague on 19 November."


@pytest.mark.parametrize("premise, claim, verdict", [
    ("Aldric later moved the royal court from Pellam to Tarsk.", "Aldric moved the royal court from Tarsk to Pellam.",
     "contradicted"),
    ("Aldric later moved the royal court from Pellam to Tarsk.", "Aldric moved the royal court from Pellam to Tarsk.",
     "supported"),
    (TOUR, "The tour opens in Prague.", "contradicted"),  # Prague is where it closes
    (TOUR, "The tour opens in Lyon.", "supported"),
    (TOUR, "The tour closes in Prague on 19 November.", "supported"),
])
def test_names_keep_their_roles(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    ("Add 250 g of self-raising flour.", "Add a quarter of a kilogram of self-raising flour.", "supported"),
    ("Add 250 g of self-raising flour.", "Add half a kilogram of self-raising flour.", "contradicted"),
    ("The ferry crossing takes 150 minutes.", "The ferry crossing takes two and a half hours.", "supported"),
    ("Water the seedlings 2 times a week.", "Water the seedlings twice a week.", "supported"),
])
def test_fractions_of_units(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


TREATY = ("The Treaty of Calvessa was signed in 1648, ending a long war. The treaty was ratified by the Aurean "
          "parliament in 1649.")


@pytest.mark.parametrize("premise, claim, verdict", [
    (TREATY, "The Aurean parliament ratified the Treaty of Calvessa in 1648.", "contradicted"),  # the next sentence
    (TREATY, "The Aurean parliament ratified the Treaty of Calvessa in 1649.", "supported"),
    ("The trust funded 140 projects across Wales and the north of England.",
     "The trust funded 140 projects across Wales, Scotland and the north of England.", "unsupported"),  # added name
    ("Cars are banned inside the walls of the Old Town.", "Cars are allowed inside the walls of the Old Town.",
     "contradicted"),
    ("Under the treaty the duchies kept their independence.", "Under the treaty the duchies lost their independence.",
     "contradicted"),
])
def test_the_whole_source_and_named_additions(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    ("A tsunami warning issued at 04:10 was lifted an hour later.", "The warning was lifted at 05:10, an hour later.",
     "supported"),  # a time of day and a duration of the source
    ("A tsunami warning issued at 04:10 was lifted an hour later.", "The warning was issued at 05:10.",
     "contradicted"),
    ("The 2.7.0 release is compatible with MySQL 8.0.", "The 2.7.1 release is compatible with MySQL 8.0.",
     "unsupported"),  # a version is a name, not two numbers
    ("Each household can receive up to £5,000.", "Each household can receive up to five thousand pounds.",
     "supported"),
    ("In fiscal 2024 Norlake opened 12 branches and its deposits grew to $38.5 billion.",
     "Norlake's deposits grew to $38.5 billion in fiscal 2024.", "supported"),  # a year dates its sentence
    ("The direct service, introduced in 2019, was suspended in 2022.", "The direct service was suspended in 2019.",
     "contradicted"),  # ... unless the clause about the event gives another year
])
def test_times_versions_money_and_years(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_question_words_are_not_support():
    premise = "The Kestrel 5 battery lasts 14 hours."
    question = "Does the Kestrel 5 battery last 20 hours?"
    assert ClaimChecks().check(premise, "The Kestrel 5 battery lasts 20 hours.", question).verdict != "supported"
    assert ClaimChecks().check(premise, "The Kestrel 5 battery lasts 14 hours.", question).verdict == "supported"


def test_quantities_compare_by_value_and_unit():
    q = analyse("It holds 1.5 kg, 40 litres and $2.5 million.").quantities
    assert [(x.value, x.unit) for x in q] == [(1.5, "kilogram"), (40.0, "liter"), (2_500_000.0, "USD")]
    assert same_quantity(Quantity(1500, "gram", "1500"), Quantity(1.5, "kilogram", "1.5"))
    assert not same_quantity(Quantity(40, "gallon", "40"), Quantity(40, "liter", "40"))
    assert same_quantity(Quantity(0.5, "", "half"), Quantity(50, "%", "50"))


class TestEntailmentContract:
    """What every backend promises (checks here; NLI and judge in test_entailment_backends.py)."""

    @pytest.fixture
    def model(self) -> EntailmentModel:
        return build_entailment("checks")

    def test_one_score_per_pair_in_range(self, model: EntailmentModel):
        pairs = [(P, "The Corvid 9 flies for 52 minutes."), (P, "The Corvid 9 flies for 10 minutes."), (P, "Cats.")]
        out = model.score(pairs)
        assert len(out) == 3 and all(isinstance(e, Entailment) for e in out)
        assert all(0 <= x <= 1 for e in out for x in (e.entail, e.neutral, e.contradict))
        assert [e.verdict for e in out] == ["supported", "contradicted", "unsupported"]
        assert all(e.reason for e in out)
        assert model.score([]) == []

    def test_unknown_backend_is_a_clear_error(self):
        with pytest.raises(UnknownEntailment, match="checks"):
            build_entailment("nope")


def _eval(dataset: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "eval", "verify", "--dataset", dataset, "--json"],
                         capture_output=True, text=True, cwd=ROOT, check=True, timeout=600)
    return json.loads(out.stdout)


@pytest.mark.parametrize("name", ["verify_cases.jsonl", "verify_cases_holdout.jsonl"])
def test_eval_verify_on_the_adversarial_cases(name: str):
    """The shipped cases through the real CLI, held to a floor under today's figures (dev 0.93 kept / 0.91
    rejected, holdout 0.88 / 0.90; the landed lexical verifier scored 0.70 / 0.11 and 0.79 / 0.06)."""
    result = _eval(f"cases:{ROOT / 'eval' / 'data' / name}")
    assert result["cases"] >= 200
    assert result["kept_right"]["rate"] >= 0.85 and result["rejected_wrong"]["rate"] >= 0.86, result["by_kind"]
    assert result["by_kind"]["unit"]["rate"] >= 0.8 and result["by_kind"]["number_words"]["rate"] >= 0.7


@needs_data("scifact")
def test_eval_verify_on_scifact_rationales():
    result = _eval(f"scifact-claims:{SCIFACT}")
    assert result["cases"] == 300 and set(result["by_kind"]) == {"SUPPORT", "CONTRADICT", "NEI"}
    # today: SUPPORT kept 0.48, CONTRADICT rejected 0.81, NEI rejected 0.94 (landed verifier: 0.58 / 0.59 / 0.89)
    kinds = result["by_kind"]
    assert kinds["NEI"]["rate"] >= 0.9 and kinds["CONTRADICT"]["rate"] >= 0.72 and kinds["SUPPORT"]["rate"] >= 0.44


def test_eval_verify_reports_a_broken_cases_file(tmp_path: Path):
    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"source": "x", "answer": "y [1].", "expect": "supported"}\n{"source": \n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "eval", "verify", "--dataset", f"cases:{bad}"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "cases.jsonl:2: not a JSON object" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("premise, claim, verdict", [
    # a strong quantifier holds only where the source says it of the same thing
    ("An adult should aim for 30 g of fibre a day, but most adults in the survey ate around 19 g.",
     "All of the adults in the survey ate 19 g of fibre a day.", "contradicted"),
    ("Dark mode is available on all platforms except Linux.", "Dark mode is available on every platform.",
     "unsupported"),
    ("The tariff is available only to customers with a home battery.",
     "The tariff is available to all customers.", "contradicted"),
    ("The grant covers up to 70% of the cost of insulation work.", "The grant covers the full cost of insulation work.",
     "unsupported"),
    ("Smoke alarms must be installed on every storey of a new dwelling.",
     "Smoke alarms are required only on the ground floor of a new dwelling.", "contradicted"),
    ("All staff must complete the fire safety course every year.",
     "Every member of staff must complete the fire safety course each year.", "supported"),
    ("Each household can receive at most £5,000.", "Each household can receive up to £5,000.", "supported"),
    # a clause of the claim the source says nothing of is an addition, however well the rest is covered
    ("Consult your doctor if symptoms persist for more than three days.",
     "Consult your doctor if symptoms persist for more than three days or if a headache develops.",
     "unsupported"),
    ("The cut follows advice that spawning stock biomass has declined for three consecutive years.",
     "The cut follows advice that spawning stock biomass has declined for three years, and sea temperatures are "
     "rising.", "unsupported"),
])
def test_quantified_things_and_added_clauses(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # WordNet: synonyms, derivations and broader terms count as the source's words; antonyms contradict
    ("Saffron Lane takes bookings only by phone.", "Reservations at Saffron Lane can only be made by phone.",
     "supported"),
    ("Snow leopards are most active at dawn and dusk.", "Snow leopards are most active in the morning and at twilight.",
     "supported"),
    ("The lodge is closed in winter.", "The lodge is open in winter.", "contradicted"),
    ("Side effects were uncommon in the trial.", "Side effects were common in the trial.", "contradicted"),
])
def test_wordnet_relations(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_lexicon_reads_wordnet_by_frequent_sense_and_checks_its_data():
    from assistant.entailment import lexicon

    assert lexicon.related("reservation", "booking") and lexicon.related("employee", "employ")
    assert lexicon.related("insect", "flea") and not lexicon.related("flea", "insect")  # less, never more
    assert "decrease" in lexicon.antonyms("increase") and "uncommon" in lexicon.antonyms("common")
    assert not lexicon.related("take", "need")  # a light verb with 44 senses is matched only by itself
    assert lexicon.synonyms("qwzx") == frozenset()
    lexicon._check(lexicon.data_dir())  # the installed files are the ones whose sha256 is pinned


@pytest.mark.parametrize("premise, claim, verdict", [
    # multiples are quantities: "twice" = "doubled", ratios of the source's own figures
    ("The Greens doubled their seat count to 12.", "The Greens' seat count grew 2-fold, to twelve.", "supported"),
    ("Bacteroides abundance was 2.3-fold higher in the high-fibre group.",
     "The high-fibre group had more than twice the Bacteroides abundance.", "supported"),
    ("The amendment raised paternity leave from two weeks to six weeks.",
     "The amendment tripled paternity leave, from two weeks to six weeks.", "supported"),
    ("Wind supplied 4.1 GW at the peak, while gas plants supplied 9.6 GW.",
     "At the peak, gas plants supplied more than twice as much as wind.", "supported"),
    ("Wind supplied 4.1 GW at the peak, while gas plants supplied 9.6 GW.",
     "At the peak, gas plants supplied more than three times as much as wind.", "unsupported"),
    # a bound holds for a figure inside it, never for another bound
    ("Its activity dropped by 3% over 500 hours.", "Its activity dropped by less than 5% over 500 hours.", "supported"),
    ("Staff may work remotely for up to two days a week.", "Staff may work remotely for up to 3 days a week.",
     "contradicted"),
    ("Do not take more than eight tablets in 24 hours.", "Do not take more than 6 tablets in 24 hours.",
     "contradicted"),
    # a period named with "a" is one of it
    ("A tsunami warning issued at 04:10 was lifted an hour later.",
     "The tsunami warning was lifted at 05:10, an hour after it was issued.",
     "supported"),
    ("The policy will be reviewed after twelve months.", "The policy will be reviewed after a year.", "supported"),
    ("None is predicted to pose an impact risk in the next 100 years.",
     "None is predicted to pose an impact risk in the next century.", "supported"),
    # "free" of a price is no charge; "short of" a thing is not reaching it
    ("The cloister costs €6, but the cathedral itself is free.", "There is no charge to enter the cathedral.",
     "supported"),
    ("The Centre Alliance won 34 of the 80 seats, short of a majority.",
     "The Centre Alliance did not win a majority.", "supported"),
])
def test_multiples_bounds_periods_and_prices(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a negation and an antonym cancel; verbs that deny what follows them are negations
    ("The Hawks have lost their last five games.", "The Hawks have not won any of their last five games.",
     "supported"),
    ("Fixed a crash when importing CSV files larger than 2 GB.", "Importing CSV files larger than 2 GB no longer "
     "crashes.", "supported"),
    ("Fixed a crash when importing CSV files larger than 2 GB.", "Importing CSV files larger than 2 GB still "
     "crashes.", "contradicted"),
    ("Cut back by a third after flowering, but avoid cutting into old wood.",
     "Cut back by a third after flowering without cutting into old wood.", "supported"),
    ("Vessels under 10 metres are exempt from the new logbook requirements.",
     "Vessels under 10 metres do not have to meet the new logbook requirements.", "supported"),
    # a purpose clause's negation is its own: "pour water into acid to avoid boiling" affirms pouring
    ("Always add acid to water, never water to acid, to avoid violent boiling.",
     "Pour water into the acid to avoid violent boiling.", "contradicted"),
    # an age is a quantity: "under eight weeks old" = "younger than eight weeks"
    ("Do not use in kittens younger than eight weeks.", "Do not use it in kittens younger than eight weeks old.",
     "supported"),
])
def test_negations_that_cancel_and_implicit_ones(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # the order of events across clauses: before / after / then / first ... afterwards / a sentence-opening marker
    ("Wash the filter in cold water and let it dry for at least 24 hours before refitting.",
     "Refit the filter straight after washing it, and then let it dry for 24 hours.", "contradicted"),
    ("Remove contact lenses before applying the drops.", "Apply the drops first and remove your contact lenses "
     "afterwards.", "contradicted"),
    ("Following a public consultation held in June, the city budget was approved in September.",
     "The city budget was approved before the public consultation.", "contradicted"),
    ("The grapes are fermented in open oak vats. The wine is then aged for 14 months in French oak barrels.",
     "The wine is aged in French oak barrels before it is fermented in open oak vats.", "contradicted"),
    ("Patients first completed a 4-week washout period and were then randomised.",
     "Patients completed a 4-week washout period before they were randomised.", "supported"),
    ("Wash the filter in cold water once a month and let it dry before refitting.",
     "Let the filter dry before refitting it.", "supported"),
])
def test_event_order(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("claim, verdict", [
    ("Perrin Logistics was found to have breached its contract with Denholm Ltd.", "contradicted"),
    ("Denholm Ltd was found to have breached its contract with Perrin Logistics.", "supported"),
    ("The contract with Perrin Logistics was breached by Denholm Ltd.", "supported"),  # the passive keeps roles
])
def test_names_swapped_around_a_verb(claim: str, verdict: str):
    premise = "The court upheld the ruling that Denholm Ltd breached its contract with Perrin Logistics."
    _expect(premise, claim, verdict)


APR = "The purchase APR is 22.9%, and cash advances are charged at 27.9% from the date of the transaction."


@pytest.mark.parametrize("premise, claim, verdict", [
    # a comparison read against the source's own figures for each side
    (APR, "Cash advances carry a lower APR than purchases.", "contradicted"),
    (APR, "Cash advances carry a higher APR than purchases.", "supported"),
    # figures of another measure say nothing of this one
    ("Treated plots yielded 7.8 tonnes of wheat per hectare, compared with 6.9 tonnes on untreated plots. The "
     "treated plots also used 15% less irrigation water.", "The treated plots used less irrigation water than the "
     "other plots.", "supported"),
])
def test_comparisons_against_the_figures(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_opposite_bounds_on_one_figure():
    premise = "The Easy Access Saver pays 4.1% AER on balances up to £50,000 and 3.2% on any amount above that."
    r = ClaimChecks().check(premise, "Balances above £50,000 earn 4.1% AER.")
    assert (r.verdict, r.reason.split(":")[0]) == ("contradicted", "bound"), r.reason
    assert ClaimChecks().check(premise, "Balances of up to £50,000 earn 4.1% AER.").verdict == "supported"


@pytest.mark.parametrize("premise, claim, verdict", [
    # how often, as events a year
    ("Interest is calculated daily and paid monthly.", "Interest is paid out twelve times a year.", "supported"),
    ("Interest is calculated daily and paid monthly.", "Interest is paid out four times a year.", "unsupported"),
    ("Adult dogs should be dewormed every three months.", "Adult dogs should be dewormed four times a year.",
     "supported"),
    ("Cows are milked twice a day.", "Cows are milked two times daily.", "supported"),
    ("The planet orbits its star every 11.2 days.", "The planet orbits its star in just over 11 days.",
     "supported"),  # a period of days stays a period
])
def test_frequencies(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # an acronym in the source states its expansion in the claim, and the other way round
    ("Sequential labelling indicated that all HSCs segregate their chromosomes randomly.",
     "All hematopoietic stem cells segregate their chromosomes randomly.", "supported"),
    ("These results suggest that interventions based on CBT are superior to zopiclone in managing insomnia.",
     "Interventions based on cognitive behavioural therapy are superior to zopiclone in managing insomnia.",
     "supported"),
    ("The World Health Organization declared the outbreak over in March.",
     "The WHO declared the outbreak over in March.", "supported"),
    # a claim that defines its own acronym is not asked to find both forms
    ("Graduated compression stockings did not reduce deep vein thrombosis after stroke.",
     "Graduated compression stockings (GCS) did not reduce deep vein thrombosis after stroke.", "supported"),
    # initials that spell the acronym are not enough when the words are not the claim's
    ("The WHO declared the outbreak over in March.", "The World Trade Organization declared the outbreak over "
     "in March.", "unsupported"),
    ("All HSCs segregate their chromosomes randomly.", "All hepatic satellite cells segregate their chromosomes "
     "randomly.", "supported"),  # the initials match: an acronym alone cannot tell them apart
])
def test_acronyms(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_acronym_reading():
    from assistant.entailment.acronyms import acronym_cover, acronyms
    assert acronyms("CBT and HSCs, not mRNA or a NASA-led probe or USA") == {"cbt", "hsc", "usa"}
    assert {"hematopoietic", "stem", "cell"} <= acronym_cover("hematopoietic stem cells divide", "HSCs divide")
    assert acronym_cover("heat shock cells divide", "the cells divide") == set()


@pytest.mark.parametrize("premise, claim, verdict", [
    # a thousands separator followed by a comma is still one number
    ("The house sold for $452,000, well above its asking price.", "The house sold for $452,000.", "supported"),
    ("The house sold for $452,000, well above its asking price.", "The house sold for $452.", "contradicted"),
    ("Attendance reached 12,500, a record.", "Attendance reached 12,500.", "supported"),
])
def test_thousands_before_a_comma(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_lexicon_setting_switches_off_wordnet_opposites():
    """`CheckSettings(lexicon=False)` keeps WordNet out of every check: rough/smooth is a WordNet antonym pair
    that the hand-listed opposites do not hold."""
    premise, claim = "The road surface on the pass is rough.", "The road surface on the pass is smooth."
    on = ClaimChecks(settings=CheckSettings(lexicon=True)).check(premise, claim)
    off = ClaimChecks(settings=CheckSettings(lexicon=False)).check(premise, claim)
    assert (on.verdict, on.reason) == ("contradicted", "opposite: the claim says 'smooth', the source 'rough'")
    assert not off.reason.startswith("opposite"), off.reason


@pytest.mark.parametrize("premise, claim, verdict", [
    # a party named at the start of a sentence still swaps roles
    ("Perrin supplies the parts to Denholm. Denholm breached its contract in March.",
     "Perrin breached its contract in March.", "contradicted"),
    ("The Lyon office opens in May and the Prague office closes in June.", "The Prague office opens in May.",
     "contradicted"),
    # a gene symbol or an acronym is a technical term, not a party: the protein named in a neighbouring clause
    # has not taken its role
    ("The stress-responsive kinases ABK1, ZMT4, and QRX2 play a major role in sensing heat stress to initiate "
     "and modulate repair.", "The kinase ZMT4 is a sensor of heat stress.", "supported"),
    ("By screening genes expressed more highly in root hair cells, we identified three stress genes (Hsp4, Dmr2 "
     "and Kel1 (also known as Kelpin)) that mediated the protective effects against different fungal pathogens.",
     "DMR2 has protective effects against fungal pathogens.", "supported"),
])
def test_roles_belong_to_names_not_to_gene_symbols(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # what a study sets out to find is not what it found
    ("OBJECTIVE To assess the risks of kidney failure in patients taking the newer diabetes drugs. DESIGN Open "
     "cohort study in primary care.", "The newer diabetes drugs increase the risks of kidney failure.", "unsupported"),
    ("We examined whether remote work lowers staff turnover in small firms.",
     "Remote work lowers staff turnover in small firms.", "unsupported"),
    # ... unless the sentence reports the finding too
    ("We examined whether remote work lowers staff turnover in small firms and found that it does.",
     "Remote work lowers staff turnover in small firms.", "supported"),
    ("Remote work lowered staff turnover in small firms.", "Remote work lowered staff turnover in small firms.",
     "supported"),
])
def test_a_question_is_not_a_finding(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # "no effect on X" against a source that states a change in X
    ("The sugar tax was expected to reduce obesity prevalence by 3.0% and diabetes incidence by 1.6% in India.",
     "The sugar tax had no effect on diabetes incidence in India.", "contradicted"),
    ("Over the trial, the new fertiliser increased wheat yields on clay soils by 8%.",
     "The new fertiliser did not affect wheat yields on clay soils.", "contradicted"),
    # ... and the right claim where the source itself says no change
    ("The new fertiliser did not change wheat yields on clay soils.",
     "The new fertiliser had no effect on wheat yields on clay soils.", "supported"),
])
def test_no_effect_against_a_stated_change(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # the verbs of scientific findings have directions too
    ("Triggering of PD-1 on monocytes induced IL-10 production.", "Triggering of PD-1 on monocytes reduces IL-10 "
     "production.", "contradicted"),
    ("The compound suppressed tumour growth in mice.", "The compound promotes tumour growth in mice.",
     "contradicted"),
    ("The compound suppressed tumour growth in mice.", "The compound inhibits tumour growth in mice.", "supported"),
    # a "no change" next to a sentence about something else that changed
    ("Ostra Foods reported a net loss of $12 million, narrower than a year earlier. The company reaffirmed its "
     "full-year outlook.", "Ostra Foods did not change its full-year outlook.", "supported"),
])
def test_directions_of_scientific_verbs(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a number inside a name is part of the name, not a quantity
    ("The three-bedroom house at 14 Alder Close is listed at $685,000. It was last sold in 2016 for $452,000 and "
     "has had a new roof fitted since then.", "Since its 2016 sale, 14 Alder Close has been given a new roof.",
     "supported"),
    ("Nimbus 30 includes 30 GB of data a month. The contract term is 24 months.",
     "Nimbus 30 has a contract term of two years.", "supported"),
    ("Nimbus 30 includes 30 GB of data a month. The contract term is 24 months.",
     "Nimbus 30 has a contract term of three years.", "contradicted"),
    ("The house at 14 Alder Close is listed at $685,000.", "The house at 16 Alder Close is listed at $685,000.",
     "unsupported"),
    # areas are quantities with units: 1,528 square feet is 142 square metres, 142 square feet is not
    ("It has a floor area of 142 square metres.", "It has a floor area of 1,528 square feet.", "supported"),
    ("It has a floor area of 142 square metres.", "It has a floor area of 142 square feet.", "contradicted"),
    ("It has a floor area of 142 m².", "It has a floor area of 1,528 sq ft.", "supported"),
    ("The park covers 3 km2.", "The park covers 3 square kilometres.", "supported"),
    ("It has a floor area of 142 m2.", "It has a floor area of 142 square feet.", "contradicted"),
])
def test_numbers_in_names_and_areas(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_numbered_names_are_read_as_names():
    assert analyse("Nimbus 30 has a contract term of two years.").entities == ["nimbus 30"]
    assert analyse("The house at 14 Alder Close has a new roof.").entities == ["14 alder close"]
    assert [q.text for q in analyse("Nearly 300 people came on 14 March.").quantities] == ["300", "14"]
    assert [q.text for q in analyse("The survey asked 40 New York residents.").quantities] == ["40"]


@pytest.mark.parametrize("claim, verdict", [
    ("The lot measures 142 square metres.", "contradicted"),  # the floor area's figure given to the lot
    ("The lot measures 510 square metres.", "supported"),
    ("The floor area is 142 square metres.", "supported"),
    ("The house has 142 square metres of floor area on a 510-square-metre lot.", "supported"),
])
def test_two_figures_in_one_clause_keep_their_nouns(claim: str, verdict: str):
    _expect("The house has a floor area of 142 square metres on a 510-square-metre lot.", claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # "solely by / only at" one kind of a thing, where the source names another kind
    ("Tickets are sold at the box office and at the tourist office.", "Tickets are sold only at the box office.",
     "contradicted"),
    ("The degree of fatness in adults is influenced by genetic factors.",
     "The degree of fatness in adults is determined solely by environmental factors.", "contradicted"),
    # the other kind denied, or the same kind named, is no conflict; nor is "only" in front of the subject
    ("The discount applies to online orders; phone orders are excluded.",
     "The discount applies only to online orders.", "supported"),
    ("The loss was explained by genetic risk factors alone.", "The loss was caused solely by genetic factors.",
     "supported"),
    ("The Premier plan covers dental treatment; the Standard plan covers optical treatment.",
     "Only the Premier plan covers dental treatment.", "supported"),
])
def test_exclusive_kinds(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # accented letters are letters: 'Tromsø' is one word, not 'troms' and a stray 'ø'
    ("Flight CL204 landed in Tromsø 25 minutes behind schedule.", "Flight CL204 reached Tromsø 25 minutes late.",
     "supported"),
    ("Flight CL204 landed in Tromsø 25 minutes behind schedule.", "Flight CL204 reached Bodø 25 minutes late.",
     "unsupported"),
    # a unit symbol after a figure is its unit, not a name the source must spell ('0.6 MHz' = '600 kHz')
    ("The LX7120 is a buck converter. It operates at a switching frequency of 600 kHz.",
     "The LX7120 switches at 0.6 MHz.", "supported"),
    ("The LX7120 buck converter operates at a switching frequency of 600 kHz.", "The LX7120 switches at 6 MHz.",
     "contradicted"),
])
def test_accented_names_and_unit_symbols(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


def test_abbreviations_before_numbers_do_not_end_a_sentence():
    from assistant.prompting import split_sentences

    assert split_sentences("A bronze helmet, Iron Age, c. 300 BC. Recovered in 1962. See Fig. 2. 300 people came.") \
        == ["A bronze helmet, Iron Age, c. 300 BC.", "Recovered in 1962.", "See Fig. 2.", "300 people came."]


@pytest.mark.parametrize("premise, claim, verdict", [
    # shares without "of": "by about a third", "about half the usual amount"
    ("Cut plants back by about a third after flowering.", "Cut plants back by roughly 33% after flowering.",
     "supported"),
    ("Cut plants back by about a third after flowering.", "Cut plants back by roughly 60% after flowering.",
     "contradicted"),
    ("Rainfall totalled 31 mm, about half the usual amount.", "Rainfall was roughly 50% of the usual amount.",
     "supported"),
    # a share worked out from the source's own figures (96 of 1,200; 6p against 12p)
    ("1,200 staff received the test email. 96 staff clicked the link.",
     "Eight per cent of the 1,200 staff who received the test email clicked the link.", "supported"),
    ("1,200 staff received the test email. 96 staff clicked the link.",
     "Twelve per cent of the 1,200 staff who received the test email clicked the link.", "contradicted"),
    # percentage points between two shares, and a range of years as one clause
    ("A survey in 2024 found live coral cover of 31%, down from 46% in 2019.",
     "Live coral cover dropped by 15 percentage points between 2019 and 2024.", "supported"),
    ("A survey in 2024 found live coral cover of 31%, down from 46% in 2019.",
     "Live coral cover dropped by 25 percentage points between 2019 and 2024.", "contradicted"),
    # "two and a half thousand"
    ("The policy covers accidental damage up to £2,500 per claim.",
     "The policy covers accidental damage up to two and a half thousand pounds per claim.", "supported"),
    ("The policy covers accidental damage up to £2,500 per claim.",
     "The policy covers accidental damage up to three and a half thousand pounds per claim.", "unsupported"),
])
def test_spoken_shares_and_worked_out_figures(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a sentence that names nothing of its own is about the passage's subject, however far back it was named
    ("A vulnerability in versions 3.0 to 3.4 of the Tarn web server allows remote attackers to read files. "
     "Version 3.5, released on 8 August, fixes the issue. There is no evidence that the flaw has been exploited. "
     "Versions 2.x are not affected.", "The flaw does not affect Tarn versions 2.x.", "supported"),
    # ... but not where it names another subject
    ("A vulnerability in versions 3.0 to 3.4 of the Tarn web server allows remote attackers to read files. "
     "Version 3.5, released on 8 August, fixes the issue. There is no evidence that the flaw has been exploited. "
     "Versions 2.x of the Kestrel proxy are not affected.", "The flaw does not affect Tarn versions 2.x.",
     "rejected"),
])
def test_a_span_inherits_the_passage_subject(premise: str, claim: str, verdict: str):
    if verdict == "rejected":
        assert ClaimChecks().check(premise, claim).verdict != "supported"
    else:
        _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # rates and intensifiers are not "all of a thing"
    ("In 2023 the trust raised £6.8 million, of which 82p in every pound went directly to programmes.",
     "For every pound the trust raised in 2023, 82 pence went directly to programmes.", "supported"),
    ("Ferries to Sellin run every 90 minutes in summer.", "In summer a ferry to Sellin leaves every hour and a half.",
     "supported"),
    ("Ferries to Sellin run every 90 minutes in summer.", "In summer a ferry to Sellin leaves every two hours.",
     "contradicted"),
    ("Any activity is better than none.", "Some activity is better than nothing at all.", "supported"),
    ("The card is accepted at most branches.", "The card is accepted at all branches.", "unsupported"),
    ("Visitors must be escorted at all times.", "Visitors may walk around without an escort at all times.",
     "contradicted"),
    # "no later than" is a deadline, not a negation
    ("Refunds are paid within 14 days of the return.", "Refunds are paid no later than 14 days after the return.",
     "supported"),
])
def test_rates_intensifiers_and_deadlines(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # "rises to 2,914" is a figure, not a bound: no tolerance for a wrong unit to hide in
    ("Mount Ketter rises to 2,914 metres, with a hut at 2,100 metres.", "Mount Ketter rises to 2,914 feet.",
     "contradicted"),
    ("Mount Ketter rises to 2,914 metres, with a hut at 2,100 metres.", "Mount Ketter rises to 2,914 metres.",
     "supported"),
    # "up to 20%" is a bound, not a direction: the change words still disagree
    ("Sowing later than November reduces yields by up to 20%.",
     "Sowing later than November can increase yields by up to 20%.", "contradicted"),
    ("Sowing later than November reduces yields by up to 20%.",
     "Sowing later than November can cut yields by up to 20%.", "supported"),
    ("Share prices went up to a record 40 pence.", "Share prices fell to 40 pence.", "contradicted"),
])
def test_figures_after_to_and_bounds_that_are_not_directions(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a direction word on both sides ("more than 1,000 pupils") leaves the others to disagree
    ("Schools with more than 1,000 pupils recorded slightly lower pass rates than smaller schools.",
     "Schools with more than 1,000 pupils recorded slightly higher pass rates than smaller schools.", "contradicted"),
    ("Schools with more than 1,000 pupils recorded slightly lower pass rates than smaller schools.",
     "Schools with more than 1,000 pupils had slightly lower pass rates than smaller schools.", "supported"),
])
def test_shared_direction_words_do_not_hide_a_flip(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a negated claim against an affirmative fragment, wherever the subject was named
    ("Sodium thiosulfate melts at 48 °C. The solution is stable in neutral conditions but decomposes in acid.",
     "Sodium thiosulfate solution does not decompose in acid.", "contradicted"),
    ("The solution decomposes in acid. It does not decompose in water.", "The solution does not decompose in water.",
     "supported"),
])
def test_a_negated_claim_against_an_affirmed_fragment(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # am / pm are times of day, not attometres and picometres
    ("Peak demand reached 18.2 GW at 17:30 on 14 January.", "Peak demand hit 18,200 MW at 5:30 pm on 14 January.",
     "supported"),
    ("Peak demand reached 18.2 GW at 17:30 on 14 January.", "Peak demand hit 18,200 MW at 5:30 am on 14 January.",
     "contradicted"),
    ("The cheap rate applies from midnight to 05:00.", "The cheap rate applies from midnight to 5 am.", "supported"),
    # a time worked out from the source's own time and duration
    ("A tsunami warning issued at 04:10 was lifted an hour later.",
     "The tsunami warning, issued at 04:10, was lifted an hour later, at about 05:10.", "supported"),
    ("A tsunami warning issued at 04:10 was lifted an hour later.",
     "The tsunami warning, issued at 04:10, was lifted at 06:40.", "contradicted"),
    # "throughout life" is its entire life; "each" is no content word of its own
    ("Their teeth grow continuously throughout life.", "Their teeth grow continuously for their entire life.",
     "supported"),
    ("Females nest every two to three years, laying around 80 eggs per clutch.",
     "Females lay roughly eighty eggs in each clutch.", "supported"),
])
def test_times_of_day_worked_out_times_and_whole_lives(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a negated claim about one named thing, where the source states the thing of another, or "only" something else
    ("Checked baggage allowance is 23 kg on Economy Flex fares; Economy Light fares include only a 10 kg cabin bag.",
     "Economy Light does not include checked baggage, only a 10 kg cabin bag.", "supported"),
    ("Checked baggage allowance is 23 kg on Economy Flex fares; Economy Light fares include only a 10 kg cabin bag.",
     "Economy Flex does not include checked baggage.", "contradicted"),
])
def test_negated_claims_about_one_of_two_named_things(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_WARNING = "A tsunami warning issued at 04:10 was lifted an hour later."
_FLIGHT = ("Flight NV412 departs Lisbon at 07:45 and arrives in Oslo at 12:20 local time. Check-in closes 45 minutes "
           "before departure.")
_RACE = "Alina Varga won the women's 10,000 metres in 30 minutes 41 seconds, a championship record."


@pytest.mark.parametrize("premise, claim, verdict", [
    # a time moved by the source's duration belongs to what the duration moves, not to the first time's event
    (_WARNING, "The warning was lifted at about 05:10.", "supported"),
    (_WARNING, "The tsunami warning was issued at 05:10.", "contradicted"),
    (_FLIGHT, "Check-in for NV412 closes at 07:00.", "supported"),
    (_FLIGHT, "Check-in closes at 08:30.", "unsupported"),
    (_FLIGHT, "The flight departs at 07:00.", "contradicted"),
    # a duration between two times of day the source gives ("between midnight and 5 am")
    ("Customers on the Smart Saver tariff pay 9p per kWh between midnight and 5 am and 31p at all other times.",
     "The Smart Saver tariff charges 9p per kWh for five hours.", "supported"),
    ("Customers on the Smart Saver tariff pay 9p per kWh between midnight and 5 am and 31p at all other times.",
     "The Smart Saver tariff charges 9p per kWh for six hours.", "contradicted"),
    # a race time is a duration; "30 minutes 41 seconds" is one; a bound holds only on its own side
    (_RACE, "Varga won in just over half an hour, clocking 30:41.", "supported"),
    (_RACE, "Varga won the 10,000 metres in 31:41.", "contradicted"),
    (_RACE, "Varga won the 10,000 metres in under 30 minutes.", "contradicted"),
    ("The catalyst lost 4% of its activity after 500 hours.", "The catalyst lost under 5% of its activity.",
     "supported"),
    ("The catalyst lost 6% of its activity after 500 hours.", "The catalyst lost under 5% of its activity.",
     "contradicted"),
])
def test_times_moved_by_durations_and_race_times(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # "214 in 2024" is a count in a year, not a ratio of 214 to 2024; "1 in 2000 births" is a ratio
    ("Measles cases in the region rose to 214 in 2024, up from 37 the year before.",
     "There were 214 measles cases in the region in 2024.", "supported"),
    ("Measles cases in the region rose to 214 in 2024, up from 37 the year before.",
     "There were 241 measles cases in the region in 2024.", "contradicted"),
    ("The condition affects about 1 in 2000 births.", "The condition affects about 0.05% of births.", "supported"),
    # a score after a name is no model number: the name is 'Harbour United', not 'United 3'
    ("Kestrel FC came from behind to beat Harbour United 3-2 on Saturday, with Mila Ortega scoring twice in the "
     "final ten minutes. The win lifts Kestrel to fourth in the table.",
     "Mila Ortega scored two late goals for Kestrel FC against Harbour United.", "supported"),
])
def test_counts_in_a_year_and_scores_after_names(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_LEAVE = ("Full-time employees accrue 25 days of paid annual leave per year, rising to 28 days after five years of "
          "service.")
_TRIAL = ("Plots treated with the bio-fertiliser VerdaGrow yielded 7.8 tonnes of wheat per hectare, compared with "
          "6.9 tonnes on untreated plots.")
_DIVIDEND = "The board proposes a dividend of €1.15 per share, up from €1.05 a year earlier."


@pytest.mark.parametrize("premise, claim, verdict", [
    # a clause that moves the same measure on gives its figure to that measure, where the claim says what sets
    # the figure apart; a claim that does not moves the figure
    (_LEAVE, "After 5 years of service, full-time staff accrue twenty-eight days of paid leave a year.", "supported"),
    (_LEAVE, "Full-time staff accrue twenty-eight days of paid leave a year.", "contradicted"),
    (_TRIAL, "Untreated plots produced 6.9 tonnes of wheat per hectare.", "supported"),
    (_TRIAL, "VerdaGrow plots yielded 6.9 tonnes of wheat per hectare.", "contradicted"),
    (_DIVIDEND, "The board proposes a dividend of €1.05 per share.", "contradicted"),
    (_DIVIDEND, "The dividend was €1.05 per share a year earlier.", "supported"),
    # denying a need is not denying a possibility
    ("Lorvex can be taken with or without food.", "Lorvex does not need to be taken with food.", "supported"),
    ("Lorvex must be taken with food.", "Lorvex does not need to be taken with food.", "contradicted"),
    ("Trains take 1 hour 50 minutes, with a change at Pine Junction.", "Trains run direct, with no change needed.",
     "contradicted"),
])
def test_figures_that_move_a_measure_on_and_denied_needs(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a figure's clause keeps its fragments: a fronted phrase before it, the clause it goes on describing
    ("On weekdays, the 07:12 service from Harlow Junction to Ely calls at Brandon Park, arriving in Ely at 08:47.",
     "The weekday 07:12 from Harlow Junction takes 1 hour 35 minutes to reach Ely.", "supported"),
    ("Release 2.7.0 adds support for PostgreSQL 16. Release 2.6.4, published two weeks earlier, fixed a leak.",
     "Release 2.6.4 came out two weeks before release 2.7.0.", "supported"),
    ("Tuesday will start cold in Brackley, with temperatures near 2 °C, rising to a high of 11 °C.",
     "Brackley will start Tuesday at around 2 °C.", "supported"),
    # ... but a fragment with a figure of the same kind beside a clause with its own is another attribute
    ("The battery lasts 14 hours, recharging in 3 hours.", "The battery lasts 3 hours.", "contradicted"),
    ("The direct service, introduced in 2019, was suspended in 2022 due to track works.",
     "The direct service was suspended in 2019.", "contradicted"),
    # "the same quarter a year earlier" is no quarter of a year
    ("Northgate's net profit was $412 million, up 8% from the same quarter last year.",
     "Compared with the same quarter a year earlier, Northgate's net profit grew by 8% to $412 million.",
     "supported"),
])
def test_figures_keep_their_fragments(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # two figures of one kind in one claim clause: each goes with the words nearest it
    ("The Ashby council's 2025 budget totals €84 million, of which €22 million is allocated to road maintenance.",
     "Road maintenance accounts for €22 million of Ashby's €84 million budget for 2025.", "supported"),
    ("The Ashby council's 2025 budget totals €84 million, of which €22 million is allocated to road maintenance.",
     "Road maintenance accounts for €84 million of Ashby's budget for 2025.", "contradicted"),
    ("The Lindqvist Tower will have 34 storeys above ground and 3 basement levels.",
     "The Lindqvist Tower will have thirty-four storeys above ground plus three basement levels.", "supported"),
    # 4K, 5G and 3D are names, not 4,000 or 4 kelvin
    ("The Lumo X20 records 4K video at up to 60 frames per second and Full HD at up to 120 frames per second.",
     "The Lumo X20 records 4K video at up to 120 frames per second.", "contradicted"),
    ("The Lumo X20 records 4K video at up to 60 frames per second and Full HD at up to 120 frames per second.",
     "The Lumo X20 films 4K video at up to 60 frames per second.", "supported"),
])
def test_two_figures_of_a_kind_in_one_claim_clause(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # the figure's clause may say the claim's attribute in other words (WordNet synonyms: erase / delete,
    # tall / height)
    ("We retain account data for as long as your account is active and delete it within 90 days of account "
     "closure.", "Account data is erased within 90 days once the account is closed.", "supported"),
    ("Item 1147: Bronze ceremonial helmet, Iron Age, c. 300 BC. Recovered from the River Tarn in 1962. Height 28 cm; "
     "weight 1.9 kg.", "The helmet is 280 millimetres tall.", "supported"),
    ("The battery lasts 14 hours and recharges in 3 hours.", "Recharging takes 14 hours.", "contradicted"),
])
def test_a_figure_stated_in_other_words(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_PASS_RATES = ("In the 2024 cohort, 68% of pupils in the Ravensworth district achieved a pass in mathematics, up from "
               "63% in 2023. The pass rate in English was unchanged at 74%. Schools with more than 1,000 pupils "
               "recorded slightly lower pass rates than smaller schools.")
_SALT = ("Daily intake of a potassium-enriched salt substitute lowered systolic blood pressure by a mean of 6.2 mmHg. "
         "Diastolic pressure did not differ significantly between groups.")
_SHOW = "The exhibition brings together 84 works by Ilse Marrow. It runs from 4 March to 20 July at the Harlan Gallery."


@pytest.mark.parametrize("premise, claim, verdict", [
    # a change in what the source says did not change
    (_SALT, "The salt substitute also significantly lowered diastolic blood pressure.", "contradicted"),
    (_SALT, "The salt substitute lowered systolic blood pressure by about 6 mmHg.", "supported"),
    (_PASS_RATES, "The English pass rate in Ravensworth rose to 74% in 2024.", "contradicted"),
    (_PASS_RATES, "The English pass rate in Ravensworth stayed at 74%.", "supported"),
    # a figure dated with another year; 'maths' is 'mathematics'
    (_PASS_RATES, "The mathematics pass rate in Ravensworth fell from 68% in 2023 to 63% in 2024.", "contradicted"),
    (_PASS_RATES, "Ravensworth's maths pass rate improved by five percentage points, from 63% in 2023 to 68% in "
     "2024.", "supported"),
    # the start of a span of time is its 'from', the end its 'to'
    (_SHOW, "The exhibition opens on 20 July.", "contradicted"),
    (_SHOW, "The exhibition closes on 4 March.", "contradicted"),
    (_SHOW, "The exhibition closes on 20 July at the Harlan Gallery.", "supported"),
    # "narrower than", "drops support for", "excluded" read as the claim's opposite or denial
    ("Ostra Foods reported a net loss of $12 million for the second quarter, narrower than the $19 million loss a "
     "year earlier.", "Ostra Foods' net loss widened to $12 million in the second quarter.", "contradicted"),
    ("Version 4.2 drops support for Python 3.8.", "Version 4.2 still supports Python 3.8.", "contradicted"),
    ("Version 4.2 drops support for Python 3.8.", "Version 4.2 no longer supports Python 3.8.", "supported"),
    ("The policy covers accidental damage up to £2,500 per claim. Damage caused by pets is excluded.",
     "Damage caused by pets is covered up to £2,500 per claim.", "contradicted"),
    ("Leatherback turtles can dive deeper than 1,200 metres. They feed almost entirely on jellyfish.",
     "Leatherback turtles only rarely eat jellyfish.", "contradicted"),
])
def test_unchanged_things_dated_figures_and_spans_of_time(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # the date of an event's other end
    ("Construction is expected to begin in spring 2026 and finish in 2030.",
     "The line is expected to be completed in 2026.", "contradicted"),
    ("Construction is expected to begin in spring 2026 and finish in 2030.",
     "Construction is expected to be completed in 2030.", "supported"),
    # a price for what the source says is free
    ("Entry to the cloister costs €6, but the cathedral itself is free.", "Entry to the cathedral costs €6.",
     "contradicted"),
    ("Entry to the cloister costs €6, but the cathedral itself is free.", "Entry to the cloister costs €6.",
     "supported"),
    # a negative prefix against the claim's plain word: "uncommon" against "common"
    ("Common side effects of Lorvex, affecting up to 1 in 10 people, include headache and nausea. Dizziness is "
     "uncommon, affecting up to 1 in 100 people.",
     "Dizziness is a common side effect of Lorvex, affecting up to 1 in 10 people.", "contradicted"),
    ("Common side effects of Lorvex, affecting up to 1 in 10 people, include headache and nausea. Dizziness is "
     "uncommon, affecting up to 1 in 100 people.", "Headache is a common side effect of Lorvex.", "supported"),
])
def test_event_ends_free_things_and_prefixed_negations(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_LEVY = ("Following a public consultation held in June, the Dunmore city budget was approved on 18 September 2024. It "
         "introduces a parking levy of €1.20 per hour in the city centre from January 2025.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # "never ... without" is "always ... with"
    ("Visitors must be escorted at all times on the site.", "Visitors are never on the site without an escort.",
     "supported"),
    ("Visitors must be escorted at all times on the site.", "Visitors are sometimes on the site without an escort.",
     "contradicted"),
    # a spoken price; a month names no one
    (_LEVY, "From January 2025, parking in Dunmore's city centre carries a levy of one euro twenty per hour.",
     "supported"),
    (_LEVY, "From January 2025, parking in Dunmore's city centre carries a levy of one euro fifty per hour.",
     "contradicted"),
])
def test_double_negations_spoken_prices_and_dates_that_name_no_one(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    ("The first service is due at 15,000 km or 12 months, whichever comes first.",
     "The first service is due at 15,000 km or 12 months, whichever comes later.", "contradicted"),
    ("The first service is due at 15,000 km or 12 months, whichever comes first.",
     "The first service is due at 15,000 km or 12 months, whichever is sooner.", "supported"),
])
def test_which_of_two_limits_applies(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_RENT = ("The Tenant shall pay rent of $2,150 per month on the first day of each month. A late fee of $75 applies if "
         "rent is received after the fifth day of the month.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # an ordinal day is a figure, bound to its clause like any other
    (_RENT, "Rent of $2,150 is due on the first day of each month.", "supported"),
    (_RENT, "Rent of $2,150 is due on the 1st day of each month.", "supported"),
    (_RENT, "Rent of $2,150 is due on the fifth day of each month.", "contradicted"),
    (_RENT, "A $75 late fee applies to rent received after the fifth day of the month.", "supported"),
])
def test_ordinal_days(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # "nothing beat it" is the superlative
    ("Last month was the warmest March on record in Teller County.",
     "No March on record in Teller County has been warmer than last month.", "supported"),
    ("Last month was the warmest March on record in Teller County.",
     "No March on record in Teller County has been warmer than last month, which had snow every day.",
     "unsupported"),
    ("Leatherback turtles dive deeper than any other sea turtle.",
     "No other sea turtle dives as deep as the leatherback.", "supported"),
])
def test_denials_that_are_superlatives(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_FARM = ("In the 2023 trial at Hollins Farm, plots treated with VerdaGrow yielded 7.8 tonnes of wheat per hectare. "
         "The treated plots also used 15% less irrigation water. The trial ran on 12 hectares of clay loam soil.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # a place the whole source never names is an addition, even where the span names nothing else
    (_FARM, "The VerdaGrow trial ran on 12 hectares of clay loam soil in Denmark.", "unsupported"),
    (_FARM, "The trial at Hollins Farm ran on 12 hectares of clay loam soil.", "supported"),
])
def test_a_place_the_source_never_names(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_BUS = "From 10 June, the number 8 bus will run every 12 minutes on weekdays instead of every 15 minutes."


@pytest.mark.parametrize("premise, claim, verdict", [
    # "X instead of Y" swapped round
    (_BUS, "Weekday number 8 buses will run every 15 minutes instead of every 12.", "contradicted"),
    (_BUS, "Weekday number 8 buses will run every 12 minutes instead of every 15.", "supported"),
])
def test_instead_of_swapped(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_GRID = ("Wind farms supplied 31% of Delmark's electricity in 2023, overtaking coal for the first time. Solar "
         "contributed 9%, and gas remained Delmark's largest single source at 38%.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # a superlative given to another thing; a comparison against the source's own figures, "more" further back
    (_GRID, "Wind was Delmark's largest single source of electricity in 2023.", "contradicted"),
    (_GRID, "Gas was Delmark's largest single source of electricity.", "supported"),
    (_GRID, "Solar contributed more of Delmark's electricity than wind in 2023.", "contradicted"),
    (_GRID, "Wind contributed more of Delmark's electricity than solar in 2023.", "supported"),
])
def test_superlatives_and_comparisons_of_figures(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a percentage more is a multiple; a figure divided by another gives a figure in a third unit
    ("Tavros-3b has a radius 1.4 times that of Earth.", "Tavros-3b has a radius roughly 40% larger than Earth.",
     "supported"),
    ("Tavros-3b has a radius 1.4 times that of Earth.", "Tavros-3b has a radius roughly 60% larger than Earth.",
     "unsupported"),
    ("The plant has a power rating of 200 MW and a storage capacity of 800 MWh.",
     "The plant's 800 MWh of storage would last four hours at its 200 MW rating.", "supported"),
    ("The plant has a power rating of 200 MW and a storage capacity of 800 MWh.",
     "The plant's 800 MWh of storage would last five hours at its 200 MW rating.", "unsupported"),
])
def test_percentages_more_and_quotients(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # "the two groups" refers back to a pair; a count the source gives itself still counts
    ("Diastolic pressure did not differ significantly between groups.",
     "There was no significant difference in diastolic pressure between the two groups.", "supported"),
    ("Three groups were compared. Diastolic pressure did not differ significantly between groups.",
     "There was no significant difference in diastolic pressure between the two groups.", "unsupported"),
])
def test_the_two_refers_back(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_SPILLS = ("Spills smaller than 100 mL may be neutralised with sodium bicarbonate; larger spills must be reported to "
           "the safety officer.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # the other side of a stated limit
    (_SPILLS, "Acid spills larger than 100 mL have to be reported to the safety officer.", "supported"),
    (_SPILLS, "Spills smaller than 100 mL may be neutralised with sodium bicarbonate.", "supported"),
    (_SPILLS, "Spills larger than 200 mL have to be reported to the safety officer.", "unsupported"),
    ("Spills smaller than 100 mL may be neutralised with sodium bicarbonate.",
     "Spills larger than 100 mL may be neutralised with sodium bicarbonate.", "contradicted"),
])
def test_the_other_side_of_a_limit(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_TABLETS = ("Adults and children over 12: take one or two tablets every four to six hours. Not suitable for children "
            "under 12.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # one case of a limit the claim states, with the source's polarity
    (_TABLETS, "The tablets are not suitable for children under 12, so a 10-year-old should not take them.",
     "supported"),
    (_TABLETS, "The tablets are not suitable for children under 12, so a 14-year-old should not take them.",
     "unsupported"),
    (_TABLETS, "A 10-year-old should not take the tablets.", "unsupported"),  # the limit is not stated
])
def test_one_case_of_a_stated_limit(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_WINE = "The 2022 vintage of Ridgeback Riesling was bottled in March 2023 and released in September 2023."


@pytest.mark.parametrize("premise, claim, verdict", [
    # a duration between two dated months
    (_WINE, "The 2022 Ridgeback Riesling was released six months after it was bottled in March 2023.", "supported"),
    (_WINE, "The 2022 Ridgeback Riesling was released eight months after it was bottled in March 2023.",
     "unsupported"),
])
def test_months_between_two_dates(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


@pytest.mark.parametrize("premise, claim, verdict", [
    # a relative clause ("..., which stay with her ...") belongs to its antecedent's clause
    ("Adult snow leopards are largely solitary. A female usually gives birth to two or three cubs, which stay with "
     "her for about 18 to 22 months.", "Snow leopard cubs stay with their mother for about 18 to 22 months.",
     "supported"),
    # a fragment with a direction for the claim's figure; a noun of change has the verb's direction
    ("The 2025 total allowable catch for North Sea haddock was set at 61,000 tonnes, a 12% reduction on 2024.",
     "The 2025 North Sea haddock total allowable catch was raised by 12% to 61,000 tonnes.", "contradicted"),
    ("The 2025 total allowable catch for North Sea haddock was set at 61,000 tonnes, a 12% reduction on 2024.",
     "The 2025 North Sea haddock total allowable catch was cut by 12% to 61,000 tonnes.", "supported"),
])
def test_relative_clauses_and_fragments_with_a_direction(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_LAVENDER = ("Lavender prefers full sun and free-draining soil. Cut plants back by about a third after flowering in "
             "late summer, but avoid cutting into old wood.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # a claim clause that joins two source clauses, each saying its own part; the other holds no figure
    (_LAVENDER, "After flowering, cut lavender back by about 33% without going into the old wood.", "supported"),
    ("The battery lasts 14 hours. Charging takes place over USB-C and is slow.", "Charging over USB-C takes 14 hours.",
     "contradicted"),
])
def test_a_claim_clause_that_joins_two_source_clauses(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_FIBRE = ("An adult should aim for at least 30 g of fibre a day, but most adults in the survey ate only around 19 g. "
          "Children aged 5 to 11 are advised to eat about 20 g.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # a bound over a named limit, met by the source's own rough figure; "only around 19 g" restricts nothing
    (_FIBRE, "Most surveyed adults ate below the recommended 30 g of fibre a day.", "supported"),
    (_FIBRE, "Most surveyed adults ate above the recommended 30 g of fibre a day.", "contradicted"),
    (_FIBRE, "Most surveyed adults ate below 15 g of fibre a day.", "contradicted"),
])
def test_bounds_over_named_limits(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_FERRY = "The 07:40 ferry to Rosholm was cancelled because of the gale. The harbour crane was inspected on Monday."
_PUMP = ("The pump stops automatically when the tank is full or when the float sticks. It is serviced by the landlord, "
         "who replaces its filter every spring.")
_CLAIMS = ("Claims must be reported within 30 days of the incident, and an excess of £150 applies to each claim. "
           "Bacteroides abundance was 2.3-fold higher in the high-fibre group, whereas Firmicutes abundance was lower.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # an added clause whose thing the source never names: a noun after a determiner or a preposition ("a fever",
    # "by telephone"), two missing words side by side ending in a noun ("blood glucose")
    ("If symptoms persist for more than three days, consult your doctor.",
     "Consult your doctor if symptoms persist for more than three days or if you develop a fever.", "unsupported"),
    ("If symptoms persist for more than three days, consult your doctor.",
     "Consult your doctor if your symptoms persist for more than three days.", "supported"),
    (_CLAIMS, "Claims must be reported within 30 days of the incident, by telephone only.", "unsupported"),
    (_CLAIMS, "Claims must be reported within 30 days of the incident, and a £150 excess applies.", "supported"),
    (_CLAIMS, "The high-fibre diet raised Bacteroides abundance 2.3-fold and also lowered blood glucose.",
     "unsupported"),
    (_CLAIMS, "The high-fibre group had 2.3-fold more Bacteroides and lower Firmicutes abundance.", "supported"),
    # a modifier or a verb is not the thing itself: "a normal load", "later given", "moved up"
    ("The statue was cast in Florence and arrived in Antwerp in 1602 as a gift to the guild of merchants.",
     "The statue was cast in Florence and later given to the merchants' guild in Antwerp.", "supported"),
    ("The win lifts Kestrel to fourth in the table, two points behind third-placed Dunmore.",
     "Kestrel moved up to fourth place, two points behind Dunmore.", "supported"),
    # a clause that carries a figure the source gives is not an addition ("on the market for $685,000")
    ("The three-bedroom house at 14 Alder Close is listed at $685,000.",
     "14 Alder Close, a three-bedroom house, is on the market for $685,000.", "supported"),
    # a second cause, a condition of its own, a relative clause that says something the source never does
    (_FERRY, "The ferry was cancelled because of the gale, and because the harbour crane had broken down.",
     "unsupported"),
    (_FERRY, "The ferry was cancelled because of the gale.", "supported"),
    (_PUMP, "The pump stops when the tank is full, when the float sticks, or when the inlet is blocked.",
     "unsupported"),
    (_PUMP, "The pump stops when the tank is full or when the float sticks.", "supported"),
    (_PUMP, "The pump is installed by the landlord, who bought it in 2019.", "unsupported"),
    (_PUMP, "The pump is serviced by the landlord, who replaces its filter each spring.", "supported"),
])
@pytest.mark.integration
def test_added_clauses_that_name_new_things(premise: str, claim: str, verdict: str, embedded_checks: ClaimChecks):
    # with the product's text embedder, whose synonyms cover most of these claims' words
    r = embedded_checks.check(premise, claim)
    assert r.verdict == verdict, r.reason


_SALT = "Sodium thiosulfate melts at 48 °C and loses its water of crystallisation when heated to about 100 °C."


@pytest.mark.parametrize("premise, claim, verdict", [
    # a clause that begins with its verb shares the subject of the clause before it, so a figure of the first
    # clause is not the second's ("melts at 48 °C | and loses its water ... at 100 °C")
    (_SALT, "Sodium thiosulfate loses its water of crystallisation at about 48 °C.", "contradicted"),
    (_SALT, "Sodium thiosulfate loses its water of crystallisation at about 100 °C.", "supported"),
    (_SALT, "Sodium thiosulfate melts at 48 °C.", "supported"),
    ("The drone flies for 38 minutes and recharges in 2 hours.", "The drone recharges in 38 minutes.",
     "contradicted"),
    ("The drone flies for 38 minutes and recharges in 2 hours.", "The drone flies for 38 minutes.", "supported"),
])
def test_a_clause_that_shares_the_subject_before_it(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_VELA = ("The Vela scooter gives up to 40 km of riding in eco mode and 28 km in sport mode. A 30-minute charge adds "
         "roughly 12 km of range.")


@pytest.mark.parametrize("premise, claim, verdict", [
    # both figures of the claim's clause stand together in one clause of the source, and neither in the clause
    # that shares its other words ("gives ... riding"): they are in their place
    (_VELA, "A thirty-minute top-up gives roughly twelve km of riding.", "supported"),
    (_VELA, "A 30-minute top-up gives roughly 12 km of riding.", "supported"),
    (_VELA, "A thirty-minute top-up gives roughly 40 km of riding.", "contradicted"),
    (_VELA, "The Vela scooter gives up to 12 km of riding in eco mode.", "contradicted"),
])
@pytest.mark.integration
def test_figures_that_stand_together_in_one_clause(premise: str, claim: str, verdict: str,
                                                   embedded_checks: ClaimChecks):
    r = embedded_checks.check(premise, claim)
    assert r.verdict == verdict, r.reason


_TRANSFERS = "Members may book 2 fee-free transfers per month; each additional transfer costs £5."


@pytest.mark.parametrize("premise, claim, verdict", [
    # "fee-free transfers" deny the fee, not the transfers: a claim that denies the transfers is contradicted, one
    # that denies the fee is supported, one that charges the fee is contradicted
    (_TRANSFERS, "Members may not book transfers.", "contradicted"),
    (_TRANSFERS, "Members may book 2 transfers a month without a fee.", "supported"),
    (_TRANSFERS, "Members pay a fee for their first 2 transfers per month.", "contradicted"),
    (_TRANSFERS, "Each additional transfer costs £5.", "supported"),
])
def test_what_a_negation_denies(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_AUCTION = "The dealer took 40 cars to the auction. Fewer than 12 were sold."


@pytest.mark.parametrize("premise, claim, verdict", [
    # the same figure bounded the other way, in a clause about the same thing (the 40 cars taken do not make
    # "at least twelve sold" true); "not even twelve" is fewer than twelve
    (_AUCTION, "At least twelve cars were sold.", "contradicted"),
    (_AUCTION, "Not even twelve of the cars were sold.", "supported"),
    (_AUCTION, "Fewer than 12 cars were sold.", "supported"),
    (_AUCTION, "The dealer took at least 12 cars to the auction.", "supported"),
])
def test_a_figure_bounded_the_other_way(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_RECALL = "The recall covers the blue 500 ml bottles sold in March. The winter timetable starts on 3 November."


@pytest.mark.parametrize("premise, claim, verdict", [
    # the same thing of another kind: a sibling or an opposite modifier (WordNet) in the source's place
    (_RECALL, "The recall covers the green 500 ml bottles sold in March.", "contradicted"),
    (_RECALL, "The recall covers the blue 500 ml bottles sold in March.", "supported"),
    (_RECALL, "The summer timetable starts on 3 November.", "contradicted"),
    (_RECALL, "The winter timetable begins on 3 November.", "supported"),
    # a modifier the source negates is the other kind ("non-chromatin bound" histones are free ones); synonyms
    # and words WordNet cannot place are no rival
    ("Excess non-chromatin bound histones are rapidly degraded.", "Free histones are rapidly degraded.", "supported"),
    ("The large hall seats 400 people.", "The big hall seats 400 people.", "supported"),
])
def test_the_same_thing_of_another_kind(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_CVE = ("Vulnerability CVE-2025-31877 affects versions 4.2 through 4.6 of the Ardent VPN client. The vendor fixed the "
        "flaw in version 4.7; remote exploitation is not possible.")
_VERGE = "Parking is prohibited on the grass verge. Visitors may use the car park behind the church."


@pytest.mark.parametrize("premise, claim, verdict", [
    # what the source says cannot be done, or may not be, said with "can" or "may"
    (_CVE, "CVE-2025-31877 can be exploited remotely.", "contradicted"),
    (_CVE, "CVE-2025-31877 cannot be exploited remotely.", "supported"),
    (_VERGE, "Visitors can park on the grass verge.", "contradicted"),
    (_VERGE, "Visitors may use the car park behind the church.", "supported"),
    ("Refunds are not possible after 30 days.", "A refund can be requested within 30 days.", "unsupported"),
])
def test_what_the_source_says_cannot_be_done(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)


_GDP = "In the first two quarters the growth was 5.3% and 5.2%. The growth slowed in the third quarter."


@pytest.mark.parametrize("premise, claim, verdict", [
    # "the first two quarters" are the first and the second
    (_GDP, "Growth in the first and second quarters was 5.3% and 5.2% respectively.", "supported"),
    (_GDP, "Growth in the first and second quarters was 5.3% and 4.9% respectively.", "unsupported"),
])
def test_the_first_two_are_the_first_and_the_second(premise: str, claim: str, verdict: str):
    _expect(premise, claim, verdict)
