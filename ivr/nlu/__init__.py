"""Natural-language understanding: grammar → trained model; utterance + what the question expects →
Interpretation (ranked intents and the slot values the question asks for)."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ivr.grammar import AGENT_INTENT, Grammar, Vocabulary, vocabulary
from ivr.nlu.classifier import Encoder, IntentClassifier
from ivr.nlu.oos import OUT_OF_SCOPE, ThresholdChoice, choose_threshold
from ivr.nlu.slots import parse_digits, parse_yes_no
from ivr.types import Expectation, Interpretation, Utterance

FALLBACK_OOS = 0.35  # `out_of_scope: auto` on a grammar too small to leave intents out (fewer than three)
__all__ = ["OUT_OF_SCOPE", "Understanding", "understand"]


@dataclass(frozen=True)
class Understanding:
    """A validated grammar plus the classifier trained from its phrases: what one locale's hotline knows."""

    grammar: Grammar
    classifier: IntentClassifier
    choice: ThresholdChoice | None = None  # the out-of-scope threshold chosen from the phrases (`out_of_scope: auto`)

    @classmethod
    def build(cls, grammar: Grammar, *, encoder: Encoder | None = None) -> Understanding:
        """Train the grammar's classifier (the encoder is used only for languages it was trained on) and, for
        `out_of_scope: auto`, choose the out-of-scope threshold from the grammar's own phrases."""
        if encoder is not None and grammar.locale[:2] not in getattr(encoder, "languages", ("en",)):
            encoder = None
        texts = [p for intent in grammar.intents.values() for p in intent.phrases]
        labels = [name for name, intent in grammar.intents.items() for _ in intent.phrases]
        texts += grammar.out_of_scope_examples
        labels += [OUT_OF_SCOPE] * len(grammar.out_of_scope_examples)
        classifier = IntentClassifier.train(texts, labels, encoder=encoder)
        choice = (choose_threshold(grammar, encoder, trained=classifier)
                  if grammar.thresholds.out_of_scope == "auto" else None)
        return cls(grammar, classifier, choice)

    def with_grammar(self, grammar: Grammar) -> Understanding:
        """The same classifier under changed thresholds, prompts or timing (the phrases must be the same)."""
        return Understanding(grammar, self.classifier, self.choice)

    @property
    def oos_threshold(self) -> float:
        """The grammar's pinned threshold, or the one chosen from its phrases (FALLBACK_OOS for tiny grammars)."""
        pinned = self.grammar.thresholds.out_of_scope
        if pinned != "auto":
            return float(pinned)
        return self.choice.threshold if self.choice else FALLBACK_OOS

    def interpret(self, utterance: Utterance) -> Interpretation:
        """Rank intents for the utterance, using ASR alternatives when present: weighted by the recogniser's
        posteriors when it gave them (near-ties count alike, an unlikely alternative hardly at all), else by rank
        (1, 1/2, 1/3, 1/4)."""
        texts = [utterance.text, *utterance.alternatives[:3]]
        weights = (list(utterance.posteriors[:len(texts)]) if len(utterance.posteriors) >= len(texts)
                   else [1.0 / (rank + 1) for rank in range(len(texts))])
        full = self.classifier.rank(texts, weights)
        ranking = tuple((name, score) for name, score in full if name != OUT_OF_SCOPE)
        top, score = ranking[0]
        unsupported = full[0][0] == OUT_OF_SCOPE
        oos = unsupported or score < self.oos_threshold
        return Interpretation(utterance, intent=None if oos else top, score=score, ranking=ranking, out_of_scope=oos,
                              unsupported=unsupported)

    def needs(self, text: str) -> list[Interpretation]:
        """The requests of a sentence that names several ("my balance, and also my internet keeps dropping"): one
        confident reading per clause, in the order said; empty when the sentence names fewer than two."""
        joins = "|".join(vocabulary(self.grammar.locale).also)
        clauses = [c for c in re.split(rf"\b(?:{joins})\b", text.lower()) if len(re.findall(r"[\w']+", c)) >= 2]
        if len(clauses) < 2:
            return []
        readings: list[Interpretation] = []
        for clause in clauses:
            reading = self.interpret(Utterance(clause))
            named = {r.intent for r in readings}
            if reading.intent not in (None, AGENT_INTENT, *named) and reading.score >= self.grammar.thresholds.confirm:
                readings.append(reading)
        return readings if len(readings) >= 2 else []


