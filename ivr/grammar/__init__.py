"""The hotline definition at the bottom of the layers: grammar schema, loader with file:line errors, opening hours
and the per-locale vocabulary. Every layer reads the hotline from here; this package imports nothing above it."""
from ivr.grammar.hours import is_open, spoken_hours
from ivr.grammar.loader import GrammarError, grammar_files, line_in, load_grammar, parse_grammar
from ivr.grammar.schema import AGENT_INTENT, Grammar, Intent, Queue, Slot
from ivr.grammar.vocabulary import Vocabulary, vocabulary

__all__ = ["AGENT_INTENT", "Grammar", "GrammarError", "Intent", "Queue", "Slot", "Vocabulary", "grammar_files",
           "is_open", "line_in", "load_grammar", "parse_grammar", "spoken_hours", "vocabulary"]
