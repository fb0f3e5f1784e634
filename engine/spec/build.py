"""Plain data -> spec objects (``engine.spec.model``), with located problems.

Reads only what the schema accepted: the parts it refused (``Document.broken``) are left
out (a refused list item) or replaced by their defaults (a refused section), so the meaning
checks still run on the rest of the file. What is checked here is what the schema cannot
say (``dest`` vs ``internal``, durations, mapping references).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from engine.errors import SpecError
from engine.spec.model import (
    CatalogRateSpec,
    ChannelSpec,
    ChildRule,
    ConnectionSpec,
    EffectSpec,
    FieldRule,
    FulfilmentSpec,
    InboundRule,
    InvariantSpec,
    LabelSpec,
    LateEventSpec,
    MachineSpec,
    MappingSpec,
    MigrationSpec,
    PricesSpec,
    RateSpec,
    RetrySpec,
    SchedulesSpec,
    SkuCandidate,
    SkuRuleSpec,
    StateSpec,
    StatusMapSpec,
    TransitionSpec,
)
from engine.spec.source import Document, Path, did_you_mean

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# Keys the builder reads, per object; tests keep them equal to the schema's properties.
MACHINE_KEYS = frozenset(
    {
        "machine",
        "version",
        "description",
        "initial",
        "states",
        "transitions",
        "invariants",
        "late_events",
        "migrations",
    }
)
STATE_KEYS = frozenset({"name", "final", "pseudo", "description"})
TRANSITION_KEYS = frozenset(
    {"trigger", "source", "dest", "internal", "guards", "unless", "effects", "description"}
)
EFFECT_KEYS = frozenset({"kind", "params", "then"})
INVARIANT_KEYS = frozenset({"id", "description", "forbid"})
FORBID_KEYS = frozenset({"triggers", "from_states_after"})
LATE_EVENT_KEYS = frozenset({"trigger", "after", "description"})
CHANNEL_KEYS = frozenset(
    {
        "channel",
        "machine",
        "description",
        "connection",
        "permissions",
        "status_map",
        "schedules",
        "mappings",
        "prices",
        "fulfilment",
        "skus",
    }
)
CONNECTION_KEYS = frozenset(
    {
        "api_path",
        "timeout_seconds",
        "connect_timeout_seconds",
        "max_concurrency",
        "verify_tls",
        "send_email_on_status_change",
        "page_size",
        "retry",
        "rate_limit",
    }
)
SCHEDULE_KEYS = frozenset({"new_orders", "status_changes", "catalog", "backfill", "catalog_rate"})
MAPPING_KEYS = frozenset({"direct", "children", "extra", "defaults"})
FIELD_RULE_KEYS = frozenset({"from", "to", "transform"})
CHILD_RULE_KEYS = frozenset({"from", "to", "mapping"})
PRICES_KEYS = frozenset({"sources", "variation_price"})
SKUS_KEYS = frozenset({"product", "combination"})
FULFILMENT_KEYS = frozenset(
    {
        "delivery",
        "carrier_name",
        "awb_prefix",
        "label",
        "ship_from",
        "wms_endpoint_env",
        "wms_events",
    }
)


def parse_duration(value: Any) -> float:
    """``"500ms"``, ``"1s"``, ``"5m"``, ``"2h"``, ``"90d"`` or a number of seconds -> seconds.

    Raises:
        ValueError: the value is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"not a positive duration: {value!r}")
        return float(value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 1s, 5m, 2h, 90d)")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"not a positive duration: {value!r}")
    return seconds


