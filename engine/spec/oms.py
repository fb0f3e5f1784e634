"""The OMS side of the channel mappings as a declared model (``schemas/oms.v1.json``).

Every record a mapping builds (inbound: order, order line, customer, address, product,
variation) or reads (outbound: stock, price, status) has a field list with a type
(``x-type``) and required-ness (JSON Schema ``required``: an inbound mapping must map the
field or give it a default; its value may still be empty). ``x-mappings`` names the mappings
the runtime runs and the record each one builds or reads.

Field types: ``text``, ``integer``, ``decimal``, ``boolean``, ``datetime`` (UTC), ``id`` (a
store id; 0 means none), ``list``/``record`` (filled by a child mapping), ``extra`` (the
fields a spec declares under ``extra:``). The store side adds ``date`` (a shop-local date
text), ``multilingual`` (one value per store language) and ``any`` (unknown: fits
everything). Pure: reads the bundled JSON through importlib.resources.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

OMS_SCHEMA_ID = "https://omsflow.dev/schemas/oms.v1.json"

SCALAR_TYPES = ("text", "integer", "decimal", "boolean", "datetime", "id")
STORE_TYPES = (*SCALAR_TYPES, "date", "multilingual", "any")

_FITS: Mapping[str, frozenset[str]] = {
    "text": frozenset({"text"}),
    "integer": frozenset({"integer", "id"}),
    "decimal": frozenset({"decimal", "integer"}),
    "id": frozenset({"id", "integer"}),
    "boolean": frozenset({"boolean"}),
    "datetime": frozenset({"datetime"}),
    "date": frozenset({"date", "datetime"}),
    "multilingual": frozenset({"multilingual", "text"}),
}

TYPE_WORDS: Mapping[str, str] = {
    "text": "a text",
    "integer": "a whole number",
    "decimal": "a decimal number",
    "boolean": "a yes/no value",
    "datetime": "a date and time",
    "id": "a store id",
    "date": "a shop-local date text",
    "multilingual": "a text in every store language",
    "any": "a value",
    "list": "a list of records",
    "record": "a record",
    "extra": "the extra fields",
}


def fits(source: str, target: str) -> bool:
    """Whether a value of type ``source`` may fill a field of type ``target`` as it is
    (``any`` on either side always fits)."""
    if source == "any" or target == "any" or source == target:
        return True
    return source in _FITS.get(target, frozenset())


@dataclass(frozen=True)
class FieldModel:
    """One field of an OMS record."""

    name: str
    type: str
    required: bool
    description: str = ""
    record: str | None = None
    """For ``list``/``record`` fields: the record the child mapping builds."""
    max_length: int | None = None
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True)
class RecordModel:
    """One OMS record: its fields, in the model's order."""

    name: str
    description: str
    fields: Mapping[str, FieldModel]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields.values() if f.required)

    @property
    def mappable(self) -> tuple[str, ...]:
        """Fields a mapping entry may name (every field but ``extra``)."""
        return tuple(f.name for f in self.fields.values() if f.type != "extra")

    @property
    def has_extra(self) -> bool:
        return any(f.type == "extra" for f in self.fields.values())


@dataclass(frozen=True)
class MappingRole:
    """A mapping the runtime runs, by name: the record it builds (``in``) or reads (``out``)."""

    name: str
    record: str
    direction: str
    needed: bool
    description: str = ""


@dataclass(frozen=True)
class OmsModel:
    records: Mapping[str, RecordModel]
    roles: Mapping[str, MappingRole]

    def record(self, name: str) -> RecordModel:
        return self.records[name]


def _field(name: str, body: Mapping[str, Any], required: bool) -> FieldModel:
    kind = str(body.get("x-type", "any"))
    return FieldModel(
        name=name,
        type=kind,
        required=required,
        description=str(body.get("description", "")),
        record=body.get("x-record"),
        max_length=body.get("maxLength"),
        default=body.get("default"),
        has_default="default" in body,
    )


def parse_model(doc: Mapping[str, Any]) -> OmsModel:
    """The model from the parsed schema document."""
    records: dict[str, RecordModel] = {}
    for name, body in doc["$defs"].items():
        required = set(body.get("required", ()))
        records[name] = RecordModel(
            name=name,
            description=str(body.get("description", "")),
            fields={
                fname: _field(fname, fbody, fname in required)
                for fname, fbody in body["properties"].items()
            },
        )
    roles = {
        name: MappingRole(
            name=name,
            record=str(r["record"]),
            direction=str(r["direction"]),
            needed=bool(r.get("needed", False)),
            description=str(r.get("description", "")),
        )
        for name, r in doc.get("x-mappings", {}).items()
    }
    return OmsModel(records=records, roles=roles)


@cache
def model_text() -> str:
    """The OMS model's JSON Schema, as shipped (``omsflow spec schema oms``)."""
    return (resources.files("engine.spec") / "schemas" / "oms.v1.json").read_text("utf-8")


@cache
def oms_model() -> OmsModel:
    """The bundled OMS model."""
    doc: dict[str, Any] = json.loads(model_text())
    return parse_model(doc)
