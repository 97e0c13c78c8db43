"""A small reader of TypeScript declaration files (``.d.ts``): the public members of
``declare class`` bodies and the keys of interfaces / object types, nothing more.

It understands what BullMQ's generated declarations use: comments, generics, ``extends``
chains (classes and interfaces), ``Omit<T, 'a' | 'b'>``, type aliases that intersect
(``A & B & {...}``), modifiers (``private``/``protected`` members are skipped), getters and
setters, optional members and overloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_IDENT = r"[A-Za-z_$][\w$]*"


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _matching(text: str, start: int, open_: str = "{", close: str = "}") -> int:
    """Index of the bracket closing the one at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == open_:
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unbalanced {open_} at {start}")


def _split_top(text: str, separators: str) -> list[str]:
    """Split on separators that are outside (), [], {} and <> (an ``=>`` is not a bracket)."""
    parts, depth, current = [], 0, []
    previous = ""
    for char in text:
        if char in "([{" or (char == "<"):
            depth += 1
        elif char in ")]}" or (char == ">" and previous != "="):
            depth -= 1
        if char in separators and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        previous = char
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


@dataclass
class Member:
    name: str
    kind: str  # "method" | "property"
    optional: bool = False
    static: bool = False
    signature: str = ""


@dataclass
class Declaration:
    name: str
    kind: str  # "class" | "interface" | "type"
    members: dict[str, Member] = field(default_factory=dict)
    bases: list[str] = field(default_factory=list)
    """Base types as written (``QueueBase<B, C>``, ``Omit<X, 'a'>``)."""


def _members(body: str) -> dict[str, Member]:
    out: dict[str, Member] = {}
    for raw in _split_top(body, ";,"):
        text = raw.strip()
        words = text.split()
        static = False
        skip = False
        accessor = False
        while words and words[0] in (
            "private",
            "protected",
            "public",
            "static",
            "readonly",
            "abstract",
            "get",
            "set",
            "async",
            "declare",
        ):
            head = words.pop(0)
            if head in ("private", "protected"):
                skip = True
            if head == "static":
                static = True
            if head in ("get", "set") and words and re.match(_IDENT, words[0]):
                accessor = True
            text = text.split(None, 1)[1] if " " in text else ""
        if skip or not text:
            continue
        found = re.match(rf"({_IDENT})(\??)\s*([(<:])?", text)
        if not found or found.group(1) == "constructor":
            continue
        name, optional, after = found.group(1), bool(found.group(2)), found.group(3)
        kind = "property" if (after == ":" or accessor) else "method"
        if accessor and after in ("(", "<"):
            kind = "property"
        if name not in out:
            out[name] = Member(name, kind, optional, static, text)
    return out


class Declarations:
    """Every class, interface and object-ish type alias declared under a directory."""

    def __init__(self, roots: list[Path]) -> None:
        self.items: dict[str, Declaration] = {}
        for root in roots:
            for path in sorted(root.rglob("*.d.ts")):
                self._read(strip_comments(path.read_text(encoding="utf-8")))

    def _read(self, text: str) -> None:
        pattern = re.compile(
            rf"(?:export\s+)?(?:declare\s+)?(?:abstract\s+)?(class|interface)\s+({_IDENT})"
        )
        for found in pattern.finditer(text):
            kind, name = found.group(1), found.group(2)
            index = found.end()
            if index < len(text) and text[index] == "<":
                index = _matching(text, index, "<", ">") + 1
            brace = text.index("{", index)
            header = text[index:brace].strip()
            body_end = _matching(text, brace)
            body = text[brace + 1 : body_end]
            bases: list[str] = []
            for clause in re.split(r"\b(extends|implements)\b", header)[1:]:
                if clause in ("extends", "implements"):
                    continue
                bases.extend(_split_top(clause, ","))
            if kind == "class":  # implements is a contract, not inherited members
                bases = []
                if "extends" in header:
                    first = _split_top(header.split("extends", 1)[1], ",")[0]
                    bases = [first.split(" implements ")[0].strip()]
            self.items.setdefault(name, Declaration(name, kind, _members(body), bases))
        for found in re.finditer(rf"(?:export\s+)?type\s+({_IDENT})\s*(<)?", text):
            name = found.group(1)
            index = found.end()
            if found.group(2):
                index = _matching(text, index - 1, "<", ">") + 1
            equals = text.index("=", index)
            end = equals + 1
            depth = 0
            previous = ""
            while end < len(text):
                char = text[end]
                if char in "([{<":
                    depth += 1
                elif char in ")]}" or (char == ">" and previous != "="):
                    depth -= 1
                elif char == ";" and depth == 0:
                    break
                previous = char
                end += 1
            value = text[equals + 1 : end].strip()
            parts = _split_top(value, "&")
            if not all(p.startswith("{") or re.match(rf"{_IDENT}", p) for p in parts):
                continue
            members: dict[str, Member] = {}
            bases = []
            for part in parts:
                if part.startswith("{"):
                    members.update(_members(part[1 : _matching(part, 0)]))
                else:
                    bases.append(part)
            self.items.setdefault(name, Declaration(name, "type", members, bases))

    def members(self, name: str) -> dict[str, Member]:
        """Every member of a declaration, inherited ones included (own ones win)."""
        found = self.items.get(name)
        if found is None:
            return {}
        out: dict[str, Member] = {}
        for base in found.bases:
            out.update(self._base_members(base))
        out.update(found.members)
        return out

    def _base_members(self, base: str) -> dict[str, Member]:
        omit = re.match(r"Omit<\s*(.+)\s*>$", base, flags=re.S)
        if omit:
            args = _split_top(omit.group(1), ",")
            removed = set(re.findall(r"'([^']+)'", args[1])) if len(args) > 1 else set()
            inner = self._base_members(args[0])
            return {k: v for k, v in inner.items() if k not in removed}
        name = re.match(_IDENT, base)
        return self.members(name.group(0)) if name else {}

    def method_parameters(self, class_name: str, method: str) -> str:
        """The parameter list text of a method (first declaration)."""
        member = self.members(class_name)[method]
        text = member.signature
        start = text.index("(")
        return text[start + 1 : _matching(text, start, "(", ")")]
