"""Words every hotline of a language shares: yes/no, spoken digits, the closed-grammar words for the recogniser.
One module per language; the NLU parses with them, the recogniser constrains with them, the dialog hints with them."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ivr.grammar.vocabulary import de, en


@dataclass(frozen=True)
class Vocabulary:
    language: str  # ISO 639-1 code ("en", "de")
    yes: tuple[str, ...]
    no: tuple[str, ...]
    units: dict[str, int]  # spoken digit words
    teens: dict[str, int]
    tens: dict[str, int]
    repeat: dict[str, int]  # "double seven"
    hundred: tuple[str, ...]
    yes_no_words: tuple[str, ...]  # closed recogniser grammar for yes/no questions
    digit_words: tuple[str, ...]  # closed recogniser grammar for digit questions
    yes_no_hints: tuple[str, ...]  # <Gather hints> for yes/no questions
    agent: tuple[str, ...]  # regular expressions for asking for a person
    ordinals: dict[str, int]  # "the second one" → index 1 of the offered choices
    digit_homophones: dict[str, int]  # "one two three for five": a digit only between other digits
    days: tuple[str, ...]  # Monday … Sunday, for spoken opening hours
    also: tuple[str, ...]  # regular expressions for words joining two requests in one sentence


def _from(module: ModuleType) -> Vocabulary:
    return Vocabulary(module.__name__.rsplit(".", 1)[-1], module.YES, module.NO, module.UNITS, module.TEENS,
                      module.TENS, module.REPEAT, module.HUNDRED, module.YES_NO_WORDS, module.DIGIT_WORDS,
                      module.YES_NO_HINTS, module.AGENT, module.ORDINALS, module.DIGIT_HOMOPHONES, module.DAYS,
                      module.ALSO)


_LANGUAGES = {"en": _from(en), "de": _from(de)}


def vocabulary(locale: str) -> Vocabulary:
    """The vocabulary of a locale's language ("de-DE" → German); English when the language is unknown."""
    return _LANGUAGES.get(locale[:2].lower(), _LANGUAGES["en"])
