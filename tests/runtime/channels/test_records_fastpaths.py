"""The store records' fast paths give what the plain definitions give: ``assoc_ids`` (plain
dicts skip the ``Mapping`` check) and ``Product.from_data`` (the name's languages split
once for ``name`` and ``names``)."""

from __future__ import annotations

from collections import UserDict
from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.runtime.channels.prestashop.records import (
    Product,
    as_int,
    assoc_ids,
    language_value,
    language_values,
)

_ids = st.one_of(st.integers(0, 10**6), st.integers(0, 10**6).map(str), st.just(""), st.none())
_item = st.one_of(
    st.builds(lambda i: {"id": i}, _ids),
    st.builds(lambda i: UserDict({"id": i}), _ids),  # a Mapping that is not a dict
    st.builds(lambda i: [i], _ids),  # not a Mapping: skipped
    st.none(),
)


def _plain_assoc_ids(data: Mapping[str, Any], name: str) -> tuple[int, ...]:
    assocs = data.get("associations") or {}
    items = assocs.get(name) if isinstance(assocs, Mapping) else None
    if not items:
        return ()
    return tuple(as_int(item.get("id")) for item in items if isinstance(item, Mapping))


@given(st.lists(_item, max_size=6), st.sampled_from(["categories", "images", "other"]))
def test_assoc_ids_is_the_plain_definition(items: list[Any], name: str) -> None:
    data = {"associations": {"categories": items, "images": items[:2]}}
    assert assoc_ids(data, name) == _plain_assoc_ids(data, name)


_text = st.text(max_size=5)
_name = st.one_of(
    _text,
    st.none(),
    st.lists(
        st.fixed_dictionaries({"id": st.sampled_from(["1", "2", "3", 1, 2]), "value": _text}),
        max_size=3,
    ),
)


@given(_name, st.one_of(st.none(), st.integers(1, 3)))
def test_product_name_and_names_are_the_plain_definitions(name: Any, language: Any) -> None:
    p = Product.from_data({"id": "7", "name": name}, language)
    assert p.name == language_value(name, language)
    assert p.names == language_values(name)
