"""Meaning checks on built specs: what the schema cannot see. Collects every problem.

Machine: unknown states wherever a state is named, duplicate states, unreachable states,
dead ends (non-final, non-pseudo states with no way out), final states with transitions,
ambiguous transitions (same trigger and source, no complementary guard), unknown guard /
effect / follow-up names, declared invariants proven over the graph, and late events
(known trigger and states, declared once, never enabled where they are declared late).

Channel: the machine it names, every state and trigger it names, an outbound entry for
every non-pseudo state, inbound rules for imported statuses, WMS events, transforms, and
the SKU rules (known candidates, known placeholders per unit kind, nothing after
``fallback``). A status may be named by its PrestaShop configuration key
(``PS_OS_SHIPPING``) or by its name (``Shipped``): the two spellings of one state are the
same status (``engine.spec.statuses``).
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.errors import SpecError
from engine.spec.build import parse_template
from engine.spec.graph import outgoing, reachable
from engine.spec.mapcheck import check_mappings
from engine.spec.model import (
    SKU_KEYWORDS,
    SKU_PLACEHOLDERS,
    ChannelSpec,
    MachineSpec,
    SkuCandidate,
    TransitionSpec,
)
from engine.spec.source import Document, Path, did_you_mean
from engine.spec.statuses import canonical_status
from engine.spec.storeside import StoreSide
from engine.spec.vocabulary import Vocabulary


def _unknown(
    doc: Document, code: str, what: str, name: str, known: Iterable[str], path: Path
) -> SpecError:
    return doc.error(code, f"unknown {what} '{name}'", path, hint=did_you_mean(name, known))


def _source_path(t: TransitionSpec, doc: Document, j: int) -> Path:
    base: Path = ("transitions", t.index, "source")
    return (*base, j) if (*base, j) in doc.values else base


def _told_apart(a: TransitionSpec, b: TransitionSpec) -> bool:
    """True when some guard is required by one and excluded by the other."""
    return bool(set(a.guards) & set(b.unless)) or bool(set(a.unless) & set(b.guards))


def check_machine(
    spec: MachineSpec, doc: Document, vocabulary: Vocabulary | None = None
) -> list[SpecError]:
    """Every meaning problem of a built machine spec. Where the schema refused a state or a
    transition (``doc.broken``), the checks that need every one of them are skipped: names
    of states (a refused one may be the one named), follow-up triggers, and the graph's
    reachability, dead ends, ambiguity and invariants."""
    problems: list[SpecError] = []
    names = spec.state_names
    known = set(names)
    triggers = set(spec.triggers)
    all_states = not doc.is_broken(("states",))
    all_transitions = not doc.is_broken(("transitions",))
    whole = all_states and all_transitions

    seen: dict[str, int] = {}
    for i, s in enumerate(spec.states):
        if s.name in seen:
            problems.append(
                doc.error(
                    "spec.duplicate-state",
                    f"state '{s.name}' is declared twice (first at states[{seen[s.name]}])",
                    ("states", i, "name"),
                )
            )
        else:
            seen[s.name] = i
        if s.final and s.pseudo:
            problems.append(
                doc.error(
                    "spec.final-pseudo",
                    f"state '{s.name}' cannot be both final and pseudo",
                    ("states", i),
                )
            )

    if spec.initial not in known and all_states:
        problems.append(
            _unknown(doc, "spec.unknown-state", "initial state", spec.initial, names, ("initial",))
        )

    for t in spec.transitions:
        for j, src in enumerate(t.sources):
            if src not in known:
                if all_states:
                    problems.append(
                        _unknown(
                            doc,
                            "spec.unknown-state",
                            "state",
                            src,
                            names,
                            _source_path(t, doc, j),
                        )
                    )
            elif spec.state(src).final:
                problems.append(
                    doc.error(
                        "spec.final-has-transition",
                        f"'{t.trigger}' leaves final state '{src}'; final states accept nothing",
                        _source_path(t, doc, j),
                    )
                )
        if t.dest is not None and t.dest not in known and all_states:
            problems.append(
                _unknown(
                    doc,
                    "spec.unknown-state",
                    "state",
                    t.dest,
                    names,
                    ("transitions", t.index, "dest"),
                )
            )
        for key, guard_names in (("guards", t.guards), ("unless", t.unless)):
            for j, g in enumerate(guard_names):
                if vocabulary and vocabulary.guards and g not in vocabulary.guards:
                    path: Path = ("transitions", t.index, key, j)
                    if path not in doc.values:
                        path = ("transitions", t.index, key)
                    problems.append(
                        _unknown(doc, "spec.unknown-guard", "guard", g, vocabulary.guards, path)
                    )
        for j, e in enumerate(t.effects):
            epath: Path = ("transitions", t.index, "effects", j)
            if vocabulary and vocabulary.effects and e.kind not in vocabulary.effects:
                kpath: Path = (*epath, "kind") if (*epath, "kind") in doc.values else epath
                problems.append(
                    _unknown(
                        doc, "spec.unknown-effect", "effect", e.kind, vocabulary.effects, kpath
                    )
                )
            if e.then is not None and e.then not in triggers and all_transitions:
                problems.append(
                    _unknown(
                        doc,
                        "spec.unknown-trigger",
                        "follow-up trigger",
                        e.then,
                        triggers,
                        (*epath, "then"),
                    )
                )

    if not whole:
        return problems
    # Reachability and dead ends only make sense on a graph whose states all exist.
    if spec.initial in known:
        reached = reachable(spec, [spec.initial])
        for i, s in enumerate(spec.states):
            if s.name not in reached and seen.get(s.name) == i:
                problems.append(
                    doc.error(
                        "spec.unreachable-state",
                        f"state '{s.name}' cannot be reached from "
                        f"the initial state '{spec.initial}'",
                        ("states", i, "name"),
                    )
                )
    for i, s in enumerate(spec.states):
        if s.final or s.pseudo or seen.get(s.name) != i:
            continue
        if not any(t.dest is not None for t in outgoing(spec, s.name)):
            problems.append(
                doc.error(
                    "spec.dead-end",
                    f"state '{s.name}' is not final and has no way out (mark it 'final: true' "
                    "or add a transition from it)",
                    ("states", i, "name"),
                )
            )

    # Ambiguity: one trigger, one source, two transitions no guard tells apart.
    by_key: dict[tuple[str, str], list[TransitionSpec]] = {}
    for t in spec.transitions:
        for src in dict.fromkeys(t.sources):
            by_key.setdefault((t.trigger, src), []).append(t)
    for (trigger, src), group in by_key.items():
        for a_i, a in enumerate(group):
            for b in group[a_i + 1 :]:
                if not _told_apart(a, b):
                    problems.append(
                        doc.error(
                            "spec.ambiguous-transition",
                            f"'{trigger}' from '{src}' is declared on lines {a.line} and {b.line} "
                            "and no guard tells them apart (give one a guard the other has in "
                            "'unless')",
                            ("transitions", b.index, "trigger"),
                        )
                    )

    for i in range(len(spec.invariants)):
        problems.extend(_check_invariant(spec, doc, i, known, triggers))
    first_late: dict[str, int] = {}
    for i in range(len(spec.late_events)):
        problems.extend(_check_late_event(spec, doc, i, known, triggers, first_late))
    problems.extend(_check_migrations(spec, doc, known, vocabulary))
    return problems


def _move_path(doc: Document, kind: str, index: int, j: int, old: str) -> Path:
    """Where the OLD name of a migration's ``j``-th move sits."""
    base: Path = ("migrations", index, kind)
    if kind == "merge":
        at: Path = (*base, "states", j)
        return at if at in doc.values else (*base, "states")
    return (*base, old)


