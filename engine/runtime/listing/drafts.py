"""Product drafts: what a seller wants listed, validated against PrestaShop's field rules.

A draft is plain data (no ids, no IO against the store). This module owns the field rules
(PrestaShop's ``Validate::isReference``/``isCatalogName``/``isGenericName``, price precision,
stock range) and the product-level rules (unique SKUs, consistent attribute groups, distinct
combinations), and loads variation products from a YAML or JSON file with one-line located
errors. It must not talk to the store: the writer (``plan.ListingTarget``) does that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from engine.errors import OmsflowError

# --------------------------------------------------------------------------- limits

SKU_MAX = 64
"""``product.reference`` / ``combination.reference`` size (PrestaShop 1.7+)."""
NAME_MAX = 128
"""``product.name`` size."""
CATEGORY_MAX = 128
BRAND_MAX = 64
"""``manufacturer.name`` size."""
ATTRIBUTE_MAX = 128
"""``product_option.name`` / ``product_option_value.name`` size."""
DESCRIPTION_MAX = 21844
"""``product.description`` size (utf8 TEXT)."""
PRICE_DECIMALS = 6
PRICE_MAX = Decimal("999999999.999999")
"""Nine integer digits plus six decimals: 15 significant digits, exact through Excel's doubles."""
STOCK_MAX = 2_147_483_647
DEFAULT_PRICE_SOURCES: tuple[str, ...] = ("selling_price", "retail_selling_price")
"""The channel spec's ``prices.sources``: the first one set becomes the store ``price``."""

_REFERENCE_BAD = re.compile(r"[<>;={}]")  # Validate::isReference  /^[^<>;={}]*$/u
_CATALOG_BAD = re.compile(r"[<>;=#{}]")  # Validate::isCatalogName /^[^<>;=#{}]*$/u
_GENERIC_BAD = re.compile(r"[<>={}]")  # Validate::isGenericName /^[^<>={}]*$/u
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")

TRUE_WORDS = frozenset({"yes", "y", "true", "1", "on"})
FALSE_WORDS = frozenset({"no", "n", "false", "0", "off"})


# --------------------------------------------------------------------------- the drafts


@dataclass(frozen=True)
class VariantDraft:
    """One combination of a variation product."""

    sku: str
    """The combination's reference; unique across the whole file."""
    attributes: tuple[tuple[str, str], ...]
    """(attribute group, value) pairs, e.g. ``(("Size", "M"), ("Color", "Red"))``."""
    price_impact: Decimal = Decimal(0)
    """Price relative to the parent's price, tax excluded; may be negative."""
    stock: int = 0
    """Quantity available for this combination."""
    keep_stock: bool = False
    """No stock was given: a new combination starts at 0, an existing one keeps its stock
    (in the store and in the OMS)."""


@dataclass(frozen=True)
class ProductDraft:
    """A single product (no variants) or a variation product (its combinations in ``variants``)."""

    sku: str
    """The product's reference; the idempotency key of every import."""
    name: str
    price: Decimal
    """The store's base price, tax excluded (the channel's price mapping target)."""
    retail_selling_price: Decimal | None = None
    """OMS retail selling price (MRP); a price source when ``selling_price`` is unset."""
    selling_price: Decimal | None = None
    """OMS selling price; the first price source."""
    stock: int = 0
    """Quantity for a single product; 0 for a variation product (stock is per variant)."""
    category: str | None = None
    """Default category by name; None leaves the store's choice alone."""
    brand: str | None = None
    """Manufacturer by name; None leaves the store's choice alone."""
    image: str | None = None
    """Cover image: an http(s) URL or a file path (relative to the source file's folder)."""
    active: bool = True
    description: str = ""
    variants: tuple[VariantDraft, ...] = ()
    keep_stock: bool = False
    """No stock was given (``products create`` without ``--stock``, a file without
    ``stock``): a new product starts at 0, an existing one keeps its stock (in the store and
    in the OMS). Only single products; a variation product's stock is its variants'."""

    @property
    def is_variation(self) -> bool:
        """True when the product has combinations."""
        return bool(self.variants)

    def skus(self) -> Iterator[str]:
        """The product's SKU, then each variant's."""
        yield self.sku
        for v in self.variants:
            yield v.sku


