"""Meaning checks of a channel's field mappings, against the OMS model and the store side.

- Every mapping is one the runtime runs (``x-mappings`` of ``schemas/oms.v1.json``) or a
  child of one; every mapping the runtime needs is there.
- Inbound (store -> OMS): each ``to:`` names a field of the record it builds (did-you-mean),
  once; every required field is mapped or has a default; each ``from:`` names a field of the
  store's resource (when the store side is known; an ``extra:`` entry's only against a live
  store, whose modules may add fields); each transform takes the source's type and gives one
  the field accepts. ``extra:`` names fields the model does not know; ``defaults:`` fit.
- Outbound (OMS -> store): each ``from:`` names a field of the OMS record; each ``to:`` a
  writable field of the store's resource; the fields the runtime's write needs are written.
- The SKU rule's candidates and placeholders are mapped; ``prices.sources`` name prices.

One located problem each. Pure: the model and the store side are data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import SpecError
from engine.spec.model import ChannelSpec, FieldRule, MappingSpec
from engine.spec.oms import TYPE_WORDS, OmsModel, RecordModel, fits, oms_model
from engine.spec.source import Document, Path, did_you_mean
from engine.spec.storeside import StoreResource, StoreSide
from engine.spec.vocabulary import TransformType, Vocabulary

PRICE_SOURCES = ("retail_selling_price", "selling_price")


def _words(types: Iterable[str]) -> str:
    shown = [TYPE_WORDS.get(t, t) for t in sorted(types) if t != "any"]
    return ", ".join(shown[:-1]) + (" or " if len(shown) > 1 else "") + shown[-1]


def _what(record: str) -> str:
    return f"the OMS {record.replace('_', ' ')}"


def _first(source: str) -> str:
    parts = source.split(".")
    if parts[0] == "associations" and len(parts) > 1:
        parts = parts[1:]
    return parts[0]


def _fields_hint(name: str, known: Iterable[str], extra_ok: bool) -> str:
    hint = did_you_mean(name, known)
    if hint:
        return hint
    listed = ", ".join(known)
    more = (
        "; to keep a store field the model does not know, put it under extra:" if extra_ok else ""
    )
    return f"its fields: {listed}{more}"


class _Checker:
    def __init__(
        self,
        channel: ChannelSpec,
        doc: Document,
        vocabulary: Vocabulary | None,
        store: StoreSide | None,
        model: OmsModel,
    ) -> None:
        self.channel = channel
        self.doc = doc
        self.types: Mapping[str, TransformType] = vocabulary.transform_types if vocabulary else {}
        self.store = store if store is not None and store.channel == channel.name else None
        self.model = model
        self.problems: list[SpecError] = []
        self.assigned: dict[str, tuple[str, str]] = {}
        """Mapping name -> (record, direction)."""
        self.resources: dict[str, StoreResource | None] = {}
        """Mapping name -> the store resource it reads or writes (None: unknown)."""
        self.used_as_child: set[str] = set()

    def error(
        self, code: str, message: str, path: Path, *, key: bool = False, hint: str | None = None
    ) -> None:
        self.problems.append(self.doc.error(code, message, path, key=key, hint=hint))

    # ------------------------------------------------------------------ which record

    def assign(self) -> None:
        mappings = self.channel.mappings
        for name in mappings:
            role = self.model.roles.get(name)
            if role is not None:
                self.assigned[name] = (role.record, role.direction)
                self.resources[name] = self.store.resource_for(name) if self.store else None
        queue = list(self.assigned)
        while queue:
            name = queue.pop(0)
            record, direction = self.assigned[name]
            rec = self.model.record(record)
            for child in mappings[name].children:
                base: Path = ("mappings", name, "children", child.index)
                if direction == "out":
                    self.error(
                        "spec.inbound-only",
                        f"'{name}' writes to the store: only inbound mappings have children",
                        base,
                    )
                    continue
                fmodel = rec.fields.get(child.target)
                if fmodel is None or fmodel.record is None:
                    nested = [f.name for f in rec.fields.values() if f.record]
                    self.error(
                        "spec.unknown-field",
                        f"{_what(record)} has no field '{child.target}' filled by a child mapping",
                        (*base, "to"),
                        hint=did_you_mean(child.target, nested)
                        or (f"those are: {', '.join(nested)}" if nested else None),
                    )
                    continue
                if child.spec is None:
                    continue
                self.used_as_child.add(child.mapping)
                parent_res = self.resources.get(name)
                res: StoreResource | None = None
                if parent_res is not None and self.store is not None:
                    res = parent_res.associations.get(_first(child.source))
                    if res is None:
                        self.error(
                            "spec.unknown-store-field",
                            f"{self.store.label} {parent_res.name} have no list "
                            f"'{child.source}' to map with '{child.mapping}'",
                            (*base, "from"),
                            hint=did_you_mean(child.source, parent_res.associations),
                        )
                known = self.assigned.get(child.mapping)
                if known is None:
                    self.assigned[child.mapping] = (fmodel.record, "in")
                    self.resources[child.mapping] = res
                    queue.append(child.mapping)
                elif known[0] != fmodel.record:
                    self.error(
                        "spec.wrong-mapping",
                        f"mapping '{child.mapping}' builds {_what(known[0])}, but "
                        f"'{child.target}' holds {_what(fmodel.record)} records",
                        (*base, "mapping"),
                    )
                elif self.resources.get(child.mapping) is None:
                    self.resources[child.mapping] = res

    def roles(self) -> None:
        mappings = self.channel.mappings
        child_records = {
            f.record: (r.name, f.name)
            for r in self.model.records.values()
            for f in r.fields.values()
            if f.record
        }
        parent_mapping = {
            role.record: role.name for role in self.model.roles.values() if role.direction == "in"
        }
        dangling = [
            c.mapping for m in mappings.values() for c in m.children if c.spec is None
        ]  # a child naming a mapping that is not there (reported by the builder)
        for name in mappings:
            role = self.model.roles.get(name)
            if dangling and name not in self.used_as_child and did_you_mean(name, dangling):
                continue  # most likely the one a misspelt child reference means
            if name not in self.assigned:
                self.error(
                    "spec.unused-mapping",
                    f"mapping '{name}' is not run by omsflow: name it after what it maps "
                    "(omsflow spec schema oms: x-mappings) or use it as a child mapping",
                    ("mappings", name),
                    key=True,
                    hint=did_you_mean(name, self.model.roles),
                )
            elif (
                role is not None
                and role.record in child_records
                and name not in self.used_as_child
            ):
                holder, field_name = child_records[role.record]
                parent = parent_mapping.get(holder, holder)
                self.error(
                    "spec.unused-mapping",
                    f"mapping '{name}' is not used: '{parent}' must name it under children "
                    f"({{from: <store list>, to: {field_name}, mapping: {name}}})",
                    ("mappings", name),
                    key=True,
                )
        for role in self.model.roles.values():
            if role.needed and role.name not in mappings:
                self.error(
                    "spec.missing-mapping",
                    f"no mapping '{role.name}' ({role.description})",
                    ("mappings",),
                    key=True,
                    hint=did_you_mean(role.name, mappings),
                )

    # ------------------------------------------------------------------ types

    def _source_type(
        self, res: StoreResource | None, source: str, path: Path, *, check: bool
    ) -> str:
        """The store-side type of ``source`` (``any`` when unknown); an unknown field is a
        problem when ``check``."""
        if res is None or self.store is None:
            return "any"
        first = _first(source)
        parts = [p for p in source.split(".") if p != "associations"]
        deeper = len(parts) > 1
        found = res.fields.get(first)
        if found is not None:
            return "any" if deeper else found.type
        if first in res.associations and deeper:
            # a field of an associated record (``detail.product_weight``): its own type, so
            # a transform that cannot take it is refused here, not by the first import
            rest = ".".join(parts[1:])
            return self._source_type(res.associations[first], rest, path, check=False)
        if first in res.associations or first == "id":
            return "any"
        if check:
            self.error(
                "spec.unknown-store-field",
                f"{self.store.label} {res.name} have no field '{first}'",
                path,
                hint=did_you_mean(first, res.names()),
            )
        return "any"

    def _through(self, rule: FieldRule, source_type: str, base: Path, what: str) -> str:
        """The type the rule's transform gives (input checked)."""
        if rule.transform is None:
            return source_type
        sig = self.types.get(rule.transform)
        if sig is None:
            return "any"
        if source_type != "any" and source_type not in sig.inputs:
            self.error(
                "spec.transform-type",
                f"transform '{rule.transform}' takes {_words(sig.inputs)}, but {what} is "
                f"{TYPE_WORDS.get(source_type, source_type)}",
                (*base, "transform"),
                hint=self._suggest(source_type, None),
            )
            return "any"
        return sig.output or source_type

    def _suggest(self, source_type: str, target_type: str | None) -> str | None:
        names = [
            name
            for name, sig in self.types.items()
            if source_type in sig.inputs
            and (target_type is None or fits(sig.output or source_type, target_type))
        ]
        if not names:
            return None
        return (
            f"use transform: {names[0]}"
            if len(names) == 1
            else (f"transforms that fit: {', '.join(names)}")
        )

    # ------------------------------------------------------------------ inbound

    def inbound(self, name: str, m: MappingSpec, rec: RecordModel) -> None:
        res = self.resources.get(name)
        seen: dict[str, str] = {}
        mappable = rec.mappable
        for rule in m.direct:
            base: Path = ("mappings", name, "direct", rule.index)
            fmodel = rec.fields.get(rule.target)
            src = self._source_type(res, rule.source, (*base, "from"), check=True)
            where = (
                f"{res.name}.{'.'.join(p for p in rule.source.split('.') if p != 'associations')}"
                if res is not None
                else rule.source
            )
            out = self._through(rule, src, base, where)
            if fmodel is None or fmodel.type == "extra":
                self.error(
                    "spec.unknown-field",
                    f"{_what(rec.name)} has no field '{rule.target}'",
                    (*base, "to"),
                    hint=_fields_hint(rule.target, mappable, rec.has_extra),
                )
                continue
            if fmodel.record is not None:
                self.error(
                    "spec.child-field",
                    f"'{rule.target}' holds {_what(fmodel.record)} records: fill it under "
                    f"children ({{from: <store list>, to: {rule.target}, mapping: ...}})",
                    (*base, "to"),
                )
                continue
            self._once(seen, rule.target, base, "direct")
            if not fits(out, fmodel.type):
                self.error(
                    "spec.type-mismatch",
                    f"'{rule.target}' is {TYPE_WORDS[fmodel.type]}, but {where} "
                    + (f"through '{rule.transform}' " if rule.transform else "")
                    + f"gives {TYPE_WORDS.get(out, out)}",
                    (*base, "to"),
                    hint=self._suggest(src, fmodel.type),
                )
        for rule in m.extra:
            base = ("mappings", name, "extra", rule.index)
            live = self.store is not None and self.store.live
            src = self._source_type(res, rule.source, (*base, "from"), check=live)
            self._through(rule, src, base, rule.source)
            if rule.target in rec.fields:
                self.error(
                    "spec.extra-is-field",
                    f"'{rule.target}' is a field of {_what(rec.name)}: map it under direct",
                    (*base, "to"),
                )
                continue
            self._once(seen, rule.target, base, "extra")
        for child in m.children:
            if child.target in rec.fields:
                self._once(seen, child.target, ("mappings", name, "children", child.index), "")
        for key, value in m.defaults.items():
            self._default(name, rec, key, value, seen)
        if not m.complete:
            return  # a part the schema refused may be the one that maps it
        for fname in rec.required:
            fmodel = rec.fields[fname]
            if fname in seen or fmodel.has_default:
                continue
            path: Path = ("mappings", name, "direct")
            located = path if path in self.doc.keys else ("mappings", name)
            how = (
                f"{{from: <store list>, to: {fname}, mapping: ...}} under children"
                if fmodel.record
                else f"{{from: <store field>, to: {fname}}} under direct, or a value under "
                "defaults"
            )
            self.error(
                "spec.missing-field",
                f"'{name}' does not map '{fname}', which {_what(rec.name)} needs: add {how}",
                located,
                key=True,
            )

    def _once(self, seen: dict[str, str], target: str, base: Path, section: str) -> None:
        if target in seen:
            self.error(
                "spec.duplicate-target",
                f"'{target}' is mapped twice (first at {seen[target]})",
                (*base, "to") if section else base,
            )
        else:
            seen[target] = f"line {self.doc.locate(base).line}"

    def _default(
        self, name: str, rec: RecordModel, key: str, value: Any, seen: dict[str, str]
    ) -> None:
        path: Path = ("mappings", name, "defaults", key)
        fmodel = rec.fields.get(key)
        if fmodel is None or fmodel.type == "extra":
            self.error(
                "spec.unknown-field",
                f"{_what(rec.name)} has no field '{key}'",
                path,
                key=True,
                hint=_fields_hint(key, rec.mappable, False),
            )
            return
        if fmodel.record is not None:
            self.error(
                "spec.child-field",
                f"'{key}' holds records: it has no default value",
                path,
                key=True,
            )
            return
        if key in seen:
            self.error(
                "spec.duplicate-target",
                f"'{key}' is both mapped ({seen[key]}) and given a default",
                path,
                key=True,
            )
            return
        seen[key] = f"line {self.doc.locate(path, key=True).line}"
        if not _value_fits(value, fmodel.type):
            self.error(
                "spec.type-mismatch",
                f"default {value!r} for '{key}' is not {TYPE_WORDS[fmodel.type]}",
                path,
            )

    # ------------------------------------------------------------------ outbound

    def outbound(self, name: str, m: MappingSpec, rec: RecordModel) -> None:
        res = self.resources.get(name)
        seen: dict[str, str] = {}
        for key in ("extra", "defaults"):
            if getattr(m, key):
                self.error(
                    "spec.inbound-only",
                    f"'{name}' writes to the store: '{key}' is for inbound mappings",
                    ("mappings", name, key),
                    key=True,
                )
        for rule in m.direct:
            base: Path = ("mappings", name, "direct", rule.index)
            fmodel = rec.fields.get(rule.source)
            if fmodel is None:
                self.error(
                    "spec.unknown-field",
                    f"{_what(rec.name)} record has no field '{rule.source}'",
                    (*base, "from"),
                    hint=_fields_hint(rule.source, rec.mappable, False),
                )
                src = "any"
            else:
                src = fmodel.type
            out = self._through(rule, src, base, f"'{rule.source}'")
            self._once(seen, rule.target, base, "direct")
            if res is None or self.store is None:
                continue
            target = res.fields.get(rule.target)
            if target is None:
                self.error(
                    "spec.unknown-store-field",
                    f"{self.store.label} {res.name} have no field '{rule.target}'",
                    (*base, "to"),
                    hint=did_you_mean(rule.target, res.fields),
                )
                continue
            if target.read_only:
                self.error(
                    "spec.read-only-field",
                    f"{self.store.label} {res.name}.{rule.target} is read-only: "
                    "the store does not take writes to it",
                    (*base, "to"),
                )
            elif not fits(out, target.type) and target.type != "text":
                self.error(
                    "spec.type-mismatch",
                    f"{res.name}.{rule.target} is {TYPE_WORDS.get(target.type, target.type)}, "
                    f"but '{rule.source}' gives {TYPE_WORDS.get(out, out)}",
                    (*base, "to"),
                    hint=self._suggest(src, target.type),
                )
        if not m.complete or self.store is None:
            return
        for needed in self.store.writes.get(name, ()):
            if needed not in seen:
                self.error(
                    "spec.missing-field",
                    f"'{name}' does not write '{needed}', which "
                    f"{self.model.roles[name].description if name in self.model.roles else name}"
                    " needs",
                    ("mappings", name),
                    key=True,
                )

    # ------------------------------------------------------------------ cross-checks

    def skus(self) -> None:
        if self.doc.is_broken(("skus",)):
            return
        targets = {
            name: {r.target for r in m.direct} | set(m.defaults)
            for name, m in self.channel.mappings.items()
        }
        own = {"product": "product_in", "combination": "combination_in"}
        for kind in ("product", "combination"):
            for i, cand in enumerate(self.channel.skus.candidates(kind)):
                needs: list[tuple[str, str]] = []
                if cand.kind in ("reference", "ean13"):
                    needs.append((own[kind], cand.kind))
                for ph in cand.placeholders:
                    if ph in ("reference", "ean13"):
                        needs.append((own[kind], ph))
                    elif ph == "product_reference":
                        needs.append(("product_in", "reference"))
                for mapping, fname in needs:
                    m = self.channel.mappings.get(mapping)
                    if m is None or not m.complete or fname in targets.get(mapping, set()):
                        continue
                    path: Path = ("skus", kind, i)
                    self.error(
                        "spec.sku-field-unmapped",
                        f"SKU candidate '{cand.text or cand.kind}' uses the {fname}, but "
                        f"'{mapping}' does not map '{fname}'",
                        path if path in self.doc.values else ("mappings", mapping),
                        key=path not in self.doc.values,
                    )

    def prices(self) -> None:
        if self.doc.is_broken(("prices",)) or ("prices",) not in self.doc.values:
            return
        for i, source in enumerate(self.channel.prices.sources):
            if source not in PRICE_SOURCES:
                self.error(
                    "spec.unknown-field",
                    f"unknown price source '{source}' (the OMS prices are "
                    f"{', '.join(PRICE_SOURCES)})",
                    ("prices", "sources", i),
                    hint=did_you_mean(source, PRICE_SOURCES),
                )

    def run(self) -> list[SpecError]:
        self.assign()
        self.roles()
        for name, (record, direction) in self.assigned.items():
            m = self.channel.mappings[name]
            rec = self.model.record(record)
            if direction == "in":
                self.inbound(name, m, rec)
            else:
                self.outbound(name, m, rec)
        self.skus()
        self.prices()
        return self.problems


def _value_fits(value: Any, kind: str) -> bool:
    if value is None or kind == "any":
        return True
    if kind == "text":
        return isinstance(value, str)
    if kind in ("integer", "id"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return ok and (kind == "integer" or value > 0)
    if kind == "decimal":
        if isinstance(value, bool):
            return False
        try:
            Decimal(str(value))
        except InvalidOperation:
            return False
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "datetime":
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            return False
        return True
    return True


def check_mappings(
    channel: ChannelSpec,
    doc: Document,
    vocabulary: Vocabulary | None = None,
    store: StoreSide | None = None,
    model: OmsModel | None = None,
) -> list[SpecError]:
    """Every meaning problem of the channel's mappings (see the module docstring)."""
    if doc.refused(("mappings",)):
        return []
    return _Checker(channel, doc, vocabulary, store, model or oms_model()).run()
