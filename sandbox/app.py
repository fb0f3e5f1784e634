"""The sandbox store's HTTP face: a Starlette app speaking the PrestaShop webservice protocol.

Routes: ``/api/``, ``/api/<res>[/<id>]``, ``/webservice/dispatcher.php?url=…``,
``/api/images/products/<p>[/<i>[/<size>]]``; outside the API, ``/__sandbox/stats`` (and
``POST /__sandbox/stats/reset``), ``/__sandbox/faults`` and ``/__sandbox/keys`` (protected by
the main key, Basic or ws_key). ``stats`` also reports the traffic as the store saw it: the
most requests in flight at once and the most that arrived in any 1 s window.
Request handling follows ``webservice/dispatcher.php`` and ``WebserviceRequest::fetch``:
key (Basic user or ``ws_key``) → resource (27, 26) → method (23, 101, 25) → the handler;
the headers of ``WebserviceOutputBuilder`` on every answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesParser
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.errors import ConfigError
from sandbox.faults import Faults
from sandbox.images import SIZES, png_bytes
from sandbox.query import (
    closest,
    parse_display,
    parse_language,
    parse_list_query,
    select,
)
from sandbox.render import (
    HEAD,
    TAIL,
    JsonRenderer,
    XmlRenderer,
    errors_json,
    errors_xml,
    parse_body,
)
from sandbox.schema import ALL_RESOURCE_NAMES, METHODS
from sandbox.store import SandboxStore, WebserviceFault

REALM = (
    'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key '
    'as the login. No password required."'
)
XML_TYPE = "text/xml;charset=utf-8"
JSON_TYPE = "application/json"
#: what PHP itself sends as the type of a bare answer (the no-key 401, a fatal error)
PHP_TYPE = "text/html; charset=utf-8"
#: PrestaShop's cookie: lifetime (PS_COOKIE_LIFETIME_FO, 480 h) and the body size from which
#: a real store (php -S) has already sent its headers when the cookie is written at the end
#: of the request: measured on 8.2.1, a cookie up to 4052 bytes of body, none from 4137
COOKIE_MAX_AGE = 1728000
COOKIE_BODY_LIMIT = 4096
Permissions = dict[str, frozenset[str]]
KEY_RE = re.compile(r"[A-Z0-9]{32}")


def full_permissions() -> Permissions:
    return {name: frozenset(METHODS) for name in ALL_RESOURCE_NAMES}


class TrafficMeter:
    """What a store owner's hosting sees: requests in flight now and at most, and the most
    requests that arrived in any ``window`` seconds (sliding, by arrival time)."""

    def __init__(self, window: float = 1.0) -> None:
        self.window = window
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.max_per_window = 0
            self.first: float | None = None
            self.last: float | None = None
            self._arrivals: deque[float] = deque()

    def started(self) -> None:
        now = time.monotonic()
        with self._lock:
            self.total += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            arrivals = self._arrivals
            while arrivals and arrivals[0] <= now - self.window:
                arrivals.popleft()
            arrivals.append(now)
            self.max_per_window = max(self.max_per_window, len(arrivals))
            if self.first is None:
                self.first = now
            self.last = now

    def ended(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            span = (self.last - self.first) if self.first is not None and self.last else 0.0
            return {
                "total": self.total,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "window_seconds": self.window,
                "max_per_window": self.max_per_window,
                "seconds": round(span, 3),
                "mean_per_second": round(self.total / span, 2) if span > 0 else None,
            }


class _Metered:
    """ASGI wrapper: every request but ``/__sandbox/*`` counts in the meter, in flight from
    its arrival until its answer is sent (or the connection dropped)."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], meter: TrafficMeter
    ):
        self.app = app
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/__sandbox"):
            await self.app(scope, receive, send)
            return
        self.meter.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.meter.ended()


@dataclass
class SandboxState:
    """What the app serves: the store, the fault switches, the keys and the counters."""

    store: SandboxStore
    faults: Faults
    keys: dict[str, Permissions]
    main_key: str
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    emails: list[dict[str, Any]] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    #: keys that exist but are disabled in the back office (``WebserviceKey::isKeyActive``)
    inactive: set[str] = field(default_factory=set)
    traffic: TrafficMeter = field(default_factory=TrafficMeter)

    @property
    def cookie_name(self) -> str:
        """``PrestaShop-<md5>``, as ``Context`` names the front cookie."""
        digest = hashlib.md5(
            f"{self.store.shop_name}{self.main_key}".encode(), usedforsecurity=False
        ).hexdigest()
        return f"PrestaShop-{digest}"


class _Drop(Response):
    """Starts an answer, sends part of it, then abandons the connection (a lost response)."""

    def __init__(self, delay: float = 0.0, state: SandboxState | None = None) -> None:
        super().__init__(b"")
        self.delay = delay
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        end = time.monotonic() + self.delay
        while time.monotonic() < end:
            await asyncio.sleep(min(0.05, max(0.0, end - time.monotonic())))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", XML_TYPE.encode()), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": HEAD.encode(), "more_body": True})
        raise ConnectionAbortedError("sandbox fault: connection dropped")


class _Api:
    def __init__(self, state: SandboxState) -> None:
        self.s = state

    # ------------------------------------------------------------------ entry points

    async def api(self, request: Request) -> Response:
        params = dict(request.query_params)
        return await self.handle(request, request.path_params.get("path", ""), params)

    async def dispatcher(self, request: Request) -> Response:
        params = dict(request.query_params)
        path = params.pop("url", "")
        return await self.handle(request, path, params)

    async def handle(self, request: Request, path: str, params: dict[str, str]) -> Response:
        started = time.perf_counter()
        st = self.s
        faults = st.faults
        method = params.get("ps_method", request.method).upper()
        segs = [p for p in path.strip("/").split("/") if p]
        st.counts[(segs[0] if segs else "", method)] += 1
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000.0)
        if faults.draw(faults.timeout_rate):
            st.injected["timeout"] += 1
            return _Drop(faults.hang_seconds, st)
        if faults.draw(faults.error_rate):
            st.injected["error"] += 1
            return Response(b"", status_code=faults.error_status)
        body = b""
        if request.method in ("POST", "PUT", "PATCH"):
            body = await request.body()
        is_json = self._wants_json(request, params)
        authenticated = False
        try:
            key = self._authenticate(request, params)
            authenticated = True
            try:
                result = self._route(request, method, segs, params, key, body, is_json)
            except (WebserviceFault, _PlainUnauthorized, _PhpFatal):
                raise
            except Exception as exc:
                raise WebserviceFault(
                    500, (2, f"[PHP Error] {type(exc).__name__}: {exc}")
                ) from exc
        except WebserviceFault as fault:
            status = fault.status
            text = errors_json(fault.errors) if is_json else errors_xml(fault.errors)
            # WebserviceRequest::authenticate() alone adds WWW-Authenticate; PSWS-Version is
            # only sent once authenticated (returnOutput), so a 401 code 26 has both right.
            headers = self._headers(started, None, authenticated=authenticated)
            if not authenticated:
                headers["WWW-Authenticate"] = REALM
            headers["Content-Type"] = JSON_TYPE if is_json else XML_TYPE
            st.statuses[status] += 1
            self._cookie(request, headers, len(text.encode()))
            return self._finish(
                Response(text.encode(), status_code=status, headers=headers), False
            )
        except _PlainUnauthorized:
            # dispatcher.php's own answer before any PrestaShop header: PHP's text/html
            st.statuses[401] += 1
            headers = {"WWW-Authenticate": REALM, "Content-Type": PHP_TYPE}
            self._cookie(request, headers, 0)
            return Response(b"401 Unauthorized", status_code=401, headers=headers)
        except _PhpFatal:
            # an uncaught PHP error: an empty 500 from PHP, without PrestaShop's headers
            st.statuses[500] += 1
            headers = {"Content-Type": PHP_TYPE}
            self._cookie(request, headers, 0)
            return Response(b"", status_code=500, headers=headers)
        status, payload, ctype, wrote = result
        st.statuses[status] += 1
        if wrote and faults.draw(faults.lost_after_commit_rate):
            st.injected["lost_after_commit"] += 1
            if faults.choice():
                return _Drop(0.0, st)
            return Response(b"", status_code=faults.error_status)
        headers = self._headers(started, payload, authenticated=True)
        # returnOutput: without content the builder sends an EMPTY Content-Type header
        headers["Content-Type"] = ctype
        self._cookie(request, headers, len(payload))
        sha = headers.get("Content-Sha1")
        if sha and request.headers.get("local-content-sha1") == sha:
            headers.pop("Content-Type", None)
            return Response(b"", status_code=304, headers=headers)
        if method == "HEAD":
            return Response(b"", status_code=status, headers=headers)
        return self._finish(Response(payload, status_code=status, headers=headers), bool(payload))

    def _finish(self, response: Response, has_body: bool) -> Response:
        faults = self.s.faults
        if has_body and faults.draw(faults.malformed_rate):
            self.s.injected["malformed"] += 1
            raw = bytes(response.body)
            cut = max(1, len(raw) // 2)
            garbled = raw[:cut] + (b"<<&\x00" if faults.choice() else b"")
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            return Response(garbled, status_code=response.status_code, headers=headers)
        return response

    def _cookie(self, request: Request, headers: dict[str, str], body_size: int) -> None:
        """PrestaShop's context cookie, written by ``Cookie::__destruct`` at the end of the
        request: only for a client that did not send it back, and only while PHP has not
        sent the headers yet (a body under ``COOKIE_BODY_LIMIT`` bytes)."""
        name = self.s.cookie_name
        if name in request.cookies or body_size >= COOKIE_BODY_LIMIT:
            return
        expires = time.strftime(
            "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + COOKIE_MAX_AGE)
        )
        value = "def50200" + secrets.token_hex(96)
        headers["Set-Cookie"] = (
            f"{name}={value}; expires={expires}; Max-Age={COOKIE_MAX_AGE}; path=/; "
            "HttpOnly; SameSite=Lax"
        )

    def _headers(
        self, started: float, payload: bytes | None, *, authenticated: bool
    ) -> dict[str, str]:
        # returnOutput writes PSWS-Version only once authenticated in 8.x (the header map
        # starts at 0); 1.7 always wrote it
        store = self.s.store
        version = store.version if authenticated or not store.version_after_auth else "0"
        headers = {
            "Access-Time": str(int(time.time())),
            "X-Powered-By": "PrestaShop Webservice",
            "PSWS-Version": version,
            "Execution-Time": _php_round(time.perf_counter() - started),
        }
        if payload:
            headers["Content-Sha1"] = hashlib.sha1(payload, usedforsecurity=False).hexdigest()
        return headers

    @staticmethod
    def _wants_json(request: Request, params: Mapping[str, str]) -> bool:
        for value in (
            request.headers.get("io-format"),
            request.headers.get("output-format"),
            params.get("output_format"),
            params.get("io_format"),
        ):
            if value is not None:
                return value == "JSON"
        return False

    # ------------------------------------------------------------------ auth

    def _authenticate(self, request: Request, params: Mapping[str, str]) -> str:
        key = basic_user(request.headers.get("authorization"))
        if key is None:
            key = params.get("ws_key")
        if key is None:
            raise _PlainUnauthorized
        key = key.strip()
        if not key:
            raise WebserviceFault(401, (17, "Authentication key is empty"))
        if len(key) != 32:
            raise WebserviceFault(401, (18, "Invalid authentication key format"))
        if key not in self.s.keys or key in self.s.inactive:
            raise WebserviceFault(
                401,
                (20, "Authentification key is not active"),
                (21, "No permission for this authentication key"),
            )
        if not any(self.s.keys[key].values()):  # an active key without any permission row
            raise WebserviceFault(401, (21, "No permission for this authentication key"))
        return key

    # ------------------------------------------------------------------ routing

    def _route(
        self,
        request: Request,
        method: str,
        segs: list[str],
        params: dict[str, str],
        key: str,
        body: bytes,
        is_json: bool,
    ) -> tuple[int, bytes, str, bool]:
        perms = self.s.keys[key]
        base = str(request.base_url).rstrip("/")
        if not segs:
            if method not in ("GET", "HEAD"):
                raise WebserviceFault(405, (23, f"Method {method} is not valid"))
            if is_json:
                if self.s.store.php8:
                    # 8.x: overrideContent() runs array_filter on the names (strings): a
                    # TypeError under PHP 8 (seen on a real 8.2.1)
                    raise _PhpFatal
                names = sorted(n for n, m in perms.items() if m)
                return 200, json.dumps(names).encode(), JSON_TYPE, False
            xml = XmlRenderer(self.s.store, base).api_root(perms, self.s.store.shop_name)
            return 200, xml.encode(), XML_TYPE, False
        res = segs[0]
        if res not in ALL_RESOURCE_NAMES:
            guess = closest(res, ALL_RESOURCE_NAMES)
            raise WebserviceFault(
                400,
                (
                    27,
                    f'Resource of type "{res}" does not exists. Did you mean: '
                    f'"{guess}"? The full list is: "' + '", "'.join(ALL_RESOURCE_NAMES) + '"',
                ),
            )
        granted = perms.get(res, frozenset())
        if not granted:
            raise WebserviceFault(
                401, (26, f'Resource of type "{res}" is not allowed with this authentication key')
            )
        if method not in METHODS:
            raise WebserviceFault(405, (23, f"Method {method} is not valid"))
        store = self.s.store
        rdef = store.resources.get(res)
        if rdef is not None and method in rdef.forbidden_methods:
            raise WebserviceFault(
                405, (101, f"Method {method} is not allowed for the resource {res}")
            )
        if method not in granted:
            raise WebserviceFault(
                405,
                (
                    25,
                    f"Method {method} is not allowed for the resource {res} "
                    "with this authentication key",
                ),
            )
        if res == "images":
            if method == "POST" and len(segs) == 3 and segs[1] == "products":
                return self._upload_image(segs[2], request.headers.get("content-type", ""), body)
            if method not in ("GET", "HEAD"):
                raise WebserviceFault(
                    405, (101, f"Method {method} is not allowed for the resource {res}")
                )
            return self._images(base, segs[1:])
        if rdef is None:
            return self._unmodelled(res, method, segs, is_json)
        with store.lock:
            if method in ("GET", "HEAD"):
                return self._read(base, rdef, segs, params, is_json)
            if method == "DELETE":
                ids = _delete_ids(segs, params)
                store.delete(res, ids)
                return 200, b"", "", True
            entities = parse_body(body)
            if not entities:
                raise WebserviceFault(400, (41, "no entity in the XML body"))
            # OrderHistory::addWs: (bool) Tools::getValue('sendemail') - PHP truthiness
            send_email = params.get("sendemail", "") not in ("", "0")
            recs = store.write(method, res, entities, send_email=send_email)
            bare = store.written_unset
            if res == "order_histories" and method == "POST" and send_email:
                for rec in recs:
                    self.s.emails.append(
                        {
                            "id_order": int(rec["id_order"]),
                            "id_order_state": int(rec["id_order_state"]),
                        }
                    )
            status = 201 if method == "POST" else 200
            if is_json:
                payload = JsonRenderer(store).detail(rdef, recs, bare, written=method)
                if "display" in params:
                    payload = JsonRenderer(store).listing(rdef, recs, None, False)
                return status, payload.encode(), JSON_TYPE, True
            xml = XmlRenderer(store, base).detail(rdef, recs, bare)
            return status, xml.encode(), XML_TYPE, True

    def _unmodelled(
        self, res: str, method: str, segs: list[str], is_json: bool
    ) -> tuple[int, bytes, str, bool]:
        """A resource of the real root the sandbox does not model (suppliers, carts...):
        it answers as a shop without any: an empty list, a 404 for an id, and writes
        refused for the resource (405, code 101)."""
        if method not in ("GET", "HEAD"):
            raise WebserviceFault(
                405, (101, f"Method {method} is not allowed for the resource {res}")
            )
        if len(segs) > 1:
            return 404, b"", "", False
        if is_json:
            return 200, b"[]", JSON_TYPE, False
        return 200, f"{HEAD}<{res}>\n</{res}>\n{TAIL}".encode(), XML_TYPE, False

    def _read(
        self, base: str, rdef: Any, segs: list[str], params: dict[str, str], is_json: bool
    ) -> tuple[int, bytes, str, bool]:
        store = self.s.store
        if "schema" in params:
            kind = params["schema"]
            if kind not in ("blank", "synopsis"):
                fault = WebserviceFault(
                    400,
                    (
                        28,
                        "Please select a schema of type 'synopsis' to get the whole "
                        "schema informations (which fields are required, which kind of "
                        "content...) or 'blank' to get an empty schema to fill before "
                        "using POST request",
                    ),
                )
                raise _list_query_failed(store, fault) if len(segs) == 1 else fault
            return 200, XmlRenderer(store, base).schema(rdef, kind).encode(), XML_TYPE, False
        langs = parse_language(store, params["language"]) if "language" in params else None
        if len(segs) > 1:
            # getFilteredObjectDetails: display errors first, then ``new Class((int) $id)``
            display, _full = (
                parse_display(rdef, params["display"]) if "display" in params else (None, True)
            )
            rec = store.get(rdef.name, _php_int(segs[1]))
            if rec is None:
                return 404, b"", "", False
            if is_json:
                js = JsonRenderer(store, langs)
                if "display" in params:
                    return 200, js.listing(rdef, [rec], display, False).encode(), JSON_TYPE, False
                return 200, js.detail(rdef, [rec]).encode(), JSON_TYPE, False
            xr = XmlRenderer(store, base, langs)
            ent = (
                xr.entity_full(rdef, rec)
                if display is None
                else xr.entity_display(rdef, rec, display)
            )
            return 200, (HEAD + ent + TAIL).encode(), XML_TYPE, False
        try:
            q = parse_list_query(store, rdef, params)
        except WebserviceFault as fault:
            raise _list_query_failed(store, fault) from None
        recs = select(store, rdef, q)
        minimal = q.display is None and not q.display_full
        if is_json:
            return (
                200,
                JsonRenderer(store, q.langs).listing(rdef, recs, q.display, minimal).encode(),
                JSON_TYPE,
                False,
            )
        xr = XmlRenderer(store, base, q.langs)
        if minimal:
            return 200, xr.list_minimal(rdef, (r["id"] for r in recs)).encode(), XML_TYPE, False
        return 200, xr.list_full(rdef, recs, q.display).encode(), XML_TYPE, False

    def _upload_image(
        self, product: str, content_type: str, body: bytes
    ) -> tuple[int, bytes, str, bool]:
        """POST images/products/<id> (multipart field ``image``), as
        ``WebserviceSpecificManagementImages``: the first image becomes the cover."""
        store = self.s.store
        prod = store.get("products", int(product)) if product.isdigit() else None
        if prod is None:
            raise WebserviceFault(404, (60, f"Product {product} does not exist"))
        msg = BytesParser(policy=email_policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        part = next(
            (p for p in msg.iter_parts() if p.get_param("name", header="content-disposition")
             == "image"),
            None,
        ) if msg.is_multipart() else None  # fmt: skip
        if part is None:
            raise WebserviceFault(400, (65, 'Please set an "image" parameter with image data'))
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        allowed = ("image/gif", "image/jpg", "image/jpeg", "image/pjpeg", "image/png")
        magic = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8")
        if part.get_content_type() not in (*allowed, "image/x-png") or not data.startswith(magic):
            raise WebserviceFault(
                400,
                (73, "This type of image format is not recognized, allowed formats are: "
                     + ", ".join(allowed)),
            )  # fmt: skip
        with store.lock:
            top = max(
                (int(i["id"]) for p in store.records("products")
                 for i in p["associations"].get("images") or ()),
                default=0,
            )  # fmt: skip
            images = prod["associations"].setdefault("images", [])
            images.append({"id": str(top + 1)})
            store.touch("products", prod["id"])
            store.persist()
        cover = "1" if len(images) == 1 else "0"
        xml = (
            f"{HEAD}<image>\n<id><![CDATA[{top + 1}]]></id>\n"
            f"<id_product><![CDATA[{prod['id']}]]></id_product>\n"
            f"<position><![CDATA[{len(images)}]]></position>\n"
            f"<cover><![CDATA[{cover}]]></cover>\n</image>\n{TAIL}"
        )
        return 200, xml.encode(), XML_TYPE, False

    def _images(self, base: str, rest: list[str]) -> tuple[int, bytes, str, bool]:
        store = self.s.store
        api = base + "/api/"
        if not rest:
            kinds = (
                "general",
                "categories",
                "manufacturers",
                "suppliers",
                "stores",
                "products",
                "customizations",
            )
            body = "".join(
                f'<{k} xlink:href="{api}images/{k}" get="true" put="false" post="false" '
                f'patch="false" delete="false" head="true" upload_allowed_mimetypes='
                f'"image/gif, image/jpg, image/jpeg, image/pjpeg, image/png, image/x-png"/>\n'
                for k in kinds
            )
            return (
                200,
                f"{HEAD}<image_types>\n{body}</image_types>\n{TAIL}".encode(),
                XML_TYPE,
                False,
            )
        if rest[0] != "products":
            return 200, f"{HEAD}<images>\n</images>\n{TAIL}".encode(), XML_TYPE, False
        with store.lock:
            if len(rest) == 1:
                ids = [
                    p["id"] for p in store.records("products") if p["associations"].get("images")
                ]
                body = "".join(
                    f'<image id="{i}" xlink:href="{api}images/products/{i}"/>\n' for i in ids
                )
                return 200, f"{HEAD}<images>\n{body}</images>\n{TAIL}".encode(), XML_TYPE, False
            prod = store.get("products", int(rest[1])) if rest[1].isdigit() else None
            images = [
                int(i["id"])
                for i in (prod or {"associations": {}})["associations"].get("images", ())
            ]
            if prod is None or not images:
                return 404, b"", "", False
            if len(rest) == 2:
                body = "".join(
                    f'<declination id="{i}" xlink:href="{api}images/products/{prod["id"]}/{i}"/>\n'
                    for i in images
                )
                return (
                    200,
                    f'{HEAD}<image id="{prod["id"]}">\n{body}</image>\n{TAIL}'.encode(),
                    XML_TYPE,
                    False,
                )
            which = rest[2]
            image_id = images[0] if which == "bin" else (int(which) if which.isdigit() else -1)
            if image_id not in images:
                raise WebserviceFault(400, (57, "This image id does not exist"))
            if len(rest) > 3 and rest[3] not in SIZES:
                raise WebserviceFault(400, (58, "This image size does not exist"))
            return 200, png_bytes(image_id), "image/png", False

    # ------------------------------------------------------------------ /__sandbox

    def _admin_ok(self, request: Request) -> bool:
        key = basic_user(request.headers.get("authorization")) or request.query_params.get(
            "ws_key"
        )
        return key is not None and key.strip() == self.s.main_key

    async def stats(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return _admin_denied()
        per: dict[str, dict[str, int]] = {}
        for (res, method), n in sorted(self.s.counts.items()):
            per.setdefault(res or "/", {})[method] = n
        return JSONResponse(
            {
                "requests": per,
                "total": sum(self.s.counts.values()),
                "statuses": {str(k): v for k, v in sorted(self.s.statuses.items())},
                "injected_faults": dict(self.s.injected),
                "emails_sent": list(self.s.emails),
                "traffic": self.s.traffic.snapshot(),
            }
        )

    async def reset_stats(self, request: Request) -> Response:
        """Zero the request counters and the traffic meter (not the store, not the mails)."""
        if not self._admin_ok(request):
            return _admin_denied()
        self.s.counts.clear()
        self.s.statuses.clear()
        self.s.injected.clear()
        self.s.traffic.reset()
        return await self.stats(request)

    async def faults(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return _admin_denied()
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict):
                    raise ConfigError("the faults body must be a JSON object")
                return JSONResponse(self.s.faults.update(changes))
            except (ConfigError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.s.faults.snapshot())

    async def keys(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return _admin_denied()
        try:
            doc = json.loads(await request.body() or b"{}")
            key, perms = add_key(
                self.s, doc.get("key"), doc.get("permissions"), doc.get("active", True)
            )
        except (ConfigError, ValueError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {"key": key, "permissions": {r: sorted(m) for r, m in perms.items()}}, status_code=201
        )


class _PlainUnauthorized(Exception):
    """No key at all: the dispatcher's plain-text 401 before any XML is built."""


class _PhpFatal(Exception):
    """An uncaught PHP error in the real store (an empty 500 from PHP itself)."""


def basic_user(header: str | None) -> str | None:
    """The user part of a Basic ``Authorization`` header (the webservice key), or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=False).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    return decoded.split(":", 1)[0]


def add_key(
    state: SandboxState, key: Any, permissions: Any, active: Any = True
) -> tuple[str, Permissions]:
    """Register ``key`` with exactly ``permissions`` ({resource: [methods]}); ``active=False``
    makes it a key disabled in the back office (401, codes 20 and 21)."""
    if not isinstance(key, str) or len(key) != 32:
        raise ConfigError("a webservice key must be a string of exactly 32 characters")
    if not isinstance(permissions, dict):
        raise ConfigError('"permissions" must be an object {resource: [methods]}')
    perms: Permissions = {}
    for res, methods in permissions.items():
        if res not in ALL_RESOURCE_NAMES:
            raise ConfigError(f"unknown resource {res!r} in permissions")
        if not isinstance(methods, list) or any(str(m).upper() not in METHODS for m in methods):
            raise ConfigError(f"permissions for {res!r} must be a list of {', '.join(METHODS)}")
        perms[res] = frozenset(str(m).upper() for m in methods)
    if not isinstance(active, bool):
        raise ConfigError('"active" must be true or false')
    state.keys[key] = perms
    if active:
        state.inactive.discard(key)
    else:
        state.inactive.add(key)
    return key, perms


def _admin_denied() -> Response:
    return JSONResponse(
        {"error": "the sandbox admin endpoints need the main key (Basic user or ws_key)"},
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="omsflow sandbox"'},
    )


def _delete_ids(segs: list[str], params: Mapping[str, str]) -> list[int]:
    if len(segs) > 1:
        if not segs[1].isdigit():
            raise WebserviceFault(404, (87, f"Id(s) not exists: {segs[1]}"))
        return [int(segs[1])]
    raw = params.get("id", "")
    m = re.fullmatch(r"\[([\d,|\s]+)\]", raw)
    if not m:
        raise WebserviceFault(400, (90, "id is required when modifying a resource"))
    return [int(x) for x in re.split(r"[,|]", m.group(1)) if x.strip()]


#: where the sandbox says its PHP files are (a real store's own install folder)
SHOP_ROOT = "/var/www/html"


def _list_query_failed(store: SandboxStore, fault: WebserviceFault) -> WebserviceFault:
    """A list query PrestaShop refuses (32-39): ``manageFilters()`` returns false, which
    ``getFilteredObjectList()`` then reads as an array. Under PHP 8 that is four warnings
    (lines 1333-1336), each an error code 3 with status 500 (the last status wins): what a
    real 8.2.1 answers to a bad filter, sort, display or limit."""
    if not store.php8:
        return fault
    where = f"{SHOP_ROOT}/classes/webservice/WebserviceRequest.php"
    warnings = [
        (
            3,
            "[PHP Warning #2] Trying to access array offset on value of type bool "
            f"({where}, line {n})",
        )
        for n in (1333, 1334, 1335, 1336)
    ]
    return WebserviceFault(500, *fault.errors, *warnings)


def _php_int(text: str) -> int:
    """PHP's ``(int)`` cast of a string: leading digits, else 0 (``"5abc"`` is 5)."""
    m = re.match(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def _php_round(seconds: float) -> str:
    value = round(seconds, 3)
    return "0" if value == 0 else f"{value:.3f}".rstrip("0").rstrip(".")


def create_app(
    store: SandboxStore,
    faults: Faults | None = None,
    keys: Mapping[str, Permissions] | str | None = None,
) -> Starlette:
    """The sandbox app. ``keys``: {key: permissions}, or one key string that gets everything.

    The first key given (or the only one) is the main key that guards ``/__sandbox/*``.
    """
    if keys is None:
        raise ConfigError("create_app needs at least one webservice key")
    key_map: dict[str, Permissions] = (
        {keys: full_permissions()}
        if isinstance(keys, str)
        else {k: dict(v) for k, v in keys.items()}
    )
    if not key_map:
        raise ConfigError("create_app needs at least one webservice key")
    main_key = next(iter(key_map))
    state = SandboxState(store=store, faults=faults or Faults(), keys=key_map, main_key=main_key)
    api = _Api(state)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "COPY", "LINK"]
    handler: Callable[[Request], Awaitable[Response]] = api.api
    app = Starlette(
        routes=[
            Route("/api", handler, methods=methods),
            Route("/api/{path:path}", handler, methods=methods),
            Route("/webservice/dispatcher.php", api.dispatcher, methods=methods),
            Route("/__sandbox/stats", api.stats, methods=["GET"]),
            Route("/__sandbox/stats/reset", api.reset_stats, methods=["POST"]),
            Route("/__sandbox/faults", api.faults, methods=["GET", "POST"]),
            Route("/__sandbox/keys", api.keys, methods=["POST"]),
        ]
    )
    app.state.sandbox = state
    app.add_middleware(_Metered, meter=state.traffic)
    return app
