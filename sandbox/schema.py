"""The sandbox's resource catalogue: field sets, types, links and associations per resource.

Field sets and their order follow PrestaShop's `getWebserviceParameters()`: for products,
combinations, orders, order_histories, order_carriers, stock_availables and order_states the
8.x blank schemas in ``../shared/prestashop/samples/docs_*_schema_blank.ps8.x.xml`` plus the
read-only getter fields a GET adds (``manufacturer_name``, ``quantity``); for the other
resources the field sets of the real recorded responses in the same folder.

A field spec is ``name:KIND[flags]`` where KIND is ``i`` int, ``d`` decimal (6 places),
``d3`` decimal (3 places), ``b`` bool, ``t`` datetime, ``D`` date, ``s`` string, ``L``
multilingual string, ``N`` a property without a column (always null: products' ``new``);
flags: ``!`` required, ``~`` read-only (PUT rejects it, code 93), ``^`` getter (rendered with
``notFilterable="true"``), ``#`` a getter whose PHP value is an int (a JSON number; every
other value but the top-level ``id`` is a JSON string), ``>res`` xlink to
``/api/res/<value>``.

The field sets are PrestaShop 8.2.1's, checked field by field against a real 8.2.1
(``../shared/realps``; ``tests/realstore/test_conformance.py``). ``resources_for(version)``
derives an older store's catalogue from them (``_INTRODUCED``, ``_DROPPED_IN_8``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldDef:
    """One field of a resource, as the webservice renders and accepts it."""

    name: str
    kind: str
    required: bool = False
    read_only: bool = False
    getter: bool = False
    xlink: str | None = None
    json_int: bool = False

    @property
    def is_lang(self) -> bool:
        return self.kind == "L"


@dataclass(frozen=True)
class AssocDef:
    """One association block (``<associations><name nodeType=… api=…>``)."""

    name: str
    node: str
    api: str | None  # None: a virtual entity (order_rows)
    fields: tuple[FieldDef, ...]
    writable: bool = False
    id_xlink: bool = False  # the item's <id> itself carries the href (manufacturers/addresses)


@dataclass(frozen=True)
class ResourceDef:
    """One webservice resource: plural name, node name, fields, associations, rules."""

    name: str
    node: str
    description: str
    fields: tuple[FieldDef, ...]
    associations: tuple[AssocDef, ...] = ()
    forbidden_methods: frozenset[str] = frozenset()
    by_name: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name: f for f in self.fields})

    def assoc(self, name: str) -> AssocDef | None:
        for a in self.associations:
            if a.name == name:
                return a
        return None


def _fields(spec: str) -> tuple[FieldDef, ...]:
    out = [FieldDef("id", "i")]
    for token in spec.split():
        name, _, rest = token.partition(":")
        xlink = None
        if ">" in rest:
            rest, xlink = rest.split(">", 1)
        kind = rest.rstrip("!~^#")
        flags = rest[len(kind) :]
        out.append(
            FieldDef(
                name,
                kind,
                required="!" in flags,
                read_only="~" in flags,
                getter="^" in flags,
                xlink=xlink,
                json_int="#" in flags,
            )
        )
    return tuple(out)


def _assoc(name: str, node: str, api: str | None, sub: str = "", **kw: bool) -> AssocDef:
    return AssocDef(name, node, api, _fields(sub), **kw)


METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD")

_DEFS = [
    ResourceDef(
        "addresses",
        "address",
        "The Customer, Brand and Customer addresses",
        _fields(
            "id_customer:i>customers id_manufacturer:i>manufacturers id_supplier:i>suppliers "
            "id_warehouse:i>warehouses id_country:i!>countries id_state:i>states alias:s! "
            "company:s lastname:s! firstname:s! vat_number:s address1:s! address2:s postcode:s "
            "city:s! other:s phone:s phone_mobile:s dni:s deleted:b date_add:t date_upd:t"
        ),
    ),
    ResourceDef(
        "carriers",
        "carrier",
        "The Carriers",
        _fields(
            "deleted:b is_module:b id_tax_rules_group:i^#>tax_rule_groups id_reference:i "
            "name:s! active:b! is_free:b url:s shipping_handling:b shipping_external:b "
            "range_behavior:b shipping_method:i# max_width:i max_height:i max_depth:i "
            "max_weight:d grade:i external_module_name:s need_range:b position:i delay:L!"
        ),
    ),
    ResourceDef(
        "categories",
        "category",
        "The product categories",
        _fields(
            "id_parent:i>categories level_depth:i~ nb_products_recursive:i^~ active:b! "
            "id_shop_default:i is_root_category:b position:i date_add:t date_upd:t name:L! "
            "link_rewrite:L! description:L additional_description:L meta_title:L "
            "meta_description:L meta_keywords:L"
        ),
        (
            _assoc("categories", "category", "categories", "", writable=False),
            _assoc("products", "product", "products", "", writable=False),
        ),
    ),
    ResourceDef(
        "combinations",
        "combination",
        "The product combinations",
        _fields(
            "id_product:i!>products ean13:s isbn:s upc:s mpn:s "
            "reference:s supplier_reference:s wholesale_price:d price:d ecotax:d weight:d "
            "unit_price_impact:d minimal_quantity:i! low_stock_threshold:i low_stock_alert:b "
            "default_on:b available_date:D available_now:L available_later:L"
        ),
        (
            _assoc(
                "product_option_values",
                "product_option_value",
                "product_option_values",
                writable=True,
            ),
            _assoc("images", "image", "images/products", writable=True),
        ),
    ),
    ResourceDef(
        "configurations",
        "configuration",
        "Shop configuration",
        # Configuration::$webserviceParameters puts `value` first; NULL shop ids render empty
        _fields("value:s name:s! id_shop_group:i id_shop:i date_add:t date_upd:t"),
    ),
    ResourceDef(
        "countries",
        "country",
        "The countries",
        _fields(
            "id_zone:i!>zones id_currency:i>currencies call_prefix:i iso_code:s! active:b "
            "contains_states:b! need_identification_number:b! need_zip_code:b "
            "zip_code_format:s display_tax_label:b! name:L!"
        ),
    ),
    ResourceDef(
        "currencies",
        "currency",
        "The currencies",
        _fields(
            "names:L name:s!^ symbol:L iso_code:s! numeric_iso_code:s precision:i "
            "conversion_rate:d! deleted:b active:b unofficial:b modified:b pattern:L"
        ),
    ),
    ResourceDef(
        "customer_messages",
        "customer_message",
        "Customer services messages",
        _fields(
            "id_employee:i>employees id_customer_thread:i>customer_threads ip_address:s "
            "message:s! file_name:s user_agent:s private:b date_add:t date_upd:t read:b"
        ),
    ),
    ResourceDef(
        "customer_threads",
        "customer_thread",
        "Customer services threads",
        _fields(
            "id_lang:i!>languages id_shop:i>shops id_customer:i>customers id_order:i>orders "
            "id_product:i>products id_contact:i! email:s token:s! status:s date_add:t "
            "date_upd:t"
        ),
        (_assoc("customer_messages", "customer_message", "customer_messages"),),
    ),
    ResourceDef(
        "customers",
        "customer",
        "The e-shop's customers",
        _fields(
            "id_default_group:i>groups id_lang:i>languages newsletter_date_add:t "
            "ip_registration_newsletter:s last_passwd_gen:t secure_key:s deleted:b passwd:s! "
            "lastname:s! firstname:s! email:s! id_gender:i birthday:D newsletter:b optin:b "
            "website:s company:s siret:s ape:s outstanding_allow_amount:d "
            "show_public_prices:b id_risk:i max_payment_days:i active:b note:s is_guest:b "
            "id_shop:i id_shop_group:i date_add:t date_upd:t reset_password_token:s "
            "reset_password_validity:t"
        ),
        (_assoc("groups", "group", "groups", writable=True),),
    ),
    ResourceDef(
        "languages",
        "language",
        "Shop languages",
        _fields(
            "name:s! iso_code:s! locale:s language_code:s active:b is_rtl:b date_format_lite:s! "
            "date_format_full:s!"
        ),
    ),
    ResourceDef(
        "manufacturers",
        "manufacturer",
        "The product brands",
        _fields(
            "active:b link_rewrite:s^~ name:s! date_add:t date_upd:t description:L "
            "short_description:L meta_title:L meta_description:L meta_keywords:L"
        ),
        (_assoc("addresses", "address", "addresses", id_xlink=True),),
    ),
    ResourceDef(
        "order_carriers",
        "order_carrier",
        "The Order carriers",
        _fields(
            "id_order:i!>orders id_carrier:i!>carriers id_order_invoice:i weight:d "
            "shipping_cost_tax_excl:d shipping_cost_tax_incl:d tracking_number:s date_add:t"
        ),
    ),
    ResourceDef(
        "order_details",
        "order_detail",
        "Details of an order",
        _fields(
            "id_order:i!>orders product_id:i>products product_attribute_id:i>combinations "
            "product_quantity_reinjected:i group_reduction:d discount_quantity_applied:i "
            "download_hash:s download_deadline:t id_order_invoice:i id_warehouse:i! id_shop:i! "
            "id_customization:i product_name:s! product_quantity:i! "
            "product_quantity_in_stock:i product_quantity_return:i "
            "product_quantity_refunded:i product_price:d! reduction_percent:d "
            "reduction_amount:d reduction_amount_tax_incl:d reduction_amount_tax_excl:d "
            "product_quantity_discount:d product_ean13:s product_isbn:s product_upc:s "
            "product_mpn:s product_reference:s product_supplier_reference:s product_weight:d "
            "tax_computation_method:i id_tax_rules_group:i ecotax:d ecotax_tax_rate:d3 "
            "download_nb:i unit_price_tax_incl:d unit_price_tax_excl:d total_price_tax_incl:d "
            "total_price_tax_excl:d total_shipping_price_tax_excl:d "
            "total_shipping_price_tax_incl:d purchase_supplier_price:d "
            "original_product_price:d original_wholesale_price:d total_refunded_tax_excl:d "
            "total_refunded_tax_incl:d"
        ),
        (_assoc("taxes", "tax", "taxes"),),
    ),
    ResourceDef(
        "order_histories",
        "order_history",
        "The Order histories",
        _fields(
            "id_employee:i>employees id_order_state:i!>order_states id_order:i!>orders date_add:t"
        ),
    ),
    ResourceDef(
        "order_states",
        "order_state",
        "The Order statuses",
        _fields(
            "unremovable:b delivery:b hidden:b send_email:b module_name:s invoice:b color:s "
            "logable:b shipped:b paid:b pdf_delivery:b pdf_invoice:b deleted:b name:L! "
            "template:L"
        ),
    ),
    ResourceDef(
        "orders",
        "order",
        "The Customers orders",
        _fields(
            "id_address_delivery:i!>addresses id_address_invoice:i!>addresses id_cart:i!>carts "
            "id_currency:i!>currencies id_lang:i!>languages id_customer:i!>customers "
            "id_carrier:i!>carriers current_state:i>order_states module:s! invoice_number:i "
            "invoice_date:t delivery_number:i delivery_date:t valid:b date_add:t date_upd:t "
            "shipping_number:s^ note:s id_shop_group:i id_shop:i secure_key:s payment:s! "
            "recyclable:b gift:b gift_message:s mobile_theme:b total_discounts:d "
            "total_discounts_tax_incl:d total_discounts_tax_excl:d total_paid:d! "
            "total_paid_tax_incl:d total_paid_tax_excl:d total_paid_real:d! total_products:d! "
            "total_products_wt:d! total_shipping:d total_shipping_tax_incl:d "
            "total_shipping_tax_excl:d carrier_tax_rate:d3 total_wrapping:d "
            "total_wrapping_tax_incl:d total_wrapping_tax_excl:d round_mode:i round_type:i "
            "conversion_rate:d! reference:s"
        ),
        (
            _assoc(
                "order_rows",
                "order_row",
                None,
                "product_id:i>products product_attribute_id:i product_quantity:i "
                "product_name:s~ product_reference:s~ product_ean13:s~ product_isbn:s~ "
                "product_upc:s~ product_price:d~ id_customization:i>customizations "
                "unit_price_tax_incl:d~ unit_price_tax_excl:d~",
            ),
        ),
    ),
    ResourceDef(
        "product_option_values",
        "product_option_value",
        "The product options value",
        _fields("id_attribute_group:i!>product_options color:s position:i name:L!"),
    ),
    ResourceDef(
        "product_options",
        "product_option",
        "The product options",
        _fields("is_color_group:b group_type:s! position:i name:L! public_name:L!"),
        (_assoc("product_option_values", "product_option_value", "product_option_values"),),
    ),
    ResourceDef(
        "products",
        "product",
        "The products",
        _fields(
            "id_manufacturer:i>manufacturers id_supplier:i>suppliers "
            "id_category_default:i>categories new:N cache_default_attribute:i "
            "id_default_image:i^>images id_default_combination:i^#>combinations "
            "id_tax_rules_group:i>tax_rule_groups position_in_category:i^ "
            "manufacturer_name:s^~ quantity:i^~ type:s^ id_shop_default:i reference:s "
            "supplier_reference:s location:s width:d height:d depth:d weight:d "
            "quantity_discount:b ean13:s isbn:s upc:s mpn:s cache_is_pack:b "
            "cache_has_attachments:b is_virtual:b state:i additional_delivery_times:i "
            "delivery_in_stock:L delivery_out_stock:L product_type:s on_sale:b online_only:b "
            "ecotax:d "
            "minimal_quantity:i low_stock_threshold:i low_stock_alert:b price:d! "
            "wholesale_price:d unity:s unit_price:d unit_price_ratio:d "
            "additional_shipping_cost:d customizable:i text_fields:i uploadable_files:i "
            "active:b redirect_type:s id_type_redirected:i available_for_order:b "
            "available_date:D show_condition:b condition:s show_price:b indexed:b "
            "visibility:s advanced_stock_management:b date_add:t date_upd:t "
            "pack_stock_type:i meta_description:L meta_keywords:L meta_title:L "
            "link_rewrite:L name:L! description:L description_short:L available_now:L "
            "available_later:L"
        ),
        (
            _assoc("categories", "category", "categories", writable=True),
            _assoc("images", "image", "images"),
            _assoc("combinations", "combination", "combinations"),
            _assoc("product_option_values", "product_option_value", "product_option_values"),
            _assoc(
                "product_features",
                "product_feature",
                "product_features",
                "id_feature_value:i>product_feature_values",
            ),
            _assoc("tags", "tag", "tags"),
            _assoc(
                "stock_availables", "stock_available", "stock_availables", "id_product_attribute:i"
            ),
            _assoc("attachments", "attachment", "attachments"),
            _assoc("accessories", "product", "products"),
            _assoc("product_bundle", "product", "products", "id_product_attribute:i quantity:i"),
        ),
    ),
    ResourceDef(
        "states",
        "state",
        "The available states of countries",
        _fields("id_zone:i!>zones id_country:i!>countries iso_code:s! name:s! active:b"),
    ),
    ResourceDef(
        "stock_availables",
        "stock_available",
        "Available quantities",
        _fields(
            "id_product:i!>products id_product_attribute:i!>combinations id_shop:i>shops "
            "id_shop_group:i>shop_groups quantity:i! depends_on_stock:b! out_of_stock:i! "
            "location:s"
        ),
        forbidden_methods=frozenset({"POST", "DELETE"}),
    ),
    ResourceDef(
        "taxes",
        "tax",
        "The tax rate",
        _fields("rate:d3! active:b deleted:b name:L!"),
    ),
]

RESOURCES: dict[str, ResourceDef] = {d.name: d for d in _DEFS}
#: ``images`` is served by its own handler (binary originals), like PrestaShop's.
SPECIAL_RESOURCES = ("images",)


# ------------------------------------------------------------------ the API root (8.2.1)

#: Every resource a real 8.2.1 lists in ``GET /api/`` for a key with every permission, with
#: its description, and whether it offers ``?schema=`` (``specific_management`` ones do not).
#: The sandbox models the resources of ``RESOURCES`` (and ``images``); the others answer as
#: an empty shop would (see ``app.py``).
ROOT_RESOURCES: tuple[tuple[str, str, bool], ...] = (
    ("addresses", "The Customer, Brand and Customer addresses", True),
    ("attachments", "The product Attachments", False),
    ("carriers", "The Carriers", True),
    ("cart_rules", "Cart rules management", True),
    ("carts", "Customer's carts", True),
    ("categories", "The product categories", True),
    ("combinations", "The product combinations", True),
    ("configurations", "Shop configuration", True),
    ("contacts", "Shop contacts", True),
    ("content_management_system", "Content management system", True),
    ("countries", "The countries", True),
    ("currencies", "The currencies", True),
    ("customer_messages", "Customer services messages", True),
    ("customer_threads", "Customer services threads", True),
    ("customers", "The e-shop's customers", True),
    ("customizations", "Customization values", True),
    ("deliveries", "Product delivery", True),
    ("employees", "The Employees", True),
    ("groups", "The customer's groups", True),
    ("guests", "The guests", True),
    ("image_types", "The image types", True),
    ("images", "The images", False),
    ("languages", "Shop languages", True),
    ("manufacturers", "The product brands", True),
    ("messages", "The Messages", True),
    ("order_carriers", "The Order carriers", True),
    ("order_cart_rules", "The Order cart rules", True),
    ("order_details", "Details of an order", True),
    ("order_histories", "The Order histories", True),
    ("order_invoices", "The Order invoices", True),
    ("order_payments", "The Order payments", True),
    ("order_slip", "The Order slips", True),
    ("order_states", "The Order statuses", True),
    ("orders", "The Customers orders", True),
    ("price_ranges", "Price ranges", True),
    ("product_customization_fields", "Customization Field", True),
    ("product_feature_values", "The product feature values", True),
    ("product_features", "The product features", True),
    ("product_option_values", "The product options value", True),
    ("product_options", "The product options", True),
    ("product_suppliers", "Product Suppliers", True),
    ("products", "The products", True),
    ("search", "Search", False),
    ("shop_groups", "Shop groups from multi-shop feature", True),
    ("shop_urls", "Shop URLs from multi-shop feature", True),
    ("shops", "Shops from multi-shop feature", True),
    ("specific_price_rules", "Specific price management", True),
    ("specific_prices", "Specific price management", True),
    ("states", "The available states of countries", True),
    ("stock_availables", "Available quantities", True),
    ("stock_movement_reasons", "Stock movement reason", True),
    ("stock_movements", "Stock movements", True),
    ("stocks", "Stocks", True),
    ("stores", "The stores", True),
    ("suppliers", "The product suppliers", True),
    ("supply_order_details", "Supply Order Details", True),
    ("supply_order_histories", "Supply Order Histories", True),
    ("supply_order_receipt_histories", "Supply Order Receipt Histories", True),
    ("supply_order_states", "Supply Order Statuses", True),
    ("supply_orders", "Supply Orders", True),
    ("tags", "The Products tags", True),
    ("tax_rule_groups", "Tax rule groups", True),
    ("tax_rules", "Tax rules entity", True),
    ("taxes", "The tax rate", True),
    ("translated_configurations", "Shop configuration", True),
    ("warehouse_product_locations", "Location of products in warehouses", True),
    ("warehouses", "Warehouses", True),
    ("weight_ranges", "Weight ranges", True),
    ("zones", "The Countries zones", True),
)
ALL_RESOURCE_NAMES: tuple[str, ...] = tuple(
    sorted({n for n, _, _ in ROOT_RESOURCES} | set(RESOURCES) | set(SPECIAL_RESOURCES))
)
ROOT_DESCRIPTIONS: dict[str, tuple[str, bool]] = {n: (d, sc) for n, d, sc in ROOT_RESOURCES}


# ------------------------------------------------------------------ older versions

DEFAULT_VERSION = "8.2.1"


def version_tuple(text: str) -> tuple[int, ...]:
    """``"1.7.8.11"`` -> ``(1, 7, 8, 11)``; the sandbox plays 1.7.x and 8.x stores."""
    parts = text.strip().split(".")
    if not all(p.isdigit() for p in parts) or len(parts) < 3:
        raise ValueError(f"not a PrestaShop version: {text!r} (e.g. 8.2.1 or 1.7.8.11)")
    numbers = tuple(int(p) for p in parts)
    if not (numbers[:2] == (1, 7) or numbers[0] in (8, 9)):
        raise ValueError(f"the sandbox plays PrestaShop 1.7.x and 8.x stores, not {text}")
    return numbers


#: Fields 8.2.1 has that an older store lacks: (first version with it, resource, field).
_INTRODUCED: tuple[tuple[str, str, str], ...] = (
    ("1.7.7.0", "products", "mpn"),
    ("1.7.7.0", "combinations", "mpn"),
    ("1.7.8.0", "products", "product_type"),  # the column and its WS field (issue #28826)
    ("1.7.8.0", "orders", "note"),  # install-dev/upgrade/sql/1.7.8.0.sql
    ("8.0.0", "combinations", "available_now"),
    ("8.0.0", "combinations", "available_later"),
    ("8.0.0", "categories", "additional_description"),
)
#: Fields an older store has that 8.x dropped: (resource, field spec, the field it follows).
_DROPPED_IN_8: tuple[tuple[str, str, str], ...] = (
    ("combinations", "location:s", "id_product"),
    ("combinations", "quantity:i", "mpn"),
)


def resources_for(version: str) -> dict[str, ResourceDef]:
    """The resource catalogue of a store of ``version`` (8.2.1's, minus what an older store
    lacks, plus what it still had). Raises ValueError for a version the sandbox cannot play."""
    numbers = version_tuple(version)
    if numbers >= version_tuple(DEFAULT_VERSION):
        return dict(RESOURCES)
    out: dict[str, ResourceDef] = {}
    for name, rdef in RESOURCES.items():
        gone = {f for v, r, f in _INTRODUCED if r == name and numbers < version_tuple(v)}
        fields = [f for f in rdef.fields if f.name not in gone]
        if numbers < (8,):
            for res, spec, after in _DROPPED_IN_8:
                if res != name:
                    continue
                extra = _fields(spec)[1]
                names = [f.name for f in fields]
                anchor = after if after in names else names[-1]
                fields.insert(names.index(anchor) + 1, extra)
        out[name] = ResourceDef(
            rdef.name,
            rdef.node,
            rdef.description,
            tuple(fields),
            rdef.associations,
            rdef.forbidden_methods,
        )
    return out


def decimal_text(kind: str, value: float) -> str:
    """A DECIMAL column as MySQL returns it: 6 places (``d``) or 3 places (``d3``)."""
    return f"{value:.3f}" if kind == "d3" else f"{value:.6f}"