def parse_days(value: Any) -> int:
    """``"90d"`` (or a plain number of days) -> 90."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = re.match(r"^([0-9]+)d$", str(value).strip())
    if not m:
        raise ValueError(f"not a number of days: {value!r} (use e.g. 90d)")
    return int(m.group(1))


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def machine_buildable(doc: Document) -> bool:
    """Whether enough of a machine document passed the schema to build it (its name,
    initial state, and its states and transitions as lists)."""
    return isinstance(doc.data, dict) and not any(
        doc.is_broken((key,)) if key in ("machine", "initial") else doc.refused((key,))
        for key in ("machine", "initial", "states", "transitions")
    )


def _migration(doc: Document, i: int, data: Mapping[str, Any]) -> MigrationSpec:
    """One ``migrations:`` entry (schema-valid: exactly one kind)."""
    kind, body = next(iter(data.items()))
    if kind == "merge":
        moves = tuple((str(s), str(body["into"])) for s in _names(body["states"]))
    else:
        moves = tuple((str(old), str(new)) for old, new in body.items())
    return MigrationSpec(kind=kind, moves=moves, line=doc.locate(("migrations", i)).line, index=i)


def build_machine(doc: Document) -> tuple[MachineSpec, list[SpecError]]:
    """Spec objects from a machine document, plus build problems. States, transitions and
    invariants the schema refused are left out (``machine_buildable`` must hold)."""
    data: Mapping[str, Any] = doc.data
    problems: list[SpecError] = []
    states = tuple(
        StateSpec(
            name=str(s["name"]),
            final=bool(s.get("final", False)),
            pseudo=bool(s.get("pseudo", False)),
            description=str(s.get("description", "")),
        )
        for i, s in enumerate(data["states"])
        if not doc.is_broken(("states", i))
    )
    transitions: list[TransitionSpec] = []
    for i, t in enumerate(data["transitions"]):
        path: Path = ("transitions", i)
        if doc.is_broken(path):
            continue
        internal = bool(t.get("internal", False))
        dest = t.get("dest")
        if internal and dest is not None:
            problems.append(
                doc.error(
                    "spec.internal-with-dest",
                    "an internal transition has no 'dest'; remove one of 'dest' and 'internal'",
                    (*path, "dest"),
                    key=True,
                )
            )
        elif not internal and dest is None:
            problems.append(
                doc.error(
                    "spec.missing-key",
                    "'dest' is a required property (or set 'internal: true')",
                    path,
                )
            )
        effects = []
        for e in t.get("effects", []) or []:
            if isinstance(e, str):
                effects.append(EffectSpec(kind=e))
            else:
                effects.append(
                    EffectSpec(
                        kind=str(e["kind"]), params=dict(e.get("params") or {}), then=e.get("then")
                    )
                )
        transitions.append(
            TransitionSpec(
                trigger=str(t["trigger"]),
                sources=_names(t["source"]),
                dest=None if internal else (str(dest) if dest is not None else None),
                guards=_names(t.get("guards")),
                unless=_names(t.get("unless")),
                effects=tuple(effects),
                line=doc.locate(path).line,
                index=i,
            )
        )
    invariants = tuple(
        InvariantSpec(
            id=str(inv["id"]),
            triggers=_names(inv["forbid"]["triggers"]),
            from_states_after=str(inv["forbid"]["from_states_after"]),
            description=str(inv.get("description", "")),
            line=doc.locate(("invariants", i)).line,
        )
        for i, inv in enumerate(
            [] if doc.refused(("invariants",)) else data.get("invariants", []) or []
        )
        if not doc.is_broken(("invariants", i))
    )
    late_events = tuple(
        LateEventSpec(
            trigger=str(le["trigger"]),
            after=_names(le["after"]),
            description=str(le.get("description", "")),
            line=doc.locate(("late_events", i)).line,
        )
        for i, le in enumerate(
            [] if doc.refused(("late_events",)) else data.get("late_events", []) or []
        )
        if not doc.is_broken(("late_events", i))
    )
    migrations = tuple(
        _migration(doc, i, m)
        for i, m in enumerate(
            [] if doc.refused(("migrations",)) else data.get("migrations", []) or []
        )
        if not doc.is_broken(("migrations", i))
    )
    spec = MachineSpec(
        name=str(data["machine"]),
        initial=str(data["initial"]),
        states=states,
        transitions=tuple(transitions),
        invariants=invariants,
        late_events=late_events,
        migrations=migrations,
        version=1 if doc.is_broken(("version",)) else int(data.get("version", 1)),
        description=str(data.get("description", "")),
        file=doc.file,
    )
    return spec, problems


def _seconds(doc: Document, value: Any, path: Path, problems: list[SpecError]) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        problems.append(doc.error("spec.invalid-duration", str(exc), path))
        return 1.0


def _rules(doc: Document, body: Mapping[str, Any], name: str, key: str) -> list[FieldRule]:
    if doc.refused(("mappings", name, key)):
        return []
    return [
        FieldRule(
            source=str(r["from"]), target=str(r["to"]), transform=r.get("transform"), index=j
        )
        for j, r in enumerate(body.get(key, []) or [])
        if not doc.is_broken(("mappings", name, key, j))
    ]


def _build_mappings(
    doc: Document, raw: Mapping[str, Any], problems: list[SpecError]
) -> dict[str, MappingSpec]:
    built: dict[str, MappingSpec] = {}
    in_progress: list[str] = []

    def build(name: str) -> MappingSpec:
        if name in built:
            return built[name]
        in_progress.append(name)
        body = raw[name] or {}
        direct = tuple(_rules(doc, body, name, "direct"))
        extra = tuple(_rules(doc, body, name, "extra"))
        defaults = (
            {} if doc.refused(("mappings", name, "defaults")) else dict(body.get("defaults") or {})
        )
        children: list[ChildRule] = []
        kids = [] if doc.refused(("mappings", name, "children")) else body.get("children") or []
        for j, c in enumerate(kids):
            if doc.is_broken(("mappings", name, "children", j)):
                continue
            ref = str(c["mapping"])
            cpath: Path = ("mappings", name, "children", j, "mapping")
            child: MappingSpec | None = None
            if ref in refused:
                pass  # the schema refused it: reported there
            elif ref not in raw:
                problems.append(
                    doc.error(
                        "spec.unknown-mapping",
                        f"unknown mapping '{ref}'",
                        cpath,
                        hint=did_you_mean(ref, raw),
                    )
                )
            elif ref in in_progress:
                problems.append(
                    doc.error(
                        "spec.mapping-cycle",
                        f"mapping '{ref}' includes itself ({' -> '.join([*in_progress, ref])})",
                        cpath,
                    )
                )
            else:
                child = build(ref)
            children.append(
                ChildRule(
                    source=str(c["from"]), target=str(c["to"]), mapping=ref, spec=child, index=j
                )
            )
        in_progress.pop()
        spec = MappingSpec(
            name=name,
            direct=direct,
            children=tuple(children),
            extra=extra,
            defaults=defaults,
            complete=not doc.is_broken(("mappings", name)),
        )
        built[name] = spec
        return spec

    refused = {name for name in raw if doc.refused(("mappings", name))}
    raw = {name: body for name, body in raw.items() if name not in refused}
    for name in raw:
        build(name)
    return {name: built[name] for name in raw}


def parse_template(text: str) -> tuple[str, ...]:
    """The placeholder names of a SKU template (``"{product_reference}-{attributes}"`` ->
    ``("product_reference", "attributes")``), in order, without repeats.

    Raises:
        ValueError: unbalanced braces, an empty ``{}``, or a format spec/conversion
            (only plain ``{name}`` placeholders are allowed).
    """
    names: list[str] = []
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"template '{text}' is malformed ({exc})") from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name:
            raise ValueError(f"template '{text}' has an empty placeholder '{{}}'")
        if spec or conversion:
            raise ValueError(
                f"template '{text}': write plain {{{name}}} (no format spec or conversion)"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _sku_candidates(
    doc: Document, raw: Any, kind: str, problems: list[SpecError]
) -> tuple[SkuCandidate, ...]:
    out: list[SkuCandidate] = []
    for i, item in enumerate(raw):
        text = str(item)
        if "{" in text or "}" in text:
            try:
                names = parse_template(text)
            except ValueError as exc:
                problems.append(doc.error("spec.invalid-template", str(exc), ("skus", kind, i)))
                names = ()
            out.append(SkuCandidate("template", text, names))
        else:
            out.append(SkuCandidate(text.strip()))
    return tuple(out)


def _build_skus(doc: Document, raw: Any, problems: list[SpecError]) -> SkuRuleSpec:
    if not raw:
        return SkuRuleSpec()
    default = SkuRuleSpec()
    return SkuRuleSpec(
        product=_sku_candidates(doc, raw["product"], "product", problems)
        if "product" in raw
        else default.product,
        combination=_sku_candidates(doc, raw["combination"], "combination", problems)
        if "combination" in raw
        else default.combination,
    )


def _section(doc: Document, key: str) -> Any:
    """A top-level section as read: None when absent or refused (in whole or in part) by
    the schema, so its defaults are used."""
    return None if doc.is_broken((key,)) else doc.data.get(key)


def build_channel(doc: Document) -> tuple[ChannelSpec, list[SpecError]]:
    """Spec objects from a channel document (a mapping at the top), plus build problems.
    Sections the schema refused get their defaults; their checks are skipped."""
    data: Mapping[str, Any] = doc.data
    problems: list[SpecError] = []

    conn = _section(doc, "connection") or {}
    retry = conn.get("retry") or {}
    rate = conn.get("rate_limit")
    connection = ConnectionSpec(
        api_path=str(conn.get("api_path", "/api")),
        timeout_seconds=float(conn.get("timeout_seconds", 10.0)),
        connect_timeout_seconds=float(conn.get("connect_timeout_seconds", 5.0)),
        max_concurrency=int(conn.get("max_concurrency", 8)),
        verify_tls=bool(conn.get("verify_tls", True)),
        send_email_on_status_change=bool(conn.get("send_email_on_status_change", False)),
        page_size=int(conn.get("page_size", 500)),
        retry=RetrySpec(
            attempts=int(retry.get("attempts", 5)),
            backoff_seconds=float(retry.get("backoff_seconds", 0.2)),
            max_backoff_seconds=float(retry.get("max_backoff_seconds", 30.0)),
        ),
        rate_limit=RateSpec(
            requests=int(rate["requests"]),
            per_seconds=_seconds(doc, rate["per"], ("connection", "rate_limit", "per"), problems),
        )
        if rate
        else RateSpec(),
    )

    sm = _section(doc, "status_map") or {"outbound": {}, "inbound": {}, "imported": []}
    status_map = StatusMapSpec(
        outbound={str(k): (None if v is None else str(v)) for k, v in sm["outbound"].items()},
        inbound={
            str(k): InboundRule(import_trigger=v.get("import"), change_trigger=v.get("change"))
            for k, v in sm["inbound"].items()
        },
        imported=tuple(str(s) for s in sm["imported"]),
    )

    sch = _section(doc, "schedules") or {
        "new_orders": {"every": 300},
        "status_changes": {"every": 1800},
        "backfill": "90d",
    }

    def every(key: str) -> int:
        return round(_seconds(doc, sch[key]["every"], ("schedules", key, "every"), problems))

    try:
        backfill = parse_days(sch["backfill"])
    except ValueError as exc:
        problems.append(doc.error("spec.invalid-duration", str(exc), ("schedules", "backfill")))
        backfill = 0
    crate = sch.get("catalog_rate")
    schedules = SchedulesSpec(
        new_orders_seconds=every("new_orders"),
        status_changes_seconds=every("status_changes"),
        backfill_days=backfill,
        catalog_seconds=every("catalog") if "catalog" in sch else None,
        catalog_rate=CatalogRateSpec(
            items=int(crate["items"]),
            per_seconds=_seconds(
                doc, crate["per"], ("schedules", "catalog_rate", "per"), problems
            ),
        )
        if crate
        else None,
    )

    pr = _section(doc, "prices")
    prices = (
        PricesSpec(
            sources=tuple(str(s) for s in pr["sources"]),
            variation_price=str(pr.get("variation_price", "impact")),
        )
        if pr
        else PricesSpec()
    )

    ff = _section(doc, "fulfilment") or {}
    lab = ff.get("label") or {}
    fulfilment = FulfilmentSpec(
        delivery=str(ff.get("delivery", "self_ship")),
        carrier_name=str(ff.get("carrier_name", "Self ship")),
        awb_prefix=str(ff.get("awb_prefix", "OMS")),
        label=LabelSpec(
            width_in=float(lab.get("width_in", 4.0)),
            height_in=float(lab.get("height_in", 6.0)),
            barcode=str(lab.get("barcode", "code128")),
        ),
        ship_from={str(k): str(v) for k, v in (ff.get("ship_from") or {}).items()},
        wms_endpoint_env=ff.get("wms_endpoint_env"),
        wms_events={str(k): str(v) for k, v in (ff.get("wms_events") or {}).items()},
    )

    mappings = {} if doc.refused(("mappings",)) else data.get("mappings") or {}
    spec = ChannelSpec(
        name=str(_section(doc, "channel") or ""),
        machine=str(_section(doc, "machine") or ""),
        connection=connection,
        permissions={str(k): tuple(v) for k, v in (_section(doc, "permissions") or {}).items()},
        status_map=status_map,
        schedules=schedules,
        mappings=_build_mappings(doc, mappings, problems),
        prices=prices,
        fulfilment=fulfilment,
        skus=_build_skus(doc, _section(doc, "skus"), problems),
        description=str(_section(doc, "description") or ""),
        file=doc.file,
    )
    return spec, problems
