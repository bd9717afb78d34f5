"""The sentence encoder as onnxruntime runs it: the float32 graph reproduces sentence-transformers, the int8 graph
stays close to it, the graph is built once per cache, and the lean scorer gives scikit-learn's margins."""
import logging
import pickle

import numpy as np
import pytest

from ivr.nlu import encoder as encoder_module
from ivr.nlu.classifier import LinearScorer, Projection, char_grams, word_grams
from ivr.nlu.encoder import SentenceEncoder, default_model_dir, onnx_model
from ivr.nlu.fitting import fit, fit_svm, ngram_features, stack
from tests.support import CLASSIFIER_CACHE, GRAMMARS

MODEL = default_model_dir()
needs_model = pytest.mark.skipif(MODEL is None, reason="no sentence encoder installed")
# sentence-transformers' all-MiniLM-L6-v2 embedding of "hello", first six of 384 dimensions
HELLO = [-0.06277, 0.05496, 0.05216, 0.08579, -0.08275, -0.07457]
SENTENCES = ["hello", "I was charged twice this month", "my internet keeps dropping out every evening",
             "can I talk to a real person", "what's the weather in paris tomorrow"]


@needs_model
def test_the_float32_graph_reproduces_sentence_transformers():
    plain = SentenceEncoder(MODEL, quantized=False, cache_dir=CLASSIFIER_CACHE)
    assert plain.encode_uncached(["hello"])[0, :6] == pytest.approx(HELLO, abs=1e-4)


@needs_model
def test_int8_embeddings_stay_close_to_float32_and_do_not_depend_on_the_other_texts_encoded():
    plain = SentenceEncoder(MODEL, quantized=False, cache_dir=CLASSIFIER_CACHE)
    int8 = SentenceEncoder(MODEL, cache_dir=CLASSIFIER_CACHE)
    reference, quantized = plain.encode_uncached(SENTENCES), int8.encode_uncached(SENTENCES)
    assert ((reference * quantized).sum(1) > 0.97).all()
    # int8 activations are scaled by the range of one run's input: a phrase encoded among a grammar's others (on
    # the pool) must get the embedding it gets alone, as a caller's words are encoded
    among_others = int8.encode_uncached(SENTENCES * 2 + ["a much longer sentence than all the others " * 3])
    alone = np.vstack([int8.encode_uncached([s]) for s in SENTENCES])
    assert np.array_equal(among_others[:len(SENTENCES)], alone)
    turn = int8.encode_uncached(SENTENCES[:3])  # a turn's ASR alternatives, side by side on the shared threads
    assert np.array_equal(turn, alone[:3])


def test_the_graph_is_built_once_per_cache_and_without_a_usable_cache_in_memory(tmp_path, monkeypatch, caplog):
    builds = []
    monkeypatch.setattr(encoder_module, "_build_onnx",
                        lambda path, quantized, layers: builds.append(path) or b"graph")
    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"w")
    assert onnx_model(weights, quantized=True, cache_dir=tmp_path / "cache") == b"graph"
    assert onnx_model(weights, quantized=True, cache_dir=tmp_path / "cache") == b"graph"
    assert len(builds) == 1
    onnx_model(weights, quantized=False, cache_dir=tmp_path / "cache")  # another graph: built
    assert len(builds) == 2
    (tmp_path / "layers.safetensors").write_bytes(b"l")
    onnx_model(weights, quantized=True, cache_dir=tmp_path / "cache", layers=tmp_path / "layers.safetensors")
    assert len(builds) == 3  # other layers: another graph
    (tmp_path / "file").write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        assert onnx_model(weights, quantized=True, cache_dir=tmp_path / "file" / "cache") == b"graph"
    assert "encoder cache" in caplog.text and len(builds) == 4


@pytest.mark.parametrize("intents", [2, 5])
def test_the_lean_scorer_gives_scikit_learns_margins(intents):
    texts = [f"{word} {thing} number {i}" for word in ("pay", "net", "move", "cancel", "order")[:intents]
             for thing in ("bill", "line", "flat") for i in range(3)]
    gold = np.array([("pay", "net", "move", "cancel", "order").index(t.split()[0]) for t in texts])
    rng = np.random.default_rng(0)
    probe = ["pay the bill", "net", "", "zzz unknown words", "Move MY flat!!"]
    embeddings = rng.normal(size=(len(texts), 8))
    probe_embeddings = rng.normal(size=(len(probe), 8))
    for dense, projection in ((None, None), (embeddings, None), (embeddings, Projection.fit(embeddings, 3))):
        project = projection or (lambda rows: rows)
        fitted_on = project(dense) if dense is not None else None
        ngrams, svm = fit_svm(texts, gold, fitted_on)
        probe_dense = probe_embeddings if dense is not None else None
        expected = svm.decision_function(stack(ngrams.transform(probe), project(probe_dense)
                                               if probe_dense is not None else None))
        if expected.ndim == 1:
            expected = np.column_stack([-expected, expected])
        # the scorer takes whole embeddings, the projection folded into its weights; pickled as the disk cache keeps it
        scorer = pickle.loads(pickle.dumps(LinearScorer.from_fitted(fit(texts, gold, fitted_on), projection)))
        assert np.allclose(scorer.margins(probe, probe_dense), expected, atol=1e-9)