def _check_migrations(
    spec: MachineSpec, doc: Document, known: set[str], vocabulary: Vocabulary | None
) -> list[SpecError]:
    """A state migration moves orders out of a state the spec no longer has (once) into one
    it has (never the pseudo initial state); an effect rename names a known effect."""
    problems: list[SpecError] = []
    seen: dict[tuple[bool, str], int] = {}
    pseudo = {st.name for st in spec.states if st.pseudo}
    effects = set(vocabulary.effects) if vocabulary and vocabulary.effects else set()
    effects |= {e.kind for t in spec.transitions for e in t.effects}
    for m in spec.migrations:
        for j, (old, new) in enumerate(m.moves):
            path = _move_path(doc, m.kind, m.index, j, old)
            if (m.states, old) in seen:
                problems.append(
                    doc.error(
                        "spec.duplicate-migration",
                        f"'{old}' is migrated twice (first at migrations[{seen[m.states, old]}])",
                        path,
                        key=m.kind != "merge",
                    )
                )
            seen.setdefault((m.states, old), m.index)
            if not m.states:
                if new not in effects:
                    problems.append(
                        _unknown(doc, "spec.unknown-effect", "effect", new, effects, path)
                    )
                continue
            if old in known:
                problems.append(
                    doc.error(
                        "spec.migration-source-exists",
                        f"'{old}' is still a state of this spec; a migration moves orders "
                        "out of a state the spec no longer has (remove the state or the "
                        "migration)",
                        path,
                        key=m.kind != "merge",
                    )
                )
            if new not in known:
                problems.append(
                    _unknown(doc, "spec.unknown-state", "state", new, spec.state_names, path)
                )
            elif new in pseudo:
                problems.append(
                    doc.error(
                        "spec.migration-to-pseudo",
                        f"'{old}' cannot be migrated to the pseudo state '{new}'",
                        path,
                        key=m.kind != "merge",
                    )
                )
    return problems


