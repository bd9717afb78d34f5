"""Grammar files: YAML that admins edit, validated with errors that name file, line and field."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from ivr.grammar.schema import Grammar


class GrammarError(Exception):
    """A grammar file was refused; `problems` lists "file:line: field: reason" strings."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


Duplicates = list[tuple[int, int, tuple]]  # (line, first line, path) of keys defined twice
# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster than the pure-Python one, same marks
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _to_python(node: yaml.Node, path: tuple, lines: dict[tuple, int], duplicates: Duplicates,
               scalars: yaml.constructor.SafeConstructor) -> object:
    """Turn a composed YAML node into plain data, remembering the line of every path and every repeated key
    (YAML would silently keep the last one: a second intent of the same name would replace the first)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in out:
                duplicates.append((line, key_lines[key], path + (key,)))
            key_lines[key] = lines[path + (key,)] = line
            out[key] = _to_python(value_node, path + (key,), lines, duplicates, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, duplicates, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node)  # scalar: resolved tag (str, int, float, bool)


def _line_for(path: tuple, lines: dict[tuple, int]) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def parse_grammar(text: str, source: str = "<grammar>", *, known_actions: Iterable[str] | None = None) -> Grammar:
    """Parse and validate grammar YAML; raise GrammarError with file:line: field: reason. With `known_actions`,
    self-service actions the service does not have are problems too."""
    try:
        node = yaml.compose(text, Loader=FAST_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise GrammarError([f"{source}:{line}: YAML syntax: {getattr(exc, 'problem', exc)}"]) from None
    if node is None:
        raise GrammarError([f"{source}:1: the file is empty"])
    lines: dict[tuple, int] = {}
    duplicates: Duplicates = []
    data = _to_python(node, (), lines, duplicates, yaml.constructor.SafeConstructor())
    if duplicates:
        raise GrammarError([f"{source}:{line}: {'.'.join(map(str, path))}: defined twice (first on line {first})"
                            for line, first, path in duplicates])
    try:
        grammar = Grammar.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{source}:{_line_for(loc, lines)}: {field}: {err['msg']}")
        raise GrammarError(problems) from None
    refs = grammar.references()
    if known_actions is not None:
        known = set(known_actions)
        refs += [(("intents", name, "route", "action"),
                  f"unknown self-service action {i.route.action!r} (registered: {', '.join(sorted(known)) or 'none'};"
                  " see IVR_SELFSERVICE)")
                 for name, i in grammar.intents.items() if i.route.action and i.route.action not in known]
    if refs:
        raise GrammarError(
            [f"{source}:{_line_for(p, lines)}: {'.'.join(map(str, p))}: {msg}" for p, msg in refs]
        )
    return grammar


def line_in(path: str | Path, where: tuple) -> int:
    """The line of a field in a grammar file (for problems found after loading, e.g. a prompt that does not render)."""
    lines: dict[tuple, int] = {}
    node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=FAST_LOADER)
    if node is not None:
        _to_python(node, (), lines, [], yaml.constructor.SafeConstructor())
    return _line_for(where, lines)


def load_grammar(path: str | Path, *, known_actions: Iterable[str] | None = None) -> Grammar:
    """Read and validate one grammar file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GrammarError([f"{path}:1: cannot read: {exc.strerror}"]) from None
    return parse_grammar(text, str(path), known_actions=known_actions)


def grammar_files(grammar_dir: str | Path) -> dict[str, Path]:
    """Map locale folder name → the hotline grammar file inside it (first *.yaml, sorted)."""
    found = {}
    for locale_dir in sorted(Path(grammar_dir).iterdir()):
        files = sorted(locale_dir.glob("*.yaml")) if locale_dir.is_dir() else []
        if files:
            found[locale_dir.name] = files[0]
    return found
