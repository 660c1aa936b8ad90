"""Health-code rules: a small declarative condition language and the decision over a person's facts. Pure (no Django,
no database); tested directly and exhaustively (tests/test_rules.py).

Conditions (in the spirit of CertLogic: data, not code)
-------------------------------------------------------
A rule's ``condition`` combines *fact names* — dotted lower-case identifiers such as ``case.confirmed`` or
``zone.lockdown.resident`` — with ``and``, ``or``, ``not`` and parentheses::

    contact.close.quarantine or (contact.secondary.quarantine and not isolation.hospital)

Precedence: ``not`` binds tightest, then ``and``, then ``or``; ``and``/``or`` are left-associative. The text is
tokenised and parsed by hand (recursive descent, bounded depth) — never ``eval`` — and every fact name is checked
against a vocabulary when a profile is validated (:func:`parse` with ``vocabulary``), so a typo is an error naming the
rule, not a rule that silently never matches.

Facts and dates
---------------
A person's facts are a mapping ``{fact name: until}``; ``until`` is the first day the fact no longer holds (a date), or
``None`` when that day is not known (a case, a lockdown zone in force). A fact absent from the mapping is false.

Evaluating a condition gives ``(matched, until)``: ``and`` holds until the earliest of its parts' dates, ``or`` until
the latest of its true parts', ``not x`` has no known end (``x`` may become true at any time). ``None`` ("not known")
counts as later than every date.

Decision
--------
Rules are evaluated in order; the first matching rule decides the colour; every matching rule is listed as a reason
(``{"rule", "colour", "reason", "until"}``). ``green_on`` is the day the code may turn green: the latest ``until`` of
the matching non-green rules, ``None`` when one of them has no known end (or when nothing restricts the person).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KEYWORDS = frozenset({"and", "or", "not"})
MAX_DEPTH = 32
MAX_LENGTH = 500
GREEN = "green"

_TOKEN_RE = re.compile(r"\s*(?:(?P<lpar>\()|(?P<rpar>\))|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)|(?P<bad>\S))")
_FACT_RE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")


class ConditionError(ValueError):
    """A condition that cannot be parsed, or names an unknown fact. ``position`` is the 0-based offset."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.message = message
        self.position = position

    def __str__(self) -> str:
        return self.message if self.position is None else f"{self.message} (at character {self.position + 1})"


# --- AST ------------------------------------------------------------------------------------------------------------
# Nodes are tuples (hashable, comparable in tests): ("fact", name) | ("not", node) | ("and", (nodes)) | ("or", (nodes))

