"""Immutable, typed spec objects: what a validated machine or channel YAML means.

Built by ``engine.spec.build`` after schema validation; never constructed from raw YAML
elsewhere. Mappings are plain dicts typed ``Mapping`` and must be treated as read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.spec.statuses import canonical_status

# ----------------------------------------------------------------------------- machine


@dataclass(frozen=True)
class StateSpec:
    """One state of a machine."""

    name: str
    final: bool = False
    """An end state: accepts no trigger."""
    pseudo: bool = False
    """A technical state (e.g. not imported yet): needs no channel status mapping."""
    description: str = ""


@dataclass(frozen=True)
class EffectSpec:
    """An effect declared on a transition, by name from the engine's vocabulary."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    then: str | None = None
    """Follow-up trigger fired on the order once the effect was delivered successfully."""


@dataclass(frozen=True)
class TransitionSpec:
    """A trigger moving an order from any of ``sources`` to ``dest``."""

    trigger: str
    sources: tuple[str, ...]
    dest: str | None
    """None: an internal transition (the state stays; only effects run)."""
    guards: tuple[str, ...] = ()
    """Guard names that must all hold."""
    unless: tuple[str, ...] = ()
    """Guard names that must all fail."""
    effects: tuple[EffectSpec, ...] = ()
    line: int = 0
    """1-based line of the transition in its file (0 when built in code)."""
    index: int = 0
    """Position in the spec's ``transitions`` list."""

    @property
    def internal(self) -> bool:
        return self.dest is None


@dataclass(frozen=True)
class InvariantSpec:
    """A property proven over the graph: ``triggers`` are never enabled from
    ``from_states_after`` or any state reachable from it."""

    id: str
    triggers: tuple[str, ...]
    from_states_after: str
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class MigrationSpec:
    """One declared migration: ``kind`` rename | removed | merge (state moves, OLD -> NEW:
    orders in OLD, a state the spec no longer has, go to NEW) or rename_effect (queued
    outbox rows of effect OLD are delivered as NEW)."""

    kind: str
    moves: tuple[tuple[str, str], ...]
    line: int = 0
    index: int = 0

    @property
    def states(self) -> bool:
        return self.kind != "rename_effect"


