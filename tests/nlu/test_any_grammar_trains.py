"""Every grammar the checker accepts trains (property test over random small grammars): two or three intents,
three to five phrases each, with and without out-of-scope examples, pinned or chosen thresholds, with and without
sentence embeddings (the classifier is another SVM with them)."""
import zlib

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.grammar import parse_grammar
from ivr.grammar.loader import FAST_LOADER
from ivr.nlu import Understanding
from ivr.types import Utterance
from tests.grammar.test_loader import SHIPPED

WORDS = st.sampled_from(["bill", "pay", "internet", "down", "slow", "cancel", "move", "order", "phone", "tv", "my",
                         "the", "is", "want", "to", "help", "please", "account", "refund", "router"])
PHRASE = st.lists(WORDS, min_size=1, max_size=5).map(" ".join)


@st.composite
def grammars(draw):
    base = yaml.load(SHIPPED.read_text(), Loader=FAST_LOADER)
    count = draw(st.integers(min_value=2, max_value=3))
    intents = {}
    for index in range(count):
        phrases = draw(st.lists(PHRASE, min_size=3, max_size=5, unique=True))
        intents[f"intent_{index}"] = {"label": f"topic {index}", "phrases": [f"{p} {index}" for p in phrases],
                                      "route": {"queue": "general"}}
    base["intents"] = intents
    base["out_of_scope_examples"] = draw(st.lists(PHRASE.map(lambda p: f"weather {p}"), max_size=3, unique=True))
    base["thresholds"]["out_of_scope"] = draw(st.sampled_from([0.3, "auto"]))
    return yaml.dump(base, Dumper=yaml.CSafeDumper)


class HashedWords:
    """Embeddings without a model: each word a fixed random direction, a text the normalised sum."""

    def encode(self, texts, *, remember=False):
        rows = []
        for text in texts:
            vector = sum((np.random.default_rng(zlib.crc32(w.encode())).normal(size=16) for w in text.split()),
                         np.zeros(16))
            rows.append(vector / (np.linalg.norm(vector) or 1.0))
        return np.array(rows).reshape(len(texts), 16)


@settings(max_examples=16, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(text=grammars(), said=PHRASE, embeddings=st.booleans())
def test_every_grammar_the_checker_accepts_trains_and_answers(text, said, embeddings):
    grammar = parse_grammar(text, "random.yaml")  # the checker accepts it…
    understanding = Understanding.build(grammar, encoder=HashedWords() if embeddings else None)  # …so it trains
    reading = understanding.interpret(Utterance(said))
    assert 0 <= understanding.oos_threshold <= 1 and reading.ranking and 0 <= reading.score <= 1
