"""Natural-language understanding: grammar → trained model → Interpretation of an Utterance."""
from __future__ import annotations

from dataclasses import dataclass

from ivr.nlu.classifier import IntentClassifier
from ivr.nlu.encoder import SentenceEncoder
from ivr.nlu.grammar import Grammar, GrammarError, load_grammar, parse_grammar
from ivr.types import Interpretation, Utterance

OUT_OF_SCOPE = "__out_of_scope__"
__all__ = ["Grammar", "GrammarError", "Understanding", "load_grammar", "parse_grammar"]


@dataclass(frozen=True)
class Understanding:
    """A validated grammar plus the classifier trained from its phrases: what one locale's hotline knows."""

    grammar: Grammar
    classifier: IntentClassifier

    @classmethod
    def build(cls, grammar: Grammar, *, encoder: SentenceEncoder | None = None) -> Understanding:
        """Train the grammar's classifier; the encoder is used only for languages it was trained on."""
        if encoder is not None and grammar.locale[:2] not in encoder.languages:
            encoder = None
        texts = [p for intent in grammar.intents.values() for p in intent.phrases]
        labels = [name for name, intent in grammar.intents.items() for _ in intent.phrases]
        texts += grammar.out_of_scope_examples
        labels += [OUT_OF_SCOPE] * len(grammar.out_of_scope_examples)
        return cls(grammar, IntentClassifier.train(texts, labels, encoder=encoder))

    def interpret(self, utterance: Utterance) -> Interpretation:
        """Rank intents for the utterance, using ASR alternatives when present."""
        texts = [utterance.text, *utterance.alternatives[:3]]
        weights = [1.0 / (rank + 1) for rank in range(len(texts))]
        full = self.classifier.rank(texts, weights)
        ranking = tuple((name, score) for name, score in full if name != OUT_OF_SCOPE)
        top, score = ranking[0]
        oos = full[0][0] == OUT_OF_SCOPE or score < self.grammar.thresholds.out_of_scope
        return Interpretation(intent=None if oos else top, score=score, ranking=ranking, out_of_scope=oos)

    def hints(self, limit: int = 100) -> tuple[str, ...]:
        """Short phrases for <Gather hints> and recogniser biasing: agent words and intent phrases."""
        phrases = list(self.grammar.agent_words)
        for intent in self.grammar.intents.values():
            phrases.extend(p for p in intent.phrases[:6] if len(p) <= 40)
        return tuple(dict.fromkeys(phrases))[:limit]
