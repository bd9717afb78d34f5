import logging
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ivr.nlu.classifier import IntentClassifier
from ivr.types import Utterance
from tests.nlu.test_any_grammar_trains import HashedWords
from tests.support import GRAMMARS


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("my internet keeps dropping out", "internet_down"),
        ("the wifi has been dead since yesterday", "internet_down"),
        ("my download speeds are awful", "slow_internet"),
        ("I would like to settle my bill", "pay_bill"),
        ("how much money is on my account", "check_balance"),
        ("could you email me a copy of the invoice", "invoice_copy"),
        ("there is a charge on my bill I don't understand", "billing_question"),
        ("can I pay off what I owe in monthly installments", "payment_arrangement"),
        ("the TV box shows no signal", "phone_tv_not_working"),
        ("has my router been shipped yet", "order_status"),
        ("I want to terminate my contract", "cancel_contract"),
        ("I want a faster package", "upgrade_contract"),
        ("we are moving to a new flat", "move_address"),
        ("is the network down in my area", "report_outage"),
        ("let me talk to a real human", "speak_to_agent"),
    ],
)
def test_unseen_phrasings_reach_the_right_intent(understanding, said, intent):
    assert understanding.interpret(Utterance(said)).intent == intent


@pytest.mark.parametrize("said", ["what's the weather in paris tomorrow", "play some jazz music", "zxqv blorp"])
def test_out_of_scope_requests_score_low(understanding, said):
    reading = understanding.interpret(Utterance(said))
    assert reading.out_of_scope and reading.intent is None


def test_scores_are_probabilities_ranked_best_first(understanding):
    reading = understanding.interpret(Utterance("I want to pay my bill"))
    scores = [s for _, s in reading.ranking]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) <= 1.0 + 1e-9
    assert reading.intent == "pay_bill" and reading.score > 0.8


def test_asr_alternatives_recover_a_misrecognition(understanding):
    garbled = Utterance("my inter net keeps dropping", alternatives=("my internet keeps dropping",))
    assert understanding.interpret(garbled).intent == "internet_down"


def test_alternatives_count_by_the_recognisers_posteriors_else_by_rank(understanding, monkeypatch):
    weighed = []
    real_rank = understanding.classifier.rank
    monkeypatch.setattr(understanding.classifier, "rank", lambda texts, weights: weighed.append(weights)
                        or real_rank(texts, weights))
    understanding.interpret(Utterance("my inter net keeps dropping", alternatives=("my internet keeps dropping",),
                                      posteriors=(0.55, 0.45)))
    understanding.interpret(Utterance("my inter net keeps dropping", alternatives=("my internet keeps dropping",)))
    assert weighed == [[0.55, 0.45], [1.0, 0.5]]


def test_temperature_is_fitted_from_held_out_phrases():
    texts = [f"{w} thing {i}" for w in ("apple", "pear", "plum") for i in range(6)]
    labels = [t.split()[0] for t in texts]
    calibrated = IntentClassifier.train(texts, labels)
    uncalibrated = IntentClassifier.train(texts, labels, calibrate=False)
    assert calibrated.temperature != uncalibrated.temperature
    assert calibrated.rank(["apple thing"])[0][0] == "apple"


@pytest.mark.parametrize("seed", range(20))
def test_the_temperature_search_finds_the_grids_best_temperature(seed):
    from ivr.nlu.classifier import _TEMPERATURES, fit_temperature, negative_log_likelihood

    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 5, 60)
    margins = rng.normal(scale=rng.choice([0.01, 0.1, 1.0, 5.0]), size=(60, 5))
    margins[np.arange(60), gold] += rng.uniform(0, 1)  # from hopeless to sure
    every = [negative_log_likelihood(margins, gold, t) for t in _TEMPERATURES]
    assert fit_temperature(margins, gold) == _TEMPERATURES[int(np.argmin(every))]


def test_a_grammar_of_two_intents_trains_and_calibrates():
    pay = ["pay my bill", "I want to pay", "make a payment", "pay what I owe", "settle my bill", "a payment please",
           "can I pay now"]
    net = ["my internet is down", "no internet", "wifi is dead", "the router is off", "no connection",
           "internet keeps dropping", "cannot get online"]
    texts, labels = pay + net, ["pay"] * len(pay) + ["net"] * len(net)
    classifier = IntentClassifier.train(texts, labels)
    ranked = classifier.rank(["the internet stopped working"])
    assert ranked[0][0] == "net" and abs(sum(score for _, score in ranked) - 1) < 1e-6