Node = tuple


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" | ")" | "name" | "and" | "or" | "not" | "end"
    text: str
    pos: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        start = m.start(m.lastgroup) if m.lastgroup else m.end()
        if m.lastgroup == "lpar":
            out.append(_Token("(", "(", start))
        elif m.lastgroup == "rpar":
            out.append(_Token(")", ")", start))
        elif m.lastgroup == "name":
            word = m.group("name")
            lowered = word.lower()
            if lowered in KEYWORDS:
                if word != lowered:
                    raise ConditionError(f"write the operator {word!r} in lower case ({lowered!r})", start)
                out.append(_Token(lowered, word, start))
            else:
                out.append(_Token("name", word, start))
        elif m.lastgroup == "bad":
            ch = m.group("bad")
            hint = {"&": "and", "|": "or", "!": "not", "~": "not"}.get(ch)
            extra = f"; write {hint!r}" if hint else ""
            raise ConditionError(f"unexpected character {ch!r}{extra}", start)
        pos = m.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str, vocabulary: frozenset[str] | None):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.vocabulary = vocabulary

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ConditionError("the condition is empty", 0)
        node = self.expr(0)
        if self.tok.kind != "end":
            t = self.tok
            what = "')'" if t.kind == ")" else repr(t.text)
            raise ConditionError(f"unexpected {what}: expected 'and', 'or' or the end", t.pos)
        return node

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ConditionError(f"the condition is nested more than {MAX_DEPTH} levels deep", self.tok.pos)
        parts = [self.conj(depth)]
        while self.tok.kind == "or":
            self.take()
            parts.append(self.conj(depth))
        return parts[0] if len(parts) == 1 else ("or", tuple(parts))

    def conj(self, depth: int) -> Node:
        parts = [self.unary(depth)]
        while self.tok.kind == "and":
            self.take()
            parts.append(self.unary(depth))
        return parts[0] if len(parts) == 1 else ("and", tuple(parts))

    def unary(self, depth: int) -> Node:
        if self.tok.kind == "not":
            self.take()
            if depth + 1 > MAX_DEPTH:
                raise ConditionError(f"the condition is nested more than {MAX_DEPTH} levels deep", self.tok.pos)
            return ("not", self.unary(depth + 1))
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        t = self.take()
        if t.kind == "(":
            node = self.expr(depth + 1)
            if self.tok.kind != ")":
                raise ConditionError("missing ')'", self.tok.pos)
            self.take()
            return node
        if t.kind == "name":
            return ("fact", self._fact(t))
        if t.kind == "end":
            raise ConditionError("the condition ends where a fact name was expected", t.pos)
        what = "')'" if t.kind == ")" else repr(t.text)
        raise ConditionError(f"unexpected {what}: expected a fact name, 'not' or '('", t.pos)

    def _fact(self, t: _Token) -> str:
        name = t.text
        if not _FACT_RE.match(name):
            raise ConditionError(
                f"{name!r} is not a fact name (dotted lower-case identifiers such as 'case.confirmed')", t.pos)
        if self.vocabulary is not None and name not in self.vocabulary:
            near = _suggest(name, self.vocabulary)
            hint = f"; did you mean {near!r}?" if near else ""
            raise ConditionError(f"unknown fact {name!r}{hint}", t.pos)
        return name


def _suggest(name: str, vocabulary: Iterable[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, sorted(vocabulary), n=1, cutoff=0.75)
    return found[0] if found else None


def parse(text: str, *, vocabulary: Iterable[str] | None = None) -> Node:
    """Parse a condition into its tree; with ``vocabulary``, unknown fact names are errors. Raises ConditionError."""
    if not isinstance(text, str):
        raise ConditionError("the condition must be text")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} characters")
    if "\x00" in text:
        raise ConditionError("the condition contains a NUL character", text.index("\x00"))
    return _Parser(text, frozenset(vocabulary) if vocabulary is not None else None).parse()


def facts_of(node: Node) -> frozenset[str]:
    """The fact names a condition reads."""
    kind = node[0]
    if kind == "fact":
        return frozenset({node[1]})
    if kind == "not":
        return facts_of(node[1])
    out: set[str] = set()
    for part in node[1]:
        out |= facts_of(part)
    return frozenset(out)


def unparse(node: Node) -> str:
    """Canonical text of a tree (fully parenthesised where precedence needs it); ``parse(unparse(t)) == t``."""
    kind = node[0]
    if kind == "fact":
        return node[1]
    if kind == "not":
        inner = unparse(node[1])
        return f"not {inner}" if node[1][0] in ("fact", "not") else f"not ({inner})"
    joiner = f" {kind} "
    parts = []
    for part in node[1]:
        text = unparse(part)
        # an 'or' inside an 'and' and a nested node of the same kind (kept as written) need parentheses
        if part[0] in ("and", "or") and (part[0] == "or" and kind == "and" or part[0] == kind):
            text = f"({text})"
        parts.append(text)
    return joiner.join(parts)


# --- evaluation -----------------------------------------------------------------------------------------------------

Until = dt.date | None  # None: no known end


def _later(a: Until, b: Until) -> Until:
    if a is None or b is None:
        return None
    return max(a, b)


