"""``store connect``'s probe: prove a URL is a PrestaShop webservice, the key authenticates and
holds every permission the channel spec lists, read what the store tells about itself (its
time zone, languages, version, address and ``PS_OS_*`` order-state keys: ``shop.ShopFacts``)
and resolve the status map's states to this store's ids (by PrestaShop's configuration keys,
by name in any store language as the fallback), all without writing anything.

Permissions come from the API root (``GET /api/``): it lists the resources the key may use,
each with ``get``/``put``/``post``/``delete``/``head`` (8.x: ``patch``) attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from engine.errors import (
    ChannelNotFound,
    ChannelPermissionMissing,
    ChannelProtocolError,
)
from engine.runtime.channels.prestashop.adapter import PrestaShopAdapter
from engine.runtime.channels.prestashop.client import FIX_WEBSERVICE, PrestaShopClient
from engine.runtime.channels.prestashop.shop import ShopFacts
from engine.runtime.channels.ratelimit import RetryPolicy
from engine.runtime.settings import Secret

METHODS = ("get", "put", "post", "patch", "delete", "head")
#: What reading the store's facts needs, whatever the channel spec lists.
FACT_PERMISSIONS: Mapping[str, tuple[str, ...]] = {
    "configurations": ("GET",),
    "languages": ("GET",),
    "order_states": ("GET",),
}
FIX_URL = (
    "fix: give the shop's base URL (the webservice answers at <shop>/api) and enable the "
    "webservice in Advanced Parameters > Webservice"
)


class _StatusMap(Protocol):
    @property
    def outbound(self) -> Mapping[str, str | None]: ...

    @property
    def inbound(self) -> Mapping[str, Any]: ...


class ChannelLike(Protocol):
    """What the probe reads from a ``ChannelSpec``."""

    @property
    def permissions(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def status_map(self) -> _StatusMap: ...


@dataclass(frozen=True)
class ConnectReport:
    """A successful probe: what the store is and what this key may do there."""

    api_url: str
    shop_name: str
    version: str
    granted: Mapping[str, tuple[str, ...]]
    state_ids: Mapping[str, int]
    missing_states: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    facts: ShopFacts = field(default_factory=ShopFacts)

    @property
    def timezone(self) -> str:
        return self.facts.timezone

    def to_json(self) -> dict[str, Any]:
        return {
            "api_url": self.api_url,
            "shop_name": self.shop_name,
            "version": self.version,
            "timezone": self.facts.timezone,
            "languages": [lang.to_json() for lang in self.facts.languages],
            "granted": {k: list(v) for k, v in self.granted.items()},
            "state_ids": dict(self.state_ids),
            "missing_states": list(self.missing_states),
            "warnings": list(self.warnings),
            "facts": self.facts.to_json(),
        }


def state_names(channel: ChannelLike) -> list[str]:
    """Every PrestaShop state name the status map uses (outbound values, inbound keys,
    imported), in first-seen order."""
    names: list[str] = [v for v in channel.status_map.outbound.values() if v]
    names += list(channel.status_map.inbound)
    names += list(getattr(channel.status_map, "imported", ()) or ())
    return list(dict.fromkeys(names))


def parse_api_root(root: Any, api_url: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """``<prestashop><api shopName=...><resource get="true" .../>…`` -> (shop name,
    {resource: granted methods in upper case})."""
    api = root.find("api") if root.tag == "prestashop" else None
    if api is None:
        raise ChannelProtocolError(
            f"prestashop: {api_url}/ answered XML that is not a PrestaShop API root ({FIX_URL})"
        )
    granted: dict[str, tuple[str, ...]] = {}
    for el in api:
        methods = tuple(m.upper() for m in METHODS if el.get(m, "").lower() == "true")
        granted[el.tag] = methods
    return api.get("shopName", ""), granted


def missing_permissions(
    required: Mapping[str, Sequence[str]], granted: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for resource, methods in required.items():
        have = {m.upper() for m in granted.get(resource, ())}
        lacking = [m.upper() for m in methods if m.upper() not in have]
        if lacking:
            out[resource] = lacking
    return out


def _permission_lines(missing: Mapping[str, Iterable[str]]) -> str:
    return "\n".join(
        f"prestashop: key lacks {', '.join(methods)} on {resource} ({FIX_WEBSERVICE})"
        for resource, methods in missing.items()
    )


def probe(
    url: str,
    key: Secret | str,
    channel: ChannelLike,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 10.0,
    verify: bool = True,
) -> ConnectReport:
    """Check URL, key and permissions; resolve state names. Raises one ``ChannelError``
    whose message has one line per problem (``ChannelProtocolError`` not a webservice,
    ``ChannelAuthFailed`` bad key, ``ChannelPermissionMissing`` lacking permissions,
    ``ChannelUnavailable`` unreachable)."""
    client = PrestaShopClient(
        url,
        key,
        timeout=timeout,
        connect_timeout=min(timeout, 5.0),
        retry=RetryPolicy(attempts=2, backoff_seconds=0.2, max_backoff_seconds=1.0),
        verify=verify,
        transport=transport,
    )
    with client:
        api = client.api_url
        try:
            response = client.api_root()
        except ChannelNotFound as exc:
            raise ChannelProtocolError(
                f"prestashop: no webservice at {api}/ (404) ({FIX_URL})", status=404
            ) from exc
        except ChannelProtocolError as exc:
            if "fix:" in str(exc):
                raise
            raise ChannelProtocolError(f"{exc} ({FIX_URL})", status=exc.status) from exc
        try:
            root = client.xml(response, "GET /")
        except ChannelProtocolError as exc:
            if "dangerous" in str(exc):
                raise
            raise ChannelProtocolError(
                f"prestashop: {api}/ does not answer as a PrestaShop webservice "
                f"({str(exc).removeprefix('prestashop: ')}) ({FIX_URL})"
            ) from exc
        shop_name, granted = parse_api_root(root, api)
        version = response.headers.get("psws-version", "")
        required = {k: list(v) for k, v in channel.permissions.items()}
        for resource, methods in FACT_PERMISSIONS.items():
            have = required.setdefault(resource, [])
            have += [m for m in methods if m not in have]
        missing = missing_permissions(required, granted)
        if missing:
            raise ChannelPermissionMissing(_permission_lines(missing), resource="api")
        adapter = PrestaShopAdapter(client)
        names = state_names(channel)
        facts, fact_warnings = adapter.shop_facts(names, version=version)
        state_ids, missing_states = adapter.resolve_states(names, facts.state_keys)
        warnings = (
            *fact_warnings,
            *(
                f"prestashop: the store has no order state {name!r} (neither its "
                "configuration key nor a state of that name in any store language) (fix: "
                "rename the state in Orders > Statuses or change channels/prestashop.yaml "
                "status_map)"
                for name in missing_states
            ),
        )
        return ConnectReport(
            api_url=api,
            shop_name=shop_name or facts.shop.get("name", ""),
            version=version or facts.version,
            granted=granted,
            state_ids=state_ids,
            missing_states=tuple(missing_states),
            warnings=tuple(warnings),
            facts=facts,
        )
