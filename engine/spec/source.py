"""YAML text -> plain data plus the line/column of every key and value, by JSON path.

It only reads: no schema, no meaning. Rules that keep integrators safe:
- duplicate keys are problems (YAML would silently keep the last one);
- YAML 1.1 booleans (``yes``/``no``/``on``/``off``) stay strings, so a state or status
  named ``No`` or ``On`` is never turned into a boolean; only ``true``/``false`` are booleans;
- a syntax error is one located problem, never a traceback.

PyYAML is imported by the first parse, not with this module: a command whose specs come
from the validated-spec cache (``engine.runtime.specs``) never loads it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from engine.errors import Location, SpecError

if TYPE_CHECKING:
    from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PathPart = str | int
Path = tuple[PathPart, ...]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


def json_path(path: Iterable[PathPart]) -> str:
    """Render a path as ``$.a.b[0]['with space']`` (jsonschema's ``json_path`` style)."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A click-style hint naming the closest choice, or None."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


@dataclass
class Document:
    """One loaded YAML file: its data and where each key and value sits."""

    file: str
    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[SpecError] = field(default_factory=list)
    open_nodes: set[int] = field(default_factory=set, repr=False)
    broken: frozenset[Path] = field(default_factory=frozenset)
    """Paths the schema refused (``schema.check``): what is at, above or below one of them
    is not read by the builder, and the meaning checks that need it are skipped."""

    def is_broken(self, path: Sequence[PathPart]) -> bool:
        """Whether ``path`` is, holds, or lies inside a part the schema refused."""
        p = tuple(path)
        return any(b[: len(p)] == p or p[: len(b)] == b for b in self.broken)

    def refused(self, path: Sequence[PathPart]) -> bool:
        """Whether ``path`` itself, or a part holding it, is one the schema refused (a part
        below it being refused does not count)."""
        p = tuple(path)
        return any(p[: len(b)] == b for b in self.broken)

    def locate(self, path: Sequence[PathPart], *, key: bool = False) -> Location:
        """Location of the value at ``path`` (or of its key), else of the nearest ancestor."""
        p: Path = tuple(path)
        if key and p in self.keys:
            line, col = self.keys[p]
            return Location(self.file, line, col, json_path(p))
        probe = p
        while True:
            if probe in self.values:
                line, col = self.values[probe]
                return Location(self.file, line, col, json_path(p))
            if not probe:
                return Location(self.file, 1, 1, json_path(p))
            probe = probe[:-1]

    def error(
        self,
        code: str,
        message: str,
        path: Sequence[PathPart],
        *,
        key: bool = False,
        hint: str | None = None,
    ) -> SpecError:
        return SpecError(code, message, self.locate(path, key=key), hint)


def _scalar(node: ScalarNode) -> Any:
    text: str = node.value
    if node.style:  # quoted or block scalars are always strings
        return text
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def _kind(node: Node) -> str:
    """PyYAML's node kind: ``scalar``, ``sequence`` or ``mapping`` (its ``id``)."""
    return str(getattr(node, "id", ""))


def _convert(node: Node, path: Path, doc: Document) -> Any:
    doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if _kind(node) == "scalar":
        return _scalar(cast("ScalarNode", node))
    if id(node) in doc.open_nodes:
        doc.problems.append(
            SpecError(
                "spec.recursive-alias",
                "a YAML alias refers to a node that contains it",
                Location(doc.file, *doc.values[path], json_path(path)),
            )
        )
        return None
    doc.open_nodes.add(id(node))
    try:
        return _convert_collection(node, path, doc)
    finally:
        doc.open_nodes.discard(id(node))


def _convert_collection(node: Node, path: Path, doc: Document) -> Any:
    kind = _kind(node)
    if kind == "sequence":
        items = cast("SequenceNode", node).value
        return [_convert(item, (*path, i), doc) for i, item in enumerate(items)]
    if kind == "mapping":
        out: dict[Any, Any] = {}
        for key_node, value_node in cast("MappingNode", node).value:
            key = _convert_key(key_node, path, doc)
            if key is None:
                continue
            kpath = (*path, key)
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                first = doc.keys[kpath][0]
                doc.problems.append(
                    SpecError(
                        "spec.duplicate-key",
                        f"duplicate key '{key}'; first defined on line {first}",
                        Location(doc.file, kpos[0], kpos[1], json_path(kpath)),
                    )
                )
                continue
            doc.keys[kpath] = kpos
            out[key] = _convert(value_node, kpath, doc)
        return out
    return None  # pragma: no cover - composer yields only the three node kinds


def _convert_key(node: Node, path: Path, doc: Document) -> str | None:
    if _kind(node) == "scalar":
        return str(node.value)
    doc.problems.append(
        SpecError(
            "spec.invalid-key",
            "mapping keys must be plain text",
            Location(
                doc.file, node.start_mark.line + 1, node.start_mark.column + 1, json_path(path)
            ),
        )
    )
    return None


def load_text(text: str, file: str) -> Document:
    """Parse YAML ``text`` (named ``file`` in messages). Syntax errors come back as a
    document whose ``problems`` holds one located ``spec.yaml-syntax`` error."""
    import yaml

    doc = Document(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        doc.problems.append(
            SpecError("spec.yaml-syntax", f"YAML syntax error: {what}", Location(file, line, col))
        )
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(
            SpecError("spec.yaml-syntax", f"YAML syntax error: {exc}", Location(file, 1, 1))
        )
        return doc
    if node is None:
        doc.problems.append(SpecError("spec.empty", "the file is empty", Location(file, 1, 1)))
        return doc
    doc.data = _convert(node, (), doc)
    if doc.data is None and not doc.problems:
        doc.problems.append(
            SpecError("spec.empty", "the file holds no data", Location(file, 1, 1))
        )
    return doc


def load_file(path: str) -> Document:
    """Read and parse one YAML file; an unreadable file is one located problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        doc = Document(file=path, data=None)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        doc.problems.append(
            SpecError("spec.unreadable", f"cannot read file: {reason}", Location(path, 1, 1))
        )
        return doc
    return load_text(text, path)