@dataclass(frozen=True)
class LateEventSpec:
    """A trigger that may arrive after the order is already past it (a warehouse reporting
    ``picked`` and then ``packed``): from the ``after`` states and every state reachable
    from them it is acknowledged as a no-op (recorded, not refused, not flagged)."""

    trigger: str
    after: tuple[str, ...]
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class MachineSpec:
    """A validated state machine (e.g. the order lifecycle)."""

    name: str
    initial: str
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    invariants: tuple[InvariantSpec, ...] = ()
    late_events: tuple[LateEventSpec, ...] = ()
    migrations: tuple[MigrationSpec, ...] = ()
    version: int = 1
    description: str = ""
    file: str = ""

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger name, in order of first appearance."""
        return tuple(dict.fromkeys(t.trigger for t in self.transitions))

    def state_moves(self) -> dict[str, str]:
        """Every declared state migration, OLD -> NEW (``migrations:``)."""
        return {o: n for m in self.migrations if m.states for o, n in m.moves}

    def effect_moves(self) -> dict[str, str]:
        """Every declared effect rename, OLD -> NEW."""
        return {o: n for m in self.migrations if not m.states for o, n in m.moves}

    def state(self, name: str) -> StateSpec:
        """The state called ``name``; KeyError if there is none."""
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def final_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if s.final)

    @property
    def pseudo_states(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states if s.pseudo)


# ----------------------------------------------------------------------------- channel


@dataclass(frozen=True)
class RetrySpec:
    attempts: int = 5
    backoff_seconds: float = 0.2
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True)
class RateSpec:
    """A token bucket: ``requests`` calls per ``per_seconds``."""

    requests: int = 50
    per_seconds: float = 1.0


@dataclass(frozen=True)
class ConnectionSpec:
    api_path: str = "/api"
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 5.0
    max_concurrency: int = 8
    verify_tls: bool = True
    send_email_on_status_change: bool = False
    page_size: int = 500
    retry: RetrySpec = field(default_factory=RetrySpec)
    rate_limit: RateSpec = field(default_factory=RateSpec)


@dataclass(frozen=True)
class InboundRule:
    """What a channel status means for the OMS."""

    import_trigger: str | None
    """Trigger for an order first seen in this status."""
    change_trigger: str | None = None
    """Trigger fired when a known order moves to this status (None: recorded only)."""


@dataclass(frozen=True)
class StatusMapSpec:
    outbound: Mapping[str, str | None]
    """OMS state -> channel status name; None: not pushed."""
    inbound: Mapping[str, InboundRule]
    """Channel status name -> InboundRule."""
    imported: tuple[str, ...]
    """Only orders in these channel statuses are imported."""

    def inbound_key(self, status: str) -> str | None:
        """The ``inbound`` entry that stands for ``status``, written in either form (a
        ``PS_OS_*`` key or the state's name, see ``engine.spec.statuses``); None if none."""
        if status in self.inbound:
            return status
        wanted = canonical_status(status)
        for name in self.inbound:
            if canonical_status(name) == wanted:
                return name
        return None


@dataclass(frozen=True)
class CatalogRateSpec:
    items: int
    per_seconds: float


@dataclass(frozen=True)
class SchedulesSpec:
    new_orders_seconds: int
    status_changes_seconds: int
    backfill_days: int
    catalog_seconds: int | None = None
    catalog_rate: CatalogRateSpec | None = None


@dataclass(frozen=True)
class FieldRule:
    """Copy ``source`` (dotted path) to ``target``, through ``transform`` if set."""

    source: str
    target: str
    transform: str | None = None
    index: int = 0
    """Position in its list (``direct`` or ``extra``) in the file."""


@dataclass(frozen=True)
class ChildRule:
    """Map each item of ``source`` with the mapping called ``mapping`` into ``target``."""

    source: str
    target: str
    mapping: str
    spec: MappingSpec | None = None
    """The resolved child mapping (None only if it could not be resolved)."""
    index: int = 0
    """Position in the mapping's ``children`` list in the file."""


@dataclass(frozen=True)
class MappingSpec:
    """A named field mapping: ``direct`` rules fill fields of the OMS record (inbound) or
    of the store resource (outbound); ``extra`` rules keep store fields the OMS model does
    not know (inbound); ``defaults`` fill fields nothing maps; ``children`` map nested lists
    with other mappings."""

    name: str
    direct: tuple[FieldRule, ...] = ()
    children: tuple[ChildRule, ...] = ()
    extra: tuple[FieldRule, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    complete: bool = True
    """False when the schema refused part of it (that part is left out; its required
    fields are then not checked)."""


@dataclass(frozen=True)
class PricesSpec:
    """Which OMS price is shown in the store (the price record's ``price``)."""

    sources: tuple[str, ...] = ("selling_price", "retail_selling_price")
    variation_price: str = "impact"


@dataclass(frozen=True)
class LabelSpec:
    width_in: float = 4.0
    height_in: float = 6.0
    barcode: str = "code128"


@dataclass(frozen=True)
class FulfilmentSpec:
    delivery: str = "self_ship"
    carrier_name: str = "Self ship"
    awb_prefix: str = "OMS"
    label: LabelSpec = field(default_factory=LabelSpec)
    ship_from: Mapping[str, str] = field(default_factory=dict)
    """The label's sender (name, address1, address2, postcode, city, country): each given
    field overrides the shop's ``PS_SHOP_*`` fact read at connect."""
    wms_endpoint_env: str | None = None
    wms_events: Mapping[str, str] = field(default_factory=dict)
    """WMS event type -> lifecycle trigger."""


SKU_KEYWORDS = ("reference", "ean13", "fallback")
"""Candidate names a SKU rule may list besides templates."""
SKU_PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "product": ("store", "product_id", "reference", "ean13"),
    "combination": (
        "store",
        "product_id",
        "combination_id",
        "reference",
        "ean13",
        "product_reference",
        "attributes",
    ),
}
"""Placeholders a template may use, per unit kind (``attributes``: the combination's
attribute values, slugged, joined by ``-``)."""


@dataclass(frozen=True)
class SkuCandidate:
    """One way to name a sellable unit: ``reference`` (its own reference), ``ean13``,
    ``template`` (``text`` with ``{placeholder}``s) or ``fallback`` (the store's ids:
    ``ps{store}-{product_id}[-{combination_id}]``, always unique)."""

    kind: str
    text: str = ""
    placeholders: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """How a SKU made by this candidate is recorded: ``reference``, ``ean13``,
        ``rule:<template>`` or ``fallback``."""
        return f"rule:{self.text}" if self.kind == "template" else self.kind


FALLBACK = SkuCandidate("fallback")


@dataclass(frozen=True)
class SkuRuleSpec:
    """How the OMS names a store's sellable units, per kind: candidates in order, the first
    usable one wins; ``fallback`` is always tried last, listed or not."""

    product: tuple[SkuCandidate, ...] = (SkuCandidate("reference"), FALLBACK)
    combination: tuple[SkuCandidate, ...] = (
        SkuCandidate("reference"),
        SkuCandidate("ean13"),
        SkuCandidate(
            "template",
            "{product_reference}-{attributes}",
            ("product_reference", "attributes"),
        ),
        FALLBACK,
    )

    def candidates(self, kind: str) -> tuple[SkuCandidate, ...]:
        """The candidates for ``product`` or ``combination``, ending with ``fallback``."""
        listed = self.product if kind == "product" else self.combination
        return listed if listed and listed[-1] == FALLBACK else (*listed, FALLBACK)


@dataclass(frozen=True)
class ChannelSpec:
    """A validated channel spec, cross-checked against its machine."""

    name: str
    machine: str
    connection: ConnectionSpec
    permissions: Mapping[str, tuple[str, ...]]
    status_map: StatusMapSpec
    schedules: SchedulesSpec
    mappings: Mapping[str, MappingSpec]
    prices: PricesSpec = field(default_factory=PricesSpec)
    fulfilment: FulfilmentSpec = field(default_factory=FulfilmentSpec)
    skus: SkuRuleSpec = field(default_factory=SkuRuleSpec)
    description: str = ""
    file: str = ""
