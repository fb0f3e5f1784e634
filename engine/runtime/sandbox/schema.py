"""The sandbox's resource catalogue: field sets, types, links and associations per resource.

Field sets and their order follow PrestaShop's `getWebserviceParameters()`: for products,
combinations, orders, order_histories, order_carriers, stock_availables and order_states the
8.x blank schemas in ``../shared/prestashop/samples/docs_*_schema_blank.ps8.x.xml`` plus the
read-only getter fields a GET adds (``manufacturer_name``, ``quantity``); for the other
resources the field sets of the real recorded responses in the same folder.

A field spec is ``name:KIND[flags]`` where KIND is ``i`` int, ``d`` decimal (6 places),
``d3`` decimal (3 places), ``b`` bool, ``t`` datetime, ``D`` date, ``s`` string, ``L``
multilingual string; flags: ``!`` required, ``~`` read-only (PUT rejects it, code 93), ``^``
getter (rendered with ``notFilterable="true"``), ``>res`` xlink to ``/api/res/<value>``.
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
        kind = rest.rstrip("!~^")
        flags = rest[len(kind) :]
        out.append(
            FieldDef(
                name,
                kind,
                required="!" in flags,
                read_only="~" in flags,
                getter="^" in flags,
                xlink=xlink,
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
            "deleted:b is_module:b id_tax_rules_group:i^>tax_rule_groups id_reference:i "
            "name:s! active:b! is_free:b url:s shipping_handling:b shipping_external:b "
            "range_behavior:b shipping_method:i max_width:i max_height:i max_depth:i "
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
            "link_rewrite:L! description:L meta_title:L meta_description:L meta_keywords:L"
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
            "id_product:i!>products location:s ean13:s isbn:s upc:s mpn:s quantity:i "
            "reference:s supplier_reference:s wholesale_price:d price:d ecotax:d weight:d "
            "unit_price_impact:d minimal_quantity:i! low_stock_threshold:i low_stock_alert:b "
            "default_on:b available_date:D"
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
        "currencies",
        "currency",
        "The currencies",
        _fields(
            "name:s! iso_code:s! iso_code_num:s blank:i sign:s! format:i! decimals:b! "
            "conversion_rate:d! deleted:b active:b"
        ),
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
            "id_shop:i id_shop_group:i date_add:t date_upd:t"
        ),
        (_assoc("groups", "group", "groups", writable=True),),
    ),
    ResourceDef(
        "languages",
        "language",
        "Shop languages",
        _fields(
            "name:s! iso_code:s! language_code:s active:b is_rtl:b date_format_lite:s! "
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
                "product_id:i product_attribute_id:i product_quantity:i product_name:s "
                "product_reference:s product_ean13:s product_isbn:s product_upc:s "
                "product_price:d id_customization:i unit_price_tax_incl:d unit_price_tax_excl:d",
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
            "id_category_default:i>categories new:b cache_default_attribute:i "
            "id_default_image:i^>images id_default_combination:i^>combinations "
            "id_tax_rules_group:i>tax_rule_groups position_in_category:i^ "
            "manufacturer_name:s^~ quantity:i^~ type:s^ id_shop_default:i reference:s "
            "supplier_reference:s location:s width:d height:d depth:d weight:d "
            "quantity_discount:b ean13:s isbn:s upc:s mpn:s cache_is_pack:b "
            "cache_has_attachments:b is_virtual:b state:i additional_delivery_times:i "
            "delivery_in_stock:L delivery_out_stock:L on_sale:b online_only:b ecotax:d "
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
]

RESOURCES: dict[str, ResourceDef] = {d.name: d for d in _DEFS}
#: ``images`` is served by its own handler (binary originals), like PrestaShop's.
SPECIAL_RESOURCES = ("images",)
ALL_RESOURCE_NAMES: tuple[str, ...] = tuple(sorted([*RESOURCES, *SPECIAL_RESOURCES]))


def decimal_text(kind: str, value: float) -> str:
    """A DECIMAL column as MySQL returns it: 6 places (``d``) or 3 places (``d3``)."""
    return f"{value:.3f}" if kind == "d3" else f"{value:.6f}"