# --------------------------------------------------------------------------- field rules


class FieldProblem(ValueError):
    """A value that breaks a field rule; the message names the rule, not the location."""


@dataclass(frozen=True)
class Problem:
    """One broken rule inside one draft: which field, of which variant and attribute."""

    field: str
    """Draft field name (``sku``, ``price``, ``attributes``, ``price_impact`` ...)."""
    message: str
    variant: int | None = None
    """Index into ``ProductDraft.variants``; None for a product-level field."""
    attribute: int | None = None
    """Index into ``VariantDraft.attributes`` when ``field == "attributes"``."""


def _text(raw: object, what: str) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        raise FieldProblem(f"{what} must be text, not a yes/no value")
    if isinstance(raw, float):
        # Excel hands typed numbers back as floats; 1234.0 was typed as 1234.
        return str(int(raw)) if raw.is_integer() else repr(raw)
    if isinstance(raw, int | str | Decimal):
        return str(raw).strip()
    raise FieldProblem(f"{what} must be text, got {type(raw).__name__}")


def check_sku(value: str) -> str | None:
    """The isReference rule plus non-empty and the size; returns the problem or None."""
    if not value:
        return "SKU is required"
    if len(value) > SKU_MAX:
        return f"SKU is {len(value)} characters long; at most {SKU_MAX}"
    bad = _REFERENCE_BAD.search(value)
    if bad:
        return (
            f"SKU {value!r} contains {bad.group()!r}; PrestaShop references exclude < > ; = {{ }}"
        )
    return None


def check_name(value: str) -> str | None:
    """The isCatalogName rule, 1..128 characters."""
    if not value:
        return "name is required"
    if len(value) > NAME_MAX:
        return f"name is {len(value)} characters long; at most {NAME_MAX}"
    bad = _CATALOG_BAD.search(value)
    if bad:
        return f"name contains {bad.group()!r}; PrestaShop names exclude < > ; = # {{ }}"
    return None


def check_label(value: str, what: str, limit: int, *, generic: bool = False) -> str | None:
    """Category and brand (isCatalogName) or attribute group/value (isGenericName) names."""
    if not value:
        return f"{what} is empty"
    if len(value) > limit:
        return f"{what} is {len(value)} characters long; at most {limit}"
    bad = (_GENERIC_BAD if generic else _CATALOG_BAD).search(value)
    if bad:
        return f"{what} {value!r} contains {bad.group()!r}; not allowed in PrestaShop names"
    return None


def check_price(value: Decimal, what: str = "price", *, signed: bool = False) -> str | None:
    """At most 6 decimals, within ``PRICE_MAX``; >= 0 unless ``signed`` (price impacts)."""
    if not value.is_finite():
        return f"{what} must be a number"
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PRICE_DECIMALS:
        return f"{what} {value} has more than {PRICE_DECIMALS} decimals"
    if value < 0 and not signed:
        return f"{what} must be >= 0, got {value}"
    if abs(value) > PRICE_MAX:
        return f"{what} {value} is above {PRICE_MAX}"
    return None


def check_stock(value: int, what: str = "stock") -> str | None:
    """A whole number from 0 to 2^31-1."""
    if value < 0:
        return f"{what} must be >= 0, got {value}"
    if value > STOCK_MAX:
        return f"{what} {value} is above {STOCK_MAX}"
    return None


def check_image(value: str) -> str | None:
    """An http(s) URL or a path to a .jpg/.jpeg/.png/.gif/.webp file."""
    if _URL.match(value):
        return None
    if "://" in value:
        return f"image {value!r} is not an http(s) URL"
    if not value.lower().endswith(IMAGE_SUFFIXES):
        return f"image {value!r} must be an http(s) URL or a {'/'.join(IMAGE_SUFFIXES)} file"
    return None


