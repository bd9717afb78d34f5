"""Natural-language understanding: grammar → trained model; utterance + what the question expects →
Interpretation (ranked intents and the slot values the question asks for)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.grammar import AGENT_INTENT, Grammar, vocabulary
from ivr.nlu.classifier import Encoder, IntentClassifier
from ivr.nlu.slots import parse_digits, parse_yes_no
from ivr.types import Expectation, Interpretation, Utterance

OUT_OF_SCOPE = "__out_of_scope__"
__all__ = ["OUT_OF_SCOPE", "Understanding", "understand"]


@dataclass(frozen=True)
class Understanding:
    """A validated grammar plus the classifier trained from its phrases: what one locale's hotline knows."""

    grammar: Grammar
    classifier: IntentClassifier

    @classmethod
    def build(cls, grammar: Grammar, *, encoder: Encoder | None = None) -> Understanding:
        """Train the grammar's classifier; the encoder is used only for languages it was trained on."""
        if encoder is not None and grammar.locale[:2] not in getattr(encoder, "languages", ("en",)):
            encoder = None
        texts = [p for intent in grammar.intents.values() for p in intent.phrases]
        labels = [name for name, intent in grammar.intents.items() for _ in intent.phrases]
        texts += grammar.out_of_scope_examples
        labels += [OUT_OF_SCOPE] * len(grammar.out_of_scope_examples)
        return cls(grammar, IntentClassifier.train(texts, labels, encoder=encoder))

    def with_grammar(self, grammar: Grammar) -> Understanding:
        """The same classifier under changed thresholds, prompts or timing (the phrases must be the same)."""
        return Understanding(grammar, self.classifier)

    def interpret(self, utterance: Utterance) -> Interpretation:
        """Rank intents for the utterance, using ASR alternatives when present."""
        texts = [utterance.text, *utterance.alternatives[:3]]
        weights = [1.0 / (rank + 1) for rank in range(len(texts))]
        full = self.classifier.rank(texts, weights)
        ranking = tuple((name, score) for name, score in full if name != OUT_OF_SCOPE)
        top, score = ranking[0]
        oos = full[0][0] == OUT_OF_SCOPE or score < self.grammar.thresholds.out_of_scope
        return Interpretation(utterance, intent=None if oos else top, score=score, ranking=ranking, out_of_scope=oos)


def understand(utterance: Utterance, expecting: Expectation, understanding: Understanding) -> Interpretation:
    """Read one caller turn for the question asked: intents when the question is open, and the yes/no, digits,
    choice or menu key it expects. Keys win over words; a lone 0 key or an agent word asks for a person."""
    grammar, words = understanding.grammar, vocabulary(understanding.grammar.locale)
    keyed = utterance.digits.rstrip("#")
    reading = Interpretation(utterance)
    if utterance.text and expecting.rank_intents:
        reading = understanding.interpret(utterance)
    mentions_agent = bool(utterance.text) and _mentions(utterance.text, grammar.agent_words)
    classified_agent = expecting.kind == "intent" and reading.intent == AGENT_INTENT
    return Interpretation(
        utterance, intent=reading.intent, score=reading.score, ranking=reading.ranking,
        out_of_scope=reading.out_of_scope,
        wants_agent=utterance.digits == "0" or mentions_agent or classified_agent,  # longer keys may start with 0
        yes_no=parse_yes_no(utterance.text, keyed, words),
        digits=keyed or parse_digits(utterance.text, words),
        choice=_choice(expecting.choices, keyed, reading) if expecting.choices else None,
        menu_intent=next((n for n, i in grammar.intents.items() if keyed and i.dtmf == keyed[:1]), None),
    )


def _mentions(text: str, agent_words: list[str]) -> bool:
    lowered = text.lower()
    return any(re.search(rf"\b{re.escape(word.lower())}\b", lowered) for word in agent_words)


def _choice(choices: tuple[str, ...], keyed: str, reading: Interpretation) -> str | None:
    """Key 1 or 2 picks an option; words pick one when it clearly outscores the other."""
    if keyed:
        return choices[int(keyed[0]) - 1] if keyed[0] in "12" and int(keyed[0]) <= len(choices) else None
    scores = dict(reading.ranking)
    a, b = (scores.get(c, 0.0) for c in choices[:2])
    return choices[0] if a > 1.5 * b else choices[1] if b > 1.5 * a else None