def check_migration_invariants(
    spec: MachineSpec, doc: Document, previous: MachineSpec
) -> list[SpecError]:
    """A migration may not move an order somewhere the lifecycle's invariants forbid:
    an order in a state the ``previous`` spec placed at or after an invariant's
    ``from_states_after`` must land at or after it in ``spec`` (e.g. a Packed order never
    goes back before Packed, where cancelling is allowed again)."""
    problems: list[SpecError] = []
    known = set(spec.state_names)
    current = {inv.id: inv for inv in spec.invariants}
    for inv in previous.invariants:
        kept = current.get(inv.id)  # an invariant the new spec dropped binds nothing
        if kept is None or inv.from_states_after not in previous.state_names:
            continue
        if kept.from_states_after not in known:
            continue  # reported as an unknown state by check_machine
        guarded = reachable(previous, [inv.from_states_after])
        now = reachable(spec, [kept.from_states_after])
        for m in spec.migrations:
            if not m.states:
                continue
            for j, (old, new) in enumerate(m.moves):
                if old in guarded and new in known and new not in now:
                    problems.append(
                        doc.error(
                            "spec.migration-breaks-invariant",
                            f"migrating '{old}' to '{new}' breaks invariant '{inv.id}': "
                            f"'{old}' is at or after '{inv.from_states_after}' but '{new}' is "
                            f"not, so {', '.join(inv.triggers)} would be allowed again",
                            _move_path(doc, m.kind, m.index, j, old),
                            key=m.kind != "merge",
                        )
                    )
    return problems


def _check_late_event(
    spec: MachineSpec,
    doc: Document,
    i: int,
    known: set[str],
    triggers: set[str],
    first: dict[str, int],
) -> list[SpecError]:
    """A late event names a known trigger, once, and known states; from those states and
    every state after them the trigger must not be enabled (else it would both apply and
    be a no-op)."""
    late = spec.late_events[i]
    base: Path = ("late_events", i)
    problems: list[SpecError] = []
    if late.trigger not in triggers:
        problems.append(
            _unknown(
                doc, "spec.unknown-trigger", "trigger", late.trigger, triggers, (*base, "trigger")
            )
        )
    elif late.trigger in first:
        problems.append(
            doc.error(
                "spec.duplicate-late-event",
                f"late event '{late.trigger}' is declared twice (first at "
                f"late_events[{first[late.trigger]}]); list every state in one 'after'",
                (*base, "trigger"),
            )
        )
    else:
        first[late.trigger] = i
    for j, name in enumerate(late.after):
        path: Path = (*base, "after", j) if (*base, "after", j) in doc.values else (*base, "after")
        if name not in known:
            problems.append(
                _unknown(doc, "spec.unknown-state", "state", name, spec.state_names, path)
            )
            continue
        for state in sorted(reachable(spec, [name])):
            enabled = [t for t in outgoing(spec, state) if t.trigger == late.trigger]
            if enabled:
                problems.append(
                    doc.error(
                        "spec.late-event-enabled",
                        f"'{late.trigger}' is declared late after '{name}' but is enabled "
                        f"from '{state}' (line {enabled[0].line}); a trigger cannot be a no-op "
                        "where it applies (name a later state in 'after')",
                        path,
                    )
                )
    return problems