def parse_sku(raw: object, what: str = "SKU") -> str:
    """Text, stripped, checked with :func:`check_sku`."""
    value = _text(raw, what)
    problem = check_sku(value)
    if problem:
        raise FieldProblem(problem)
    return value


def parse_name(raw: object) -> str:
    """Text, stripped, checked with :func:`check_name`."""
    value = _text(raw, "name")
    problem = check_name(value)
    if problem:
        raise FieldProblem(problem)
    return value


def parse_decimal(raw: object, what: str) -> Decimal | None:
    """A number from a cell or a file; None when blank. Floats go through their shortest repr."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise FieldProblem(f"{what} must be a number, not a yes/no value")
    value: Decimal | None
    try:
        if isinstance(raw, float):
            value = Decimal(repr(raw))
        elif isinstance(raw, int | Decimal):
            value = Decimal(raw)
        elif isinstance(raw, str):
            value = Decimal(raw.strip().replace(",", "")) if _NUMBER.match(raw.strip()) else None
        else:
            value = None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise FieldProblem(f"{what} must be a number, got {raw!r}")
    return value


_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][+-]?\d+)?$")


def parse_price(raw: object, what: str = "price", *, signed: bool = False) -> Decimal | None:
    """A price or None when blank; checked with :func:`check_price`."""
    value = parse_decimal(raw, what)
    if value is None:
        return None
    problem = check_price(value, what, signed=signed)
    if problem:
        raise FieldProblem(problem)
    return value


def parse_stock(raw: object, what: str = "stock") -> int:
    """A whole number >= 0; blank is 0."""
    value = parse_decimal(raw, what)
    if value is None:
        return 0
    if value != value.to_integral_value():
        raise FieldProblem(f"{what} must be a whole number, got {raw!r}")
    number = int(value)
    problem = check_stock(number, what)
    if problem:
        raise FieldProblem(problem)
    return number


def parse_bool(raw: object, what: str = "active", *, default: bool = True) -> bool:
    """yes/no (also true/false, 1/0, y/n, on/off); blank is ``default``."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = _text(raw, what).lower()
    if not text:
        return default
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise FieldProblem(f"{what} must be yes or no, got {raw!r}")


def parse_label(
    raw: object, what: str, limit: int, *, generic: bool = False, required: bool = False
) -> str | None:
    """Category, brand or attribute text; None when blank (unless ``required``)."""
    value = _text(raw, what)
    if not value:
        if required:
            raise FieldProblem(f"{what} is required")
        return None
    problem = check_label(value, what, limit, generic=generic)
    if problem:
        raise FieldProblem(problem)
    return value


def parse_image(raw: object) -> str | None:
    """An http(s) URL or an image file path; None when blank."""
    value = _text(raw, "image")
    if not value:
        return None
    problem = check_image(value)
    if problem:
        raise FieldProblem(problem)
    return value


def parse_description(raw: object) -> str:
    """Free text up to 21844 characters; blank is ``""``."""
    value = _text(raw, "description")
    if len(value) > DESCRIPTION_MAX:
        raise FieldProblem(
            f"description is {len(value)} characters long; at most {DESCRIPTION_MAX}"
        )
    return value


def resolve_price(
    price: Decimal | None,
    *,
    retail_selling_price: Decimal | None,
    selling_price: Decimal | None,
    sources: Sequence[str] = DEFAULT_PRICE_SOURCES,
) -> Decimal:
    """The store price: the first price source set (channel ``prices.sources``), else ``price``.

    Raises:
        FieldProblem: nothing is set, or ``price`` disagrees with the source that wins.
    """
    given = {"selling_price": selling_price, "retail_selling_price": retail_selling_price}
    derived = next(((s, given[s]) for s in sources if given.get(s) is not None), None)
    if derived is None:
        if price is None:
            raise FieldProblem("price is required (or selling_price / retail_selling_price)")
        return price
    source, value = derived
    assert value is not None  # noqa: S101 - narrowed by the generator above
    if price is not None and price != value:
        raise FieldProblem(
            f"price {price} differs from {source} {value}, which the channel's price mapping "
            "writes to the store; leave price blank or make them equal"
        )
    return value