def test_what_callers_say_is_never_kept_in_the_encoders_cache(understanding):
    encoder = understanding.classifier.encoder
    if encoder is None:
        pytest.skip("no sentence encoder installed")
    said = "my card number is four one one one and my wifi died"
    understanding.interpret(Utterance(said))
    assert said not in encoder._cache
    grammar = understanding.grammar
    trained_on = {p for intent in grammar.intents.values() for p in intent.phrases} | set(grammar.out_of_scope_examples)
    assert set(encoder._cache) <= trained_on  # only grammar phrases (none at all when loaded from the disk cache)


def test_a_trained_classifier_is_cached_on_disk_and_a_second_process_loads_it(tmp_path, monkeypatch):
    from ivr.grammar import load_grammar
    from ivr.nlu import Understanding, artifacts
    from tests.support import GRAMMARS

    grammar = load_grammar(GRAMMARS / "de-DE" / "hotline.yaml")
    trainings = []
    original = Understanding.build.__func__
    monkeypatch.setattr(Understanding, "build", classmethod(lambda cls, g, **k: trainings.append(g) or
                                                            original(cls, g, **k)))
    first = artifacts.build(grammar, encoder=None, cache_dir=tmp_path)
    again = artifacts.build(grammar, encoder=None, cache_dir=tmp_path)  # as a restart or another worker would
    assert len(trainings) == 1
    said = Utterance("mein Internet geht nicht")
    assert first.interpret(said).ranking == again.interpret(said).ranking
    examples = [*grammar.out_of_scope_examples, "wie wird das Wetter"]
    edited = grammar.model_copy(update={"out_of_scope_examples": examples})
    artifacts.build(edited, encoder=None, cache_dir=tmp_path)
    assert len(trainings) == 2  # other training data, another artefact


def test_a_cached_classifier_with_embeddings_loads_its_phrases_nearness_too(tmp_path):
    from ivr.grammar import load_grammar
    from ivr.nlu import artifacts

    grammar = load_grammar(GRAMMARS / "en-US" / "hotline.yaml")
    first = artifacts.build(grammar, encoder=HashedWords(), cache_dir=tmp_path)
    again = artifacts.build(grammar, encoder=HashedWords(), cache_dir=tmp_path)
    assert again.classifier.nearness == first.classifier.nearness
    assert np.array_equal(again.classifier.nearest.columns, first.classifier.nearest.columns)
    said = Utterance("my bill is wrong")
    assert first.interpret(said).ranking == again.interpret(said).ranking


def test_an_auto_out_of_scope_threshold_is_chosen_from_the_grammars_own_phrases():
    from ivr.grammar import load_grammar
    from ivr.nlu import FALLBACK_OOS, Understanding
    from ivr.nlu.catalog import threshold_report
    from tests.support import GRAMMARS

    grammar = load_grammar(GRAMMARS / "en-US" / "hotline.yaml")
    six = dict(list(grammar.intents.items())[:6])
    auto = grammar.model_copy(update={"intents": six, "thresholds": grammar.thresholds.model_copy(
        update={"out_of_scope": "auto"})})
    understanding = Understanding.build(auto)  # n-grams: quick
    choice = understanding.choice
    assert choice is not None and understanding.oos_threshold == choice.threshold
    assert choice.samples == (96, 96)  # every phrase, scored by a calibration fold and by a leave-intents-out fold
    assert 0 <= choice.in_scope_kept <= 1 and 0 <= choice.out_of_scope_rejected <= 1
    two = auto.model_copy(update={"intents": dict(list(auto.intents.items())[:2])})
    assert Understanding.build(two).oos_threshold == FALLBACK_OOS  # too few intents to leave any out
    pinned = Understanding.build(grammar.model_copy(update={"intents": six}))
    assert pinned.oos_threshold == 0.30 and pinned.choice is None
    assert threshold_report(pinned) == "out-of-scope threshold 0.30 (pinned in the grammar)"
    high = pinned.with_grammar(pinned.grammar.model_copy(update={"thresholds": grammar.thresholds.model_copy(
        update={"out_of_scope": 0.8})}))
    assert threshold_report(high).endswith("; the out-of-scope threshold 0.80 is above the confirm threshold 0.55: "
                                           "doubtful answers are refused, never confirmed")