def _check_invariant(
    spec: MachineSpec, doc: Document, i: int, known: set[str], triggers: set[str]
) -> list[SpecError]:
    inv = spec.invariants[i]
    problems: list[SpecError] = []
    base: Path = ("invariants", i, "forbid")
    if inv.from_states_after not in known:
        problems.append(
            _unknown(
                doc,
                "spec.unknown-state",
                "state",
                inv.from_states_after,
                spec.state_names,
                (*base, "from_states_after"),
            )
        )
        return problems
    for j, trig in enumerate(inv.triggers):
        if trig not in triggers:
            problems.append(
                _unknown(
                    doc, "spec.unknown-trigger", "trigger", trig, triggers, (*base, "triggers", j)
                )
            )
    after = reachable(spec, [inv.from_states_after])
    forbidden = set(inv.triggers)
    for t in spec.transitions:
        if t.trigger not in forbidden:
            continue
        for j, src in enumerate(t.sources):
            if src in after:
                problems.append(
                    doc.error(
                        "spec.invariant-violated",
                        f"transition '{t.trigger}' from '{src}' (line {t.line}) breaks invariant "
                        f"'{inv.id}': '{t.trigger}' must not be enabled from "
                        f"'{inv.from_states_after}' or any state after it",
                        _source_path(t, doc, j),
                    )
                )
    return problems


def check_channel(
    channel: ChannelSpec,
    doc: Document,
    machine: MachineSpec,
    vocabulary: Vocabulary | None = None,
    store: StoreSide | None = None,
) -> list[SpecError]:
    """Cross-check a built channel spec against its machine, and its mappings against the
    OMS model and the store side (``engine.spec.mapcheck``). Sections the schema refused
    (``doc.broken``) are not checked again."""
    problems: list[SpecError] = []
    problems.extend(check_mappings(channel, doc, vocabulary, store))
    if channel.machine != machine.name and not doc.is_broken(("machine",)):
        problems.append(
            doc.error(
                "spec.unknown-machine",
                f"channel maps machine '{channel.machine}' but the machine loaded is "
                f"'{machine.name}'",
                ("machine",),
            )
        )
    triggers = machine.triggers
    known_triggers = set(triggers)
    if not doc.is_broken(("status_map",)):
        problems.extend(_check_status_map(channel, doc, machine))
    if not doc.is_broken(("fulfilment",)):
        for event, trig in channel.fulfilment.wms_events.items():
            if trig not in known_triggers:
                problems.append(
                    _unknown(
                        doc,
                        "spec.unknown-trigger",
                        "trigger",
                        trig,
                        triggers,
                        ("fulfilment", "wms_events", event),
                    )
                )
    if vocabulary and vocabulary.transforms:
        for name, mapping in channel.mappings.items():
            for section, rules in (("direct", mapping.direct), ("extra", mapping.extra)):
                for field_rule in rules:
                    transform = field_rule.transform
                    if transform is not None and transform not in vocabulary.transforms:
                        problems.append(
                            _unknown(
                                doc,
                                "spec.unknown-transform",
                                "transform",
                                transform,
                                vocabulary.transforms,
                                ("mappings", name, section, field_rule.index, "transform"),
                            )
                        )
    if not doc.is_broken(("skus",)):
        problems.extend(_check_skus(channel, doc))
    return problems