# --------------------------------------------------------------------------- product rules


def product_problems(
    draft: ProductDraft, *, sources: Sequence[str] = DEFAULT_PRICE_SOURCES
) -> list[Problem]:
    """Every rule a draft breaks, field and product level; empty when it can be written.

    Checks each field's rule, the price mapping (``price`` agrees with the winning source),
    that a variation product keeps stock on its variants, unique SKUs within the product,
    that every variant has the same set of attribute groups, no group twice in one variant,
    and no two variants with the same combination of values.
    """
    out: list[Problem] = []

    def add(
        fld: str, msg: str | None, variant: int | None = None, attr: int | None = None
    ) -> None:
        if msg:
            out.append(Problem(fld, msg, variant, attr))

    add("sku", check_sku(draft.sku))
    add("name", check_name(draft.name))
    add("price", check_price(draft.price))
    for fld in ("retail_selling_price", "selling_price"):
        value = getattr(draft, fld)
        if value is not None:
            add(fld, check_price(value, fld))
    try:
        resolve_price(
            draft.price,
            retail_selling_price=draft.retail_selling_price,
            selling_price=draft.selling_price,
            sources=sources,
        )
    except FieldProblem as exc:
        add("price", str(exc))
    add("stock", check_stock(draft.stock))
    if draft.category is not None:
        add("category", check_label(draft.category, "category", CATEGORY_MAX))
    if draft.brand is not None:
        add("brand", check_label(draft.brand, "brand", BRAND_MAX))
    if draft.image is not None:
        add("image", check_image(draft.image))
    if len(draft.description) > DESCRIPTION_MAX:
        add("description", f"description is longer than {DESCRIPTION_MAX} characters")
    if draft.variants and draft.stock:
        add("stock", "a variation product's stock is given per variant; parent stock must be 0")

    seen_skus: dict[str, int | None] = {draft.sku: None}
    groups0: list[str] | None = None
    combos: dict[tuple[tuple[str, str], ...], int] = {}
    for i, v in enumerate(draft.variants):
        add("sku", check_sku(v.sku), i)
        if v.sku in seen_skus:
            where = "the parent" if seen_skus[v.sku] is None else f"variant {seen_skus[v.sku]}"
            add("sku", f"SKU {v.sku!r} is already used by {where}", i)
        else:
            seen_skus[v.sku] = i
        add("price_impact", check_price(v.price_impact, "price_impact", signed=True), i)
        if draft.price + v.price_impact < 0:
            add("price_impact", f"price {draft.price} + impact {v.price_impact} is below 0", i)
        add("stock", check_stock(v.stock), i)
        if not v.attributes:
            add("attributes", "a variant needs at least one attribute (group and value)", i)
            continue
        names: list[str] = []
        for j, (group, value) in enumerate(v.attributes):
            add(
                "attributes",
                check_label(group, "attribute name", ATTRIBUTE_MAX, generic=True),
                i,
                j,
            )
            add(
                "attributes",
                check_label(value, "attribute value", ATTRIBUTE_MAX, generic=True),
                i,
                j,
            )
            if group in names:
                add("attributes", f"attribute {group!r} appears twice in one variant", i, j)
            names.append(group)
        if groups0 is None:
            groups0 = names
        elif set(names) != set(groups0):
            add(
                "attributes",
                f"attribute names {sorted(names)} differ from the first variant's "
                f"{sorted(groups0)}; every variant of a product needs the same attribute names",
                i,
                0,
            )
        key = tuple(sorted(v.attributes))
        if key in combos:
            shown = ", ".join(f"{g}={val}" for g, val in v.attributes)
            add("attributes", f"combination {shown} repeats variant {combos[key]}", i, 0)
        else:
            combos[key] = i
    return out