def test_the_scorers_analyzers_count_what_scikit_learns_vectorisers_count():
    from ivr.grammar import load_grammar

    texts = [p for locale in ("en-US", "de-DE") for i in load_grammar(GRAMMARS / locale / "hotline.yaml")
             .intents.values() for p in i.phrases]
    texts += ["", "a", "I", "  two  spaces\tand\ttabs\n", "Straße GRÖSSE İstanbul", "don't!!! 42nd? e-mail",
              "x1 y22 z333", "über-müde Ärger", "ñ", "emoji 📞 call", "ab", "abc", "abcd", "abcdefgh"]
    words, chars = (vectorizer.build_analyzer() for _, vectorizer in ngram_features().transformer_list)
    for text in texts:
        assert sorted(word_grams(text)) == sorted(words(text)), text
        assert sorted(char_grams(text)) == sorted(chars(text)), text


@needs_model
def test_the_settings_choose_int8_or_float32(settings):
    from ivr.nlu.encoder import configured_encoder

    cache = str(CLASSIFIER_CACHE)
    assert "int8" in configured_encoder(settings.replace(cache_dir=cache)).model_id
    assert "f32" in configured_encoder(settings.replace(cache_dir=cache, encoder_int8=False)).model_id
    assert configured_encoder(settings.replace(nlu_encoder=False)) is None


@needs_model
def test_the_service_runs_the_distilled_layers_unless_told_to_run_all_six(settings):
    from ivr.nlu.encoder import DISTILLED, configured_encoder

    cache = str(CLASSIFIER_CACHE)
    assert configured_encoder(settings.replace(cache_dir=cache)).layers == DISTILLED
    assert configured_encoder(settings.replace(cache_dir=cache, encoder_distilled=False)).layers is None
    # the distilled layers belong to the package's weights: another model directory runs as it is
    assert configured_encoder(settings.replace(cache_dir=cache, encoder_dir=str(MODEL))).layers is None


@needs_model
def test_classifiers_trained_on_other_distilled_layers_of_the_same_size_are_not_reused(tmp_path):
    from ivr.nlu.encoder import DISTILLED

    encoder = SentenceEncoder(MODEL, cache_dir=CLASSIFIER_CACHE, layers=DISTILLED)
    remade = tmp_path / DISTILLED.name
    data = bytearray(DISTILLED.read_bytes())
    data[-1] ^= 1  # the same size, as layers distilled again are
    remade.write_bytes(bytes(data))
    assert encoder_module._digest(remade) not in encoder.model_id
    assert encoder_module._digest(DISTILLED) in encoder.model_id


@needs_model
def test_the_distilled_encoder_gives_embeddings_close_to_the_full_networks():
    from ivr.nlu.encoder import DISTILLED

    full = SentenceEncoder(MODEL, quantized=False, cache_dir=CLASSIFIER_CACHE).encode_uncached(SENTENCES)
    distilled = SentenceEncoder(MODEL, cache_dir=CLASSIFIER_CACHE, layers=DISTILLED).encode_uncached(SENTENCES)
    assert ((full * distilled).sum(1) > 0.85).all()
    # what the classifier relies on: each sentence is nearest its own full embedding
    assert ((distilled @ full.T).argmax(1) == np.arange(len(SENTENCES))).all()


@needs_model
def test_distillation_writes_the_layers_it_trained():
    pytest.importorskip("torch")
    from safetensors.numpy import load_file

    from ivr.nlu.distill import distill

    out = CLASSIFIER_CACHE / "distilled-test.safetensors"
    distill(SENTENCES * 4, MODEL, out, keep=(5,), epochs=1, batch_size=8, log=lambda line: None)
    layers = load_file(str(out))
    assert {name.split(".")[2] for name in layers} == {"0"} and len(layers) == 16


def test_an_encoder_that_cannot_be_built_leaves_the_n_grams_serving(settings, tmp_path, caplog):
    from ivr.nlu.encoder import configured_encoder

    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with caplog.at_level(logging.ERROR):
        assert configured_encoder(settings.replace(encoder_dir=str(broken), cache_dir=str(tmp_path / "c"))) is None
    assert "n-grams only" in caplog.text