def _check_status_map(
    channel: ChannelSpec, doc: Document, machine: MachineSpec
) -> list[SpecError]:
    problems: list[SpecError] = []
    states = machine.state_names
    known_states = set(states)
    triggers = machine.triggers
    known_triggers = set(triggers)
    sm = channel.status_map

    for state in sm.outbound:
        if state not in known_states:
            problems.append(
                _unknown(
                    doc,
                    "spec.unknown-state",
                    "state",
                    state,
                    states,
                    ("status_map", "outbound", state),
                )
            )
    for s in machine.states:
        if not s.pseudo and s.name not in sm.outbound:
            problems.append(
                doc.error(
                    "spec.missing-status",
                    f"state '{s.name}' has no outbound status entry (write '{s.name}: null' if it "
                    "is not pushed)",
                    ("status_map", "outbound"),
                )
            )

    import_from_initial = {t.trigger for t in outgoing(machine, machine.initial)}
    for status, rule in sm.inbound.items():
        for key, trig in (("import", rule.import_trigger), ("change", rule.change_trigger)):
            if trig is None:
                continue
            path: Path = ("status_map", "inbound", status, key)
            if trig not in known_triggers:
                problems.append(
                    _unknown(doc, "spec.unknown-trigger", "trigger", trig, triggers, path)
                )
            elif key == "import" and trig not in import_from_initial:
                problems.append(
                    doc.error(
                        "spec.import-not-initial",
                        f"import trigger '{trig}' is not enabled from the initial state "
                        f"'{machine.initial}'",
                        path,
                    )
                )
    inbound_seen: dict[str, str] = {}
    for status in sm.inbound:
        same = inbound_seen.setdefault(canonical_status(status), status)
        if same != status:
            problems.append(
                doc.error(
                    "spec.duplicate-status",
                    f"inbound status '{status}' is the same order state as '{same}' "
                    "(a PS_OS_* key and its state's name): keep one entry",
                    ("status_map", "inbound", status),
                )
            )
    for j, status in enumerate(sm.imported):
        if canonical_status(status) not in inbound_seen:
            problems.append(
                doc.error(
                    "spec.missing-inbound",
                    f"imported status '{status}' has no inbound rule",
                    ("status_map", "imported", j),
                    hint=did_you_mean(status, sm.inbound),
                )
            )

    return problems


def _well_formed(text: str) -> bool:
    try:
        parse_template(text)
    except ValueError:
        return False
    return True


def _check_skus(channel: ChannelSpec, doc: Document) -> list[SpecError]:
    """SKU rules: each candidate a keyword or a template of the kind's placeholders; a
    template names at least one placeholder; nothing listed after ``fallback``."""
    problems: list[SpecError] = []
    data = doc.data.get("skus") if isinstance(doc.data, dict) else None
    if not isinstance(data, dict):
        return problems
    for kind in ("product", "combination"):
        if kind not in data:
            continue
        listed: tuple[SkuCandidate, ...] = getattr(channel.skus, kind)
        allowed = SKU_PLACEHOLDERS[kind]
        after_fallback = False
        for i, cand in enumerate(listed):
            path: Path = ("skus", kind, i)
            if after_fallback:
                problems.append(
                    doc.error(
                        "spec.unreachable-candidate",
                        f"'{cand.text or cand.kind}' comes after 'fallback', which always "
                        "names the unit: it is never used (move it before 'fallback')",
                        path,
                    )
                )
                continue
            if cand.kind == "template":
                for name in cand.placeholders:
                    if name not in allowed:
                        problems.append(
                            doc.error(
                                "spec.unknown-placeholder",
                                f"unknown placeholder '{{{name}}}' in SKU template "
                                f"'{cand.text}' for {kind}s (known: {', '.join(allowed)})",
                                path,
                                hint=did_you_mean(name, allowed),
                            )
                        )
                if not cand.placeholders and _well_formed(cand.text):
                    problems.append(
                        doc.error(
                            "spec.constant-template",
                            f"SKU template '{cand.text}' names no placeholder: every {kind} "
                            "would get the same SKU",
                            path,
                        )
                    )
            elif cand.kind not in SKU_KEYWORDS:
                problems.append(
                    _unknown(
                        doc,
                        "spec.unknown-sku-candidate",
                        "SKU candidate",
                        cand.kind,
                        SKU_KEYWORDS,
                        path,
                    )
                )
            after_fallback = after_fallback or cand.kind == "fallback"
    return problems
