"""Pure walks over a machine's transition graph, and its diagram as Mermaid or DOT text."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from engine.spec.model import MachineSpec, TransitionSpec


def successors(spec: MachineSpec) -> dict[str, set[str]]:
    """State -> states one external transition away (guards ignored)."""
    out: dict[str, set[str]] = {s.name: set() for s in spec.states}
    for t in spec.transitions:
        if t.dest is None:
            continue
        for src in t.sources:
            out.setdefault(src, set()).add(t.dest)
    return out


def reachable(spec: MachineSpec, start: Iterable[str]) -> set[str]:
    """Every state reachable from ``start`` (inclusive), ignoring guards."""
    succ = successors(spec)
    seen = set(start)
    queue = deque(seen)
    while queue:
        for nxt in succ.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def outgoing(spec: MachineSpec, state: str) -> list[TransitionSpec]:
    """Transitions enabled (guards aside) from ``state``, in spec order."""
    return [t for t in spec.transitions if state in t.sources]


def _label(t: TransitionSpec) -> str:
    parts = [t.trigger]
    conds = [*t.guards, *(f"not {g}" for g in t.unless)]
    if conds:
        parts.append("[" + ", ".join(conds) + "]")
    if t.effects:
        parts.append("/ " + ", ".join(e.kind for e in t.effects))
    return " ".join(parts)


def to_mermaid(spec: MachineSpec) -> str:
    """A Mermaid ``stateDiagram-v2`` with every state and every trigger."""
    lines = ["stateDiagram-v2", f"    %% {spec.name}"]
    for s in spec.states:
        lines.append(f"    {s.name}")
    lines.append(f"    [*] --> {spec.initial}")
    for t in spec.transitions:
        for src in t.sources:
            dest = t.dest or src
            lines.append(f"    {src} --> {dest} : {_label(t)}")
    for name in spec.final_states:
        lines.append(f"    {name} --> [*]")
    if spec.migrations:
        lines.append("    %% migrations: orders of a state this spec no longer has")
    for m in spec.migrations:
        if not m.states:
            for old, new in m.moves:
                lines.append(f"    %% effect {old} is delivered as {new} (rename_effect)")
            continue
        for old, new in m.moves:
            lines.append(f'    state "{old} (gone)" as {old}')
            lines.append(f"    {old} --> {new} : migration {m.kind}")
            lines.append(f"    class {old} migrated")
    if any(m.states for m in spec.migrations):
        lines.append("    classDef migrated stroke-dasharray: 5 5")
    return "\n".join(lines) + "\n"


def to_dot(spec: MachineSpec) -> str:
    """A Graphviz ``digraph`` with every state and every trigger."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"digraph {q(spec.name)} {{",
        "    rankdir=LR;",
        "    node [shape=box, style=rounded];",
    ]
    lines.append('    "__start__" [shape=point, label=""];')
    for s in spec.states:
        attrs = ["shape=doublecircle"] if s.final else []
        if s.pseudo:
            attrs.append("style=dashed")
        lines.append(f"    {q(s.name)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append(f'    "__start__" -> {q(spec.initial)};')
    for t in spec.transitions:
        for src in t.sources:
            style = ", style=dotted" if t.dest is None else ""
            lines.append(f"    {q(src)} -> {q(t.dest or src)} [label={q(_label(t))}{style}];")
    for m in spec.migrations:
        if not m.states:
            for old, new in m.moves:
                lines.append(f"    // effect {old} is delivered as {new} (rename_effect)")
            continue
        for old, new in m.moves:
            lines.append(f"    {q(old)} [style=dashed, label={q(old + ' (gone)')}];")
            lines.append(
                f"    {q(old)} -> {q(new)} [label={q('migration ' + m.kind)}, style=dashed];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"