def test_auto_still_rejects_when_fewer_than_the_keep_share_of_phrases_are_classified_right():
    """The shipped German grammar on n-grams classifies 72 % of its held-out phrases right: no threshold keeps 90 %
    accepted and correct, and `auto` fell to 0 (rejected nothing). It now keeps 90 % of the phrases classified right."""
    from ivr.grammar import load_grammar
    from ivr.nlu import Understanding
    from tests.support import GRAMMARS

    grammar = load_grammar(GRAMMARS / "de-DE" / "hotline.yaml")
    auto = grammar.model_copy(update={"thresholds": grammar.thresholds.model_copy(update={"out_of_scope": "auto"})})
    choice = Understanding.build(auto).choice
    assert choice is not None and choice.held_out_accuracy < 0.90
    assert choice.threshold > 0 and choice.out_of_scope_rejected > 0.2
    assert choice.in_scope_kept >= 0.90 * choice.held_out_accuracy
    assert "of the 72% classified right" in choice.describe()


def test_a_single_out_of_scope_example_does_not_switch_calibration_off(caplog):
    """Intents have at least 3 phrases, but a grammar may give one out-of-scope example: that class is left out of
    the folds that hold it out, never a reason to skip calibration (and so the threshold choice)."""
    from ivr.nlu import OUT_OF_SCOPE
    from ivr.nlu.classifier import PRIOR_TEMPERATURE

    pay = ["pay my bill", "I want to pay", "make a payment", "pay what I owe", "settle my bill", "pay now"]
    net = ["my internet is down", "no internet", "wifi is dead", "router is off", "no connection", "cannot get online"]
    texts, labels = pay + net + ["what's the weather"], ["pay"] * 6 + ["net"] * 6 + [OUT_OF_SCOPE]
    classifier = IntentClassifier.train(texts, labels)
    assert classifier.validation is not None and classifier.temperature != PRIOR_TEMPERATURE
    with caplog.at_level(logging.WARNING):  # nothing to cross-validate at all: the prior, said in the log
        tiny = IntentClassifier.train(["pay", "net"], ["pay", "net"])
    assert tiny.temperature == PRIOR_TEMPERATURE and "prior temperature" in caplog.text


@pytest.mark.parametrize("encoder", [HashedWords(), None], ids=["embeddings", "n-grams only (German)"])
def test_the_same_phrases_train_the_same_classifier(encoder):
    """Admins test a grammar in the console and callers meet the one that loads: scores must not move from build
    to build (liblinear's shuffling draws from one random generator per process: fits running side by side in
    threads drew from it in turn and moved a score by up to 0.07; the n-gram SVM drew an unseeded shuffle)."""
    texts, labels = shipped_phrases()
    first = IntentClassifier.train(texts, labels, encoder=encoder)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two builds at once: an admin's draft while the watcher builds
        at_once = list(pool.map(lambda _: IntentClassifier.train(texts, labels, encoder=encoder), range(2)))
    for again in at_once:
        assert np.array_equal(again.scorer.weights, first.scorer.weights)
        assert again.temperature == first.temperature
        assert np.array_equal(again.validation[0], first.validation[0])


def shipped_phrases() -> tuple[list[str], list[str]]:
    from ivr.grammar import load_grammar

    grammar = load_grammar(GRAMMARS / "en-US" / "hotline.yaml")
    return ([p for intent in grammar.intents.values() for p in intent.phrases],
            [name for name, intent in grammar.intents.items() for _ in intent.phrases])


# The tests that start real fitting workers share one xdist worker: its forkserver imports scikit-learn once.
WORKERS = pytest.mark.xdist_group("fitting-workers")


@WORKERS
def test_fits_in_worker_processes_give_the_same_classifier_as_fits_here(monkeypatch, caplog):
    """A big grammar's fits run side by side in worker processes: only faster, never different."""
    from ivr.nlu import classifier as classifier_module
    from ivr.nlu import fitting

    texts, labels = shipped_phrases()
    encoder = HashedWords()
    monkeypatch.setattr(fitting, "PARALLEL_FROM", 10**9)
    here = IntentClassifier.train(texts, labels, encoder=encoder)
    spawned, sent_back = [], []
    real_context, real_run_all = fitting._context, classifier_module.run_all
    monkeypatch.setattr(fitting, "_context", lambda: spawned.append(1) or real_context())
    monkeypatch.setattr(classifier_module, "run_all",
                        lambda *a, **k: sent_back.extend(real_run_all(*a, **k)) or sent_back)
    monkeypatch.setattr(fitting, "PARALLEL_FROM", 0)
    with caplog.at_level(logging.WARNING):
        there = IntentClassifier.train(texts, labels, encoder=encoder)
    assert spawned and "worker processes failed" not in caplog.text  # the workers did run
    # what came back is plain arrays: unpickling scikit-learn's objects would import it (~2 s) into this process
    assert len(sent_back) == 6 and all(b"sklearn" not in pickle.dumps(result) for result in sent_back)
    assert np.array_equal(here.scorer.weights, there.scorer.weights) and here.temperature == there.temperature
    assert np.array_equal(here.validation[0], there.validation[0])