def duplicate_skus(drafts: Iterable[ProductDraft]) -> dict[str, int]:
    """SKUs used more than once across drafts, with their count."""
    counts: dict[str, int] = {}
    for d in drafts:
        for sku in d.skus():
            counts[sku] = counts.get(sku, 0) + 1
    return {s: n for s, n in counts.items() if n > 1}


# --------------------------------------------------------------------------- file loading


class DraftError(OmsflowError):
    """One problem in a product file, located by file, line and JSON path."""

    def __init__(self, file: str, path: str, message: str, line: int | None = None) -> None:
        self.file = file
        self.path = path
        self.message = message
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message} (at {path})")


class DraftErrors(OmsflowError):
    """Every problem found in a product file; one line each."""

    def __init__(self, errors: Sequence[DraftError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line or 0))
        super().__init__("\n".join(str(e) for e in self.errors))


_PRODUCT_KEYS = frozenset(
    {
        "sku", "name", "price", "retail_selling_price", "selling_price", "stock", "category",
        "brand", "image", "active", "description", "variants",
    }
)  # fmt: skip
_VARIANT_KEYS = frozenset({"sku", "attributes", "price_impact", "stock"})


def _from_yaml(text: str, file: str) -> tuple[Any, dict[str, int]]:
    # Compose, then build the data ourselves: every scalar stays text (no YAML 1.1 surprises:
    # SKU 0012 stays "0012", price 19.99 stays exact, "no" stays a word), and duplicate keys
    # are refused instead of silently overwritten.
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DraftErrors(
            [DraftError(file, "$", f"not valid YAML: {exc}".splitlines()[0], line)]
        ) from None
    lines: dict[str, int] = {}
    errors: list[DraftError] = []

    def build(node: yaml.Node, path: str) -> Any:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in node.value:
                key = str(k.value) if isinstance(k, yaml.ScalarNode) else "?"
                sub = f"{path}.{key}"
                if key in out:
                    errors.append(
                        DraftError(file, sub, f"duplicate key {key!r}", k.start_mark.line + 1)
                    )
                out[key] = build(v, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)  # noqa: S101 - the three node kinds
        if node.tag == "tag:yaml.org,2002:null":
            return None
        return str(node.value)

    data = build(root, "$") if root is not None else None
    if errors:
        raise DraftErrors(errors)
    return data, lines