def understand(utterance: Utterance, expecting: Expectation, understanding: Understanding) -> Interpretation:
    """Read one caller turn for the question asked: intents when the question is open, and the yes/no, digits,
    choice or menu key it expects. Keys win over words; a lone 0 key or an agent word asks for a person."""
    grammar, words = understanding.grammar, vocabulary(understanding.grammar.locale)
    keyed = utterance.digits.rstrip("#")
    reading = Interpretation(utterance)
    request = _request_in(utterance.text, words) if expecting.kind == "yes_no" else utterance.text
    if request and expecting.rank_intents:
        reading = understanding.interpret(replace(utterance, text=request) if request != utterance.text else utterance)
        needs = understanding.needs(request)
        if needs:  # the first need said is handled first; the others follow
            reading = replace(needs[0], further=tuple(n.intent for n in needs[1:] if n.intent))
    mentions_agent = bool(utterance.text) and _mentions(utterance.text, grammar.agent_words, words.agent)
    classified_agent = expecting.kind == "intent" and reading.intent == AGENT_INTENT
    return Interpretation(
        utterance, intent=reading.intent, score=reading.score, ranking=reading.ranking,
        out_of_scope=reading.out_of_scope, unsupported=reading.unsupported,
        wants_agent=utterance.digits == "0" or mentions_agent or classified_agent,  # longer keys may start with 0
        yes_no=parse_yes_no(utterance.text, keyed, words),
        digits=keyed or parse_digits(utterance.text, words),
        choice=_choice(expecting.choices, keyed, reading, grammar) if expecting.choices else None,
        menu_intent=next((n for n, i in grammar.intents.items() if keyed and i.dtmf == keyed[:1]), None),
        further=reading.further,
    )


def _request_in(text: str, words: Vocabulary) -> str:
    """What is left of an answer to a yes/no question once the yes or no is taken off ("yes, the wifi keeps
    cutting out" → "the wifi keeps cutting out"); empty when too little is left to be a request."""
    lowered = text.lower()
    for phrase in sorted((*words.yes, *words.no), key=len, reverse=True):
        lowered = re.sub(rf"(?<![\w']){re.escape(phrase)}(?![\w'])", " ", lowered)
    rest = re.findall(r"[\w']+", lowered)
    return " ".join(rest) if len(rest) >= 3 else ""


def _mentions(text: str, agent_words: list[str], patterns: tuple[str, ...]) -> bool:
    """Asking for a person, in the grammar's words or the language's ("a person", "Menschen", "jemanden")."""
    lowered = text.lower()
    listed = (re.escape(word.lower()) for word in agent_words)
    return any(re.search(rf"\b{pattern}\b", lowered) for pattern in (*listed, *patterns))


def _choice(choices: tuple[str, ...], keyed: str, reading: Interpretation, grammar: Grammar) -> str | None:
    """Key 1 or 2 picks an option; so do words naming one ("the internet one", "das zweite"); else the classifier
    picks one when it clearly outscores the other."""
    if keyed:
        return choices[int(keyed[0]) - 1] if keyed[0] in "12" and int(keyed[0]) <= len(choices) else None
    words = vocabulary(grammar.locale)
    said = set(re.findall(r"[\wäöüß]+", reading.utterance.text.lower()))
    overlap = [len(said & _content_words(grammar.intents[c].label)) if c in grammar.intents else 0 for c in choices]
    if overlap.count(max(overlap)) == 1 and max(overlap) > 0:
        return choices[overlap.index(max(overlap))]
    ordinals = [words.ordinals[w] for w in said if w in words.ordinals and words.ordinals[w] < len(choices)]
    if len(set(ordinals)) == 1:
        return choices[ordinals[0]]
    scores = dict(reading.ranking)
    a, b = (scores.get(c, 0.0) for c in choices[:2])
    return choices[0] if a > 1.5 * b else choices[1] if b > 1.5 * a else None


def _content_words(label: str) -> set[str]:
    """The words of an intent's label that can name it ("your internet not working" → internet, working)."""
    return {w for w in re.findall(r"[\wäöüß]+", label.lower()) if len(w) >= 4 and w not in ("your", "ihre", "ihrem")}