def test_when_worker_processes_cannot_start_the_fits_run_here_and_it_is_logged(monkeypatch, caplog):
    from ivr.nlu import fitting

    def no_workers():
        raise OSError("no /dev/shm")

    texts, labels = shipped_phrases()
    monkeypatch.setattr(fitting, "PARALLEL_FROM", 0)
    monkeypatch.setattr(fitting, "_context", no_workers)
    with caplog.at_level(logging.WARNING):
        classifier = IntentClassifier.train(texts, labels)
    assert "fitting in worker processes failed (no /dev/shm)" in caplog.text
    assert classifier.rank(["I would like to settle my bill"])[0][0] == "pay_bill"


def test_a_big_grammar_scores_only_the_calibration_folds_it_needs(monkeypatch):
    """Every fold trains on 4/5 of the phrases; a big grammar scores only enough of them to hold out
    CALIBRATION_PHRASES phrases: two fits fewer for 100 intents x 20 phrases, the same estimate of the scale."""
    from ivr.nlu import classifier as classifier_module

    texts, labels = shipped_phrases()  # 224 phrases: 5 folds of ~45
    fits = []
    real_run_all = classifier_module.run_all
    monkeypatch.setattr(classifier_module, "run_all",
                        lambda calls, **kw: fits.append(len(calls)) or real_run_all(calls, **kw))
    everything = IntentClassifier.train(texts, labels)
    monkeypatch.setattr(classifier_module, "CALIBRATION_PHRASES", 100)
    some = IntentClassifier.train(texts, labels)
    assert fits == [6, 4]  # the model and 5 folds; the model and 3 folds (3 x 45 ≥ 100)
    assert len(everything.validation[1]) == len(texts) and 100 <= len(some.validation[1]) < 150
    assert np.array_equal(everything.scorer.weights, some.scorer.weights)
    assert abs(np.log(some.temperature / everything.temperature)) < 0.2


@pytest.mark.parametrize(("parallel_from", "watch", "started"), [  # the grammar has 224 phrases
    (200, "after", True), (200, "before", True), (300, "after", False),
    (200, None, False),  # a one-shot command (`ivr grammar prepare`) would exit while the server starts
])
def test_serving_a_big_grammar_starts_the_fitting_workers_for_its_next_edit(monkeypatch, parallel_from, watch,
                                                                            started):
    from ivr.grammar import load_grammar
    from ivr.nlu import catalog as catalog_module
    from ivr.nlu import fitting

    class Trained:  # what artifacts.build gives, here without the training
        def with_grammar(self, grammar):
            return self

    starts = []
    monkeypatch.setattr(fitting, "PARALLEL_FROM", parallel_from)
    monkeypatch.setattr(catalog_module, "_workers_started_once", lambda: starts.append(1))
    monkeypatch.setattr(catalog_module.artifacts, "build", lambda grammar, **kw: Trained())
    catalog = catalog_module.GrammarCatalog(GRAMMARS, default_locale="en-US", known_actions=[])
    catalog.stop()  # the watcher's thread ends at once: only whether the catalog serves matters here
    if watch == "before":
        catalog.watch()
    catalog.build(load_grammar(GRAMMARS / "en-US" / "hotline.yaml"))
    if watch == "after":
        catalog.watch()
    assert bool(starts) == started


def fail_to_fit(label):
    raise ValueError(f"cannot fit {label}")


@WORKERS
def test_an_error_of_the_fit_itself_is_raised_once_not_taken_for_a_worker_failure(monkeypatch, caplog):
    """The catalog reports a failed build like a schema error; the fits are not run again in this process."""
    from ivr.nlu import fitting

    monkeypatch.setattr(fitting, "PARALLEL_FROM", 0)
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="cannot fit a"):
        fitting.run_all([(fail_to_fit, ("a",)), (fail_to_fit, ("b",))], phrases=1)
    assert "worker processes failed" not in caplog.text