def _earlier(a: Until, b: Until) -> Until:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def evaluate(node: Node, facts: Mapping[str, Until]) -> tuple[bool, Until]:
    """``(matched, until)`` of a condition over a person's facts (see the module docstring)."""
    kind = node[0]
    if kind == "fact":
        if node[1] in facts:
            return True, facts[node[1]]
        return False, None
    if kind == "not":
        matched, _ = evaluate(node[1], facts)
        return (not matched), None
    results = [evaluate(part, facts) for part in node[1]]
    if kind == "and":
        if not all(m for m, _ in results):
            return False, None
        until: Until = None
        for _, u in results:
            until = _earlier(until, u)
        return True, until
    # or
    true = [u for m, u in results if m]
    if not true:
        return False, None
    until = true[0]
    for u in true[1:]:
        until = _later(until, u)
    return True, until


@dataclass(frozen=True)
class Rule:
    id: str
    colour: str
    reason: str
    condition: str
    tree: Node
    facts: frozenset[str]


@dataclass
class Decision:
    colour: str
    rule_id: str
    reasons: list[dict] = field(default_factory=list)
    green_on: dt.date | None = None

    def as_row(self) -> tuple[str, str, list[dict], dt.date | None]:
        return self.colour, self.rule_id, self.reasons, self.green_on


def compile_rules(rules: Iterable[Any], *, vocabulary: Iterable[str] | None = None) -> list[Rule]:
    """Parse a profile's ``health_codes.rules`` (dicts or objects with id/colour/condition/reason) once."""
    out = []
    for i, r in enumerate(rules):
        get = (lambda k, r=r: r[k]) if isinstance(r, Mapping) else (lambda k, r=r: getattr(r, k))
        try:
            tree = parse(get("condition"), vocabulary=vocabulary)
        except ConditionError as exc:
            raise ConditionError(f"rules[{i}] ({get('id')}): {exc}") from None
        out.append(Rule(id=get("id"), colour=get("colour"), reason=get("reason"), condition=get("condition"),
                        tree=tree, facts=facts_of(tree)))
    return out


def decide(rules: list[Rule], facts: Mapping[str, Until]) -> Decision:
    """The colour, deciding rule, reasons and green-on date for one person's facts."""
    reasons: list[dict] = []
    deciding: Rule | None = None
    green_on: Until = None
    restricted = False
    unknown_end = False
    for rule in rules:
        if facts and not (rule.facts & facts.keys()) and not _has_not(rule.tree):
            continue  # cannot match: none of its facts hold (a 'not' may match without facts)
        matched, until = evaluate(rule.tree, facts)
        if not matched:
            continue
        if deciding is None:
            deciding = rule
        reasons.append({"rule": rule.id, "colour": rule.colour, "reason": rule.reason,
                        "until": until.isoformat() if until else None})
        if rule.colour != GREEN:
            restricted = True
            if until is None:
                unknown_end = True
            else:
                green_on = until if green_on is None else max(green_on, until)
    if deciding is None:
        return Decision(colour=GREEN, rule_id="", reasons=[], green_on=None)
    if not restricted or unknown_end:
        green_on = None
    return Decision(colour=deciding.colour, rule_id=deciding.id, reasons=reasons, green_on=green_on)


def _has_not(node: Node) -> bool:
    kind = node[0]
    if kind == "fact":
        return False
    if kind == "not":
        return True
    return any(_has_not(p) for p in node[1])


def rules_with_facts(rules: Iterable[Rule], prefixes: Iterable[str]) -> list[str]:
    """Ids of the rules reading a fact that starts with one of ``prefixes`` (e.g. ``"zone."``)."""
    prefixes = tuple(prefixes)
    return [r.id for r in rules if any(f.startswith(prefixes) for f in r.facts)]


def merge_until(a: Until, b: Until) -> Until:
    """The same fact from two sources holds until the later end (``None`` wins: no known end)."""
    return _later(a, b)


def default_decision() -> Decision:
    return Decision(colour=GREEN, rule_id="", reasons=[], green_on=None)