def _from_json(text: str, file: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise DraftErrors([DraftError(file, "$", f"duplicate key {k!r}")])
            out[k] = v
        return out

    try:
        return json.loads(text, parse_float=Decimal, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise DraftErrors(
            [DraftError(file, "$", f"not valid JSON: {exc.msg}", exc.lineno)]
        ) from None


def load_drafts(
    path: str | Path, *, sources: Sequence[str] = DEFAULT_PRICE_SOURCES, check_files: bool = True
) -> list[ProductDraft]:
    """Load products from a YAML or JSON file (``omsflow products create --from FILE``).

    The file holds one product mapping, a list of them, or ``{products: [...]}``. A product
    has the ``ProductDraft`` fields; ``variants`` is a list of ``{sku, attributes: {group:
    value, ...}, price_impact, stock}``. Relative image paths resolve against the file's folder.

    Args:
        path: the .yaml/.yml/.json file.
        sources: the channel's price sources (``ChannelSpec.prices.sources``).
        check_files: also require local image files to exist.

    Returns:
        The drafts, in file order.

    Raises:
        DraftErrors: every problem, one line each: ``FILE:LINE: message (at $.path)``.
    """
    p = Path(path)
    file = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DraftErrors([DraftError(file, "$", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise DraftErrors([DraftError(file, "$", "not UTF-8 text")]) from None
    lines: dict[str, int] = {}
    if p.suffix.lower() == ".json":
        data = _from_json(text, file)
    elif p.suffix.lower() in (".yaml", ".yml"):
        data, lines = _from_yaml(text, file)
    else:
        raise DraftErrors([DraftError(file, "$", "expected a .yaml, .yml or .json file")])

    errors: list[DraftError] = []

    def err(jpath: str, message: str) -> None:
        line = lines.get(jpath)
        probe = jpath
        while line is None and probe not in ("$", ""):
            probe = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", probe)
            line = lines.get(probe)
        errors.append(DraftError(file, jpath, message, line))

    if isinstance(data, dict) and "products" in data:
        extra = sorted(set(data) - {"products"})
        if extra:
            err(f"$.{extra[0]}", f"unknown key {extra[0]!r} beside 'products'")
        items, base = data["products"], "$.products"
    elif isinstance(data, dict):
        items, base = [data], None
    else:
        items, base = data, "$"
    if not isinstance(items, list) or not items:
        err(base or "$", "expected a product mapping or a non-empty list of products")
        raise DraftErrors(errors)

    drafts: list[tuple[ProductDraft, str]] = []
    for n, item in enumerate(items):
        ppath = "$" if base is None else f"{base}[{n}]"
        draft = _product_from_data(item, ppath, err, sources)
        if draft is not None:
            drafts.append((draft, ppath))

    owner: dict[str, str] = {}
    for draft, ppath in drafts:
        for problem in product_problems(draft, sources=sources):
            err(_problem_path(ppath, draft, problem), problem.message)
        local = draft.image and not _URL.match(draft.image)
        if check_files and local and not (p.parent / str(draft.image)).is_file():
            err(f"{ppath}.image", f"image file {draft.image!r} not found beside {p.name}")
        for i, sku in enumerate(draft.skus()):
            spath = f"{ppath}.sku" if i == 0 else f"{ppath}.variants[{i - 1}].sku"
            if sku in owner and owner[sku] != ppath:
                err(spath, f"SKU {sku!r} is already used at {owner[sku]}")
            owner.setdefault(sku, ppath)
    if errors:
        raise DraftErrors(errors)
    return [d for d, _ in drafts]


def _not_given(raw: object) -> bool:
    """A field left out (or blank): the draft keeps what is there."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _problem_path(ppath: str, draft: ProductDraft, problem: Problem) -> str:
    if problem.variant is None:
        return f"{ppath}.{problem.field}"
    vpath = f"{ppath}.variants[{problem.variant}]"
    if problem.field == "attributes" and problem.attribute is not None:
        attrs = draft.variants[problem.variant].attributes
        if problem.attribute < len(attrs):
            return f"{vpath}.attributes.{attrs[problem.attribute][0]}"
    return f"{vpath}.{problem.field}"


def _product_from_data(
    item: object, ppath: str, err: Any, sources: Sequence[str]
) -> ProductDraft | None:
    if not isinstance(item, dict):
        err(ppath, "a product must be a mapping of fields")
        return None
    ok = True
    for key in sorted(set(item) - _PRODUCT_KEYS):
        err(
            f"{ppath}.{key}",
            f"unknown product field {key!r} (known: {', '.join(sorted(_PRODUCT_KEYS))})",
        )
        ok = False

    def get(key: str, parse: Any, *args: Any, **kw: Any) -> Any:
        nonlocal ok
        try:
            return parse(item.get(key), *args, **kw)
        except FieldProblem as exc:
            err(f"{ppath}.{key}", str(exc))
            ok = False
            return None

    sku = get("sku", parse_sku)
    name = get("name", parse_name)
    price = get("price", parse_price)
    retail = get("retail_selling_price", parse_price, "retail_selling_price")
    selling = get("selling_price", parse_price, "selling_price")
    stock = get("stock", parse_stock)
    category = get("category", parse_label, "category", CATEGORY_MAX)
    brand = get("brand", parse_label, "brand", BRAND_MAX)
    image = get("image", parse_image)
    active = get("active", parse_bool)
    description = get("description", parse_description)
    final_price: Decimal | None = None
    if ok:
        try:
            final_price = resolve_price(
                price, retail_selling_price=retail, selling_price=selling, sources=sources
            )
        except FieldProblem as exc:
            err(f"{ppath}.price", str(exc))
            ok = False

    variants: list[VariantDraft] = []
    raw_variants = item.get("variants")
    if raw_variants is not None and not isinstance(raw_variants, list):
        err(f"{ppath}.variants", "variants must be a list")
        ok = False
    for i, raw in enumerate(raw_variants or []):
        vpath = f"{ppath}.variants[{i}]"
        if not isinstance(raw, dict):
            err(vpath, "a variant must be a mapping with sku, attributes, price_impact, stock")
            ok = False
            continue
        for key in sorted(set(raw) - _VARIANT_KEYS):
            err(
                f"{vpath}.{key}",
                f"unknown variant field {key!r} (known: {', '.join(sorted(_VARIANT_KEYS))})",
            )
            ok = False
        try:
            vsku = parse_sku(raw.get("sku"))
        except FieldProblem as exc:
            err(f"{vpath}.sku", str(exc))
            ok = False
        try:
            impact = parse_price(raw.get("price_impact"), "price_impact", signed=True) or Decimal(
                0
            )
        except FieldProblem as exc:
            err(f"{vpath}.price_impact", str(exc))
            ok = False
        try:
            vstock = parse_stock(raw.get("stock"))
        except FieldProblem as exc:
            err(f"{vpath}.stock", str(exc))
            ok = False
        attrs_raw = raw.get("attributes")
        attrs: list[tuple[str, str]] = []
        if not isinstance(attrs_raw, dict) or not attrs_raw:
            err(f"{vpath}.attributes", "attributes must be a mapping of attribute name to value")
            ok = False
        else:
            for group, value in attrs_raw.items():
                try:
                    g = parse_label(
                        group, "attribute name", ATTRIBUTE_MAX, generic=True, required=True
                    )
                    v = parse_label(
                        value, "attribute value", ATTRIBUTE_MAX, generic=True, required=True
                    )
                except FieldProblem as exc:
                    err(f"{vpath}.attributes.{group}", str(exc))
                    ok = False
                    continue
                assert g is not None  # noqa: S101 - required=True
                assert v is not None  # noqa: S101 - required=True
                attrs.append((g, v))
        if ok:
            keep = _not_given(raw.get("stock"))
            variants.append(VariantDraft(vsku, tuple(attrs), impact, vstock, keep_stock=keep))
    if not ok or final_price is None:
        return None
    return ProductDraft(
        sku=sku,
        name=name,
        price=final_price,
        retail_selling_price=retail,
        selling_price=selling,
        stock=stock,
        category=category,
        brand=brand,
        image=image,
        active=active,
        description=description,
        variants=tuple(variants),
        keep_stock=_not_given(item.get("stock")) and not variants,
    )


def drafts_to_data(drafts: Sequence[ProductDraft]) -> dict[str, Any]:
    """The ``{products: [...]}`` document :func:`load_drafts` reads (prices as text, exact)."""

    def product(d: ProductDraft) -> dict[str, Any]:
        out: dict[str, Any] = {"sku": d.sku, "name": d.name, "price": str(d.price)}
        for key in ("retail_selling_price", "selling_price"):
            if getattr(d, key) is not None:
                out[key] = str(getattr(d, key))
        if not d.variants and not d.keep_stock:
            out["stock"] = d.stock
        for key in ("category", "brand", "image"):
            if getattr(d, key) is not None:
                out[key] = getattr(d, key)
        out["active"] = d.active
        if d.description:
            out["description"] = d.description
        if d.variants:
            out["variants"] = [
                {
                    "sku": v.sku,
                    "attributes": dict(v.attributes),
                    "price_impact": str(v.price_impact),
                    **({} if v.keep_stock else {"stock": v.stock}),
                }
                for v in d.variants
            ]
        return out

    return {"products": [product(d) for d in drafts]}
