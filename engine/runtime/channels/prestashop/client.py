"""The HTTP edge to one PrestaShop store: pooled httpx client, key as Basic-auth user, JSON
output for reads, XML bodies for writes, retries for idempotent calls only, bounded
concurrency, a token bucket, request counts, and every failure mapped in ONE place
(``_map_errors``) to ``engine.errors.Channel*`` with the key redacted.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

import httpx

from engine.errors import (
    ChannelAuthFailed,
    ChannelError,
    ChannelNotFound,
    ChannelPermissionMissing,
    ChannelProtocolError,
    ChannelRejected,
    ChannelUnavailable,
)
from engine.runtime.channels.prestashop import xml as psxml
from engine.runtime.channels.ratelimit import (
    BudgetSource,
    LocalBudget,
    RequestBudget,
    RetryPolicy,
)
from engine.runtime.settings import RedactingFilter, Secret, redact

log = logging.getLogger("omsflow.channels.prestashop")

T = TypeVar("T")
R = TypeVar("R")

FIX_WEBSERVICE = "fix: enable it in Advanced Parameters > Webservice"
FIX_KEY = "fix: copy the key from Advanced Parameters > Webservice and check it is enabled"
# Store error codes on a 500 that retrying cannot cure (127 our XML, 133 stock depends on
# stock, 88 not deleted): those are rejections, not outages.
_FINAL_5XX_CODES = {"127", "133", "88"}
_AUTH_CODES = {"16", "17", "18", "20", "21"}
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})

_filter = RedactingFilter()
log.addFilter(_filter)
logging.getLogger("httpx").addFilter(_filter)


def api_url(base_url: str) -> str:
    """``https://shop/sub`` or ``https://shop/sub/api/`` -> ``https://shop/sub/api``."""
    url = base_url.strip().rstrip("/")
    if not url.endswith("/api"):
        url += "/api"
    return url


def looks_like_html(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").lower()
    if "html" in ctype:
        return True
    head = response.content[:200].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def is_webservice_response(response: httpx.Response) -> bool:
    """Headers only PrestaShop's dispatcher sends (``PSWS-Version``, ``X-Powered-By``, or
    its Basic-auth realm)."""
    h = response.headers
    return (
        "psws-version" in h
        or "prestashop" in h.get("x-powered-by", "").lower()
        or "prestashop" in h.get("www-authenticate", "").lower()
    )


def _is_xml(response: httpx.Response) -> bool:
    if "xml" in response.headers.get("content-type", "").lower():
        return True
    return response.content[:100].lstrip().startswith(b"<?xml")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _raw(response: httpx.Response) -> httpx.Response:
    return response


def _garbled(response: httpx.Response, exc: ChannelProtocolError) -> bool:
    """A 2xx answer of the webservice (its headers) whose body does not parse: cut or
    garbled in transit, so worth another attempt. Not an HTML page, not refused
    dangerous XML, not a well-formed document of an unexpected shape (those are final)."""
    cause = exc.__cause__
    return (
        200 <= response.status_code < 300
        and isinstance(cause, ValueError)
        and not isinstance(cause, psxml.DangerousXml)
        and is_webservice_response(response)
        and not looks_like_html(response)
    )


class PrestaShopClient:
    """One store's webservice. Thread-safe; use as a context manager or call ``close()``.

    Reads ask for JSON (``Output-Format: JSON``) unless XML is needed (images, the API root,
    read-modify-write PUTs); writes send XML. ``stats`` counts every HTTP attempt per
    ``(method, resource)``. ``budgets`` (``engine.runtime.db.budget.SharedBudgets``) makes
    ``max_concurrency`` and ``rate_limit`` hold across every process sharing that database.
    """

    def __init__(
        self,
        base_url: str,
        key: Secret | str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_concurrency: int = 8,
        rate_limit: tuple[float, float] | None = None,
        retry: RetryPolicy | None = None,
        verify: bool = True,
        transport: httpx.BaseTransport | None = None,
        channel: str = "prestashop",
        sleep: Callable[[float], None] = time.sleep,
        budgets: BudgetSource | None = None,
    ) -> None:
        self.key = key if isinstance(key, Secret) else Secret(key)
        RedactingFilter.register(self.key.reveal())
        self.api_url = api_url(base_url)
        self.channel = channel
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max(1, int(max_concurrency))
        self._sleep = sleep
        # the store's budget (calls in flight, calls per second): shared by every worker
        # through the database when ``budgets`` is given, else this process's own
        self.budget: RequestBudget = (
            budgets.budget(self.api_url, self.max_concurrency, rate_limit)
            if budgets is not None
            else LocalBudget(self.max_concurrency, rate_limit, sleep=sleep)
        )
        self._stats_lock = threading.Lock()
        self.stats: Counter[tuple[str, str]] = Counter()
        if not verify:
            log.warning("prestashop: TLS verification is OFF for %s", self.api_url)
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            auth=httpx.BasicAuth(self.key.reveal(), ""),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=self.max_concurrency,
                max_keepalive_connections=self.max_concurrency,
            ),
            verify=verify,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "omsflow-prestashop/0.1"},
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrestaShopClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PrestaShopClient({self.api_url!r}, key={self.key!r})"

    @property
    def total_requests(self) -> int:
        with self._stats_lock:
            return sum(self.stats.values())

    # ------------------------------------------------------------------ errors (ONE place)

    def _redact(self, text: str) -> str:
        return redact(text, self.key.reveal())

    @contextlib.contextmanager
    def _map_errors(self, method: str, path: str) -> Iterator[None]:
        """Translate httpx failures and error statuses into the most specific ChannelError."""
        resource = path.split("/", 1)[0].split("?", 1)[0] or "api"
        where = f"{method} {path or '/'}"
        try:
            yield
        except ChannelError:
            raise
        except httpx.TimeoutException as exc:
            raise ChannelUnavailable(
                self._redact(f"prestashop: {where} timed out ({type(exc).__name__})"),
                channel=self.channel,
                resource=resource,
            ) from exc
        except httpx.HTTPStatusError as exc:
            raise self._status_error(exc.response, where, resource) from exc
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise ChannelProtocolError(
                self._redact(f"prestashop: bad store URL {self.api_url!r} ({exc})"),
                channel=self.channel,
                resource=resource,
            ) from exc
        except httpx.TransportError as exc:
            raise ChannelUnavailable(
                self._redact(
                    f"prestashop: {where} failed: cannot talk to {self.api_url} "
                    f"({type(exc).__name__}: {exc})"
                ),
                channel=self.channel,
                resource=resource,
            ) from exc

    def _store_errors(self, response: httpx.Response) -> list[psxml.StoreError]:
        body = response.content
        if not body.strip():
            return []
        ctype = response.headers.get("content-type", "")
        try:
            if "json" in ctype or body.lstrip()[:1] in (b"{", b"["):
                doc = json.loads(body)
                errs = doc.get("errors", []) if isinstance(doc, dict) else []
                return [
                    psxml.StoreError(str(e.get("code", "")), str(e.get("message", "")))
                    for e in errs
                    if isinstance(e, dict)
                ]
            if body.lstrip().startswith(b"<"):
                return psxml.errors_of(psxml.parse_xml(body, where="error body"))
        except (ValueError, ChannelProtocolError):
            return []
        return []

    def _status_error(self, response: httpx.Response, where: str, resource: str) -> ChannelError:
        status = response.status_code
        kw: dict[str, Any] = {"channel": self.channel, "resource": resource, "status": status}
        if 300 <= status < 400:
            target = response.headers.get("location", "?")
            return ChannelProtocolError(
                self._redact(
                    f"prestashop: {where} was redirected ({status}) to {target}; "
                    "not the webservice (fix: use the store's final URL, e.g. https)"
                ),
                **kw,
            )
        if looks_like_html(response) and status < 500:
            return ChannelProtocolError(
                self._redact(
                    f"prestashop: {where} answered {status} with an HTML page, not the "
                    f"PrestaShop webservice at {self.api_url}"
                ),
                **kw,
            )
        errors = self._store_errors(response)
        codes = {e.code for e in errors}
        first = errors[-1] if errors else None  # PrestaShop: the last setError wins
        detail = f"{first.message} (code {first.code})" if first else response.reason_phrase
        if first:
            kw["store_code"] = first.code
        msg = self._redact(f"prestashop: {where} -> {status}: {detail}")
        if status == 429 or status >= 500:
            if status >= 500 and codes & _FINAL_5XX_CODES:
                return ChannelRejected(msg, **kw)
            return ChannelUnavailable(msg, retry_after=_retry_after(response), **kw)
        if status == 401:
            if not errors and not is_webservice_response(response):
                return ChannelProtocolError(
                    self._redact(
                        f"prestashop: {where} answered 401 without PrestaShop's webservice "
                        f"headers; {self.api_url} is not a PrestaShop webservice"
                    ),
                    **kw,
                )
            if "26" in codes:
                return ChannelPermissionMissing(
                    self._redact(
                        f"prestashop: key lacks access to {resource} ({where} -> 401, code 26)"
                        f" ({FIX_WEBSERVICE})"
                    ),
                    **kw,
                )
            if not errors and "prestashop" in response.headers.get("www-authenticate", "").lower():
                return ChannelAuthFailed(
                    self._redact(
                        f"prestashop: {where} -> 401: the key did not reach PrestaShop "
                        "(fix: enable 'CGI mode for PHP' in Advanced Parameters > Webservice, "
                        "or check the key)"
                    ),
                    **kw,
                )
            return ChannelAuthFailed(
                self._redact(f"prestashop: the store refused the key: {detail} ({FIX_KEY})"),
                **kw,
            )
        if status == 403 or (status == 405 and "25" in codes):
            method = where.split(" ", 1)[0]
            return ChannelPermissionMissing(
                self._redact(
                    f"prestashop: key lacks {method} on {resource} ({where} -> {status}: "
                    f"{detail}) ({FIX_WEBSERVICE})"
                ),
                **kw,
            )
        if status == 404:
            return ChannelNotFound(msg, **kw)
        return ChannelRejected(msg, **kw)

    # ------------------------------------------------------------------ transport

    def _count(self, method: str, path: str) -> None:
        resource = path.split("/", 1)[0] or "api"
        with self._stats_lock:
            self.stats[(method, resource)] += 1

    def _send_once(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        content: bytes | None,
        files: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        with self.budget.slot():
            self.budget.permit()  # inside the slot: the call starts as soon as it may
            self._count(method, path)
            started = time.monotonic()
            response = self._http.request(
                method, path, params=params, content=content, files=files, headers=headers
            )
        log.debug(
            "%s",
            self._redact(
                f"prestashop {method} {response.request.url} -> {response.status_code} "
                f"({time.monotonic() - started:.3f}s)"
            ),
        )
        response.raise_for_status()
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        """Send one call; retry it (backoff + jitter, Retry-After honoured) only when it is
        idempotent (``retry`` defaults to GET/HEAD/PUT/DELETE; POST never)."""
        return self._call(
            method,
            path,
            _raw,
            params=params,
            content=content,
            files=files,
            headers=headers,
            retry=retry,
        )

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[httpx.Response], T],
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        files: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
    ) -> T:
        """``request`` + ``parse`` of the answer as one attempt: a 2xx answer whose body is
        garbled in transit (the webservice's headers, a body that does not parse) is
        ``ChannelUnavailable`` — retried here when the call is idempotent, by the caller
        otherwise (a write it answers may have been applied: read it back first)."""
        method = method.upper()
        retryable_call = (method in IDEMPOTENT) if retry is None else retry
        attempts = self.retry.attempts if retryable_call else 1
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._map_errors(method, path):
                    response = self._send_once(
                        method,
                        path,
                        params=params,
                        content=content,
                        files=files,
                        headers=headers,
                    )
                try:
                    return parse(response)
                except ChannelProtocolError as exc:
                    if not _garbled(response, exc):
                        raise
                    raise ChannelUnavailable(
                        self._redact(
                            f"prestashop: {method} {path or '/'} answered "
                            f"{response.status_code} with a garbled body "
                            f"({str(exc).removeprefix('prestashop: ')})"
                        ),
                        channel=self.channel,
                        resource=path.split("/", 1)[0].split("?", 1)[0] or "api",
                        status=response.status_code,
                    ) from exc
            except ChannelError as exc:
                if not exc.retryable or attempt >= attempts:
                    raise
                wait = self.retry.delay(attempt, exc.retry_after)
                log.info(
                    "%s",
                    self._redact(
                        f"prestashop: retry {attempt}/{attempts - 1} of {method} {path} in "
                        f"{wait:.2f}s after: {exc}"
                    ),
                )
                self._sleep(wait)

    # ------------------------------------------------------------------ bodies

    def _check_body(self, response: httpx.Response, where: str) -> None:
        if looks_like_html(response):
            raise ChannelProtocolError(
                self._redact(
                    f"prestashop: {where} answered with an HTML page, not the PrestaShop "
                    f"webservice at {self.api_url}"
                ),
                channel=self.channel,
                status=response.status_code,
            )

    def _json(self, response: httpx.Response, where: str) -> Any:
        self._check_body(response, where)
        body = response.content
        if not body.strip():
            return []
        if "xml" in response.headers.get("content-type", "") or body.lstrip().startswith(b"<"):
            raise ChannelProtocolError(
                f"prestashop: {where} answered XML where JSON was asked "
                "(the store ignored Output-Format: JSON)",
                channel=self.channel,
                status=response.status_code,
            )
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ChannelProtocolError(
                f"prestashop: {where} answered malformed JSON ({exc})",
                channel=self.channel,
                status=response.status_code,
            ) from exc

    def xml(self, response: httpx.Response, where: str) -> Element:
        """The response body as XML (hardened lxml), refusing HTML pages and dangerous XML."""
        self._check_body(response, where)
        if not response.content.strip():
            raise ChannelProtocolError(
                f"prestashop: {where} answered an empty body where XML was expected",
                channel=self.channel,
                status=response.status_code,
            )
        return psxml.parse_xml(response.content, where=where)

    @staticmethod
    def json_items(doc: Any, resource: str) -> list[dict[str, Any]]:
        """Entities of a JSON document: ``[]`` (the empty list, in every version),
        ``{"orders": [...]}`` (lists and any ``display`` request) or ``{"order": {...}}``."""
        if isinstance(doc, list):
            if doc:
                raise ChannelProtocolError(
                    f"prestashop: {resource}: unexpected bare JSON list of {len(doc)} items"
                )
            return []
        if not isinstance(doc, dict):
            raise ChannelProtocolError(f"prestashop: {resource}: unexpected JSON {type(doc)}")
        if resource in doc:
            value = doc[resource]
            if isinstance(value, list):
                return [v for v in value if isinstance(v, dict)]
            if isinstance(value, dict):
                return [value]
        values = [v for k, v in doc.items() if k != "errors"]
        if len(values) == 1 and isinstance(values[0], dict):
            return [values[0]]
        if len(values) == 1 and isinstance(values[0], list):
            return [v for v in values[0] if isinstance(v, dict)]
        raise ChannelProtocolError(
            f"prestashop: {resource}: JSON has no '{resource}' entry (keys: {sorted(doc)})"
        )

    # ------------------------------------------------------------------ reads

    def get(
        self,
        resource: str,
        id: int | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        fmt: str = "JSON",
    ) -> list[dict[str, Any]]:
        """GET a list or one entity, as normalised items (see ``xml.py``)."""
        path = resource if id is None else f"{resource}/{int(id)}"
        headers = {"Output-Format": "JSON"} if fmt == "JSON" else None
        where = f"GET {path}"

        def parse(response: httpx.Response) -> list[dict[str, Any]]:
            if fmt == "JSON" and not _is_xml(response):
                return self.json_items(self._json(response, where), resource)
            # XML asked, or a proxy dropped the Output-Format header: parse what came
            return psxml.document_items(self.xml(response, where), resource)

        return self._call("GET", path, parse, params=params, headers=headers)

    def get_xml(self, path: str, *, params: Mapping[str, Any] | None = None) -> Element:
        """GET and parse XML (the API root, images, read-modify-write sources)."""
        where = f"GET {path or '/'}"
        return self._call("GET", path, lambda r: self.xml(r, where), params=params)

    def pages(
        self,
        resource: str,
        *,
        params: Mapping[str, Any] | None = None,
        page_size: int = 500,
        display: str | None = "full",
        sort: str = "[id_ASC]",
        fmt: str = "JSON",
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``resource`` by ``limit=offset,n`` with ``sort`` (default ``[id_ASC]``:
        without sort PrestaShop has no ORDER BY); stops on a short page."""
        offset = 0
        while True:
            query: dict[str, Any] = dict(params or {})
            query["sort"] = sort
            query["limit"] = f"{offset},{page_size}"
            if display:
                query["display"] = display
            items = self.get(resource, params=query, fmt=fmt)
            if items:
                yield items
            if len(items) < page_size:
                return
            offset += page_size

    def iter_all(self, resource: str, **kw: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(resource, **kw):
            yield from page

    def api_root(self) -> httpx.Response:
        """``GET /api/``: the resources this key may use (raw response, for the probe)."""
        return self.request("GET", "")

    def map_concurrent(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Apply ``fn`` to ``items`` on up to ``max_concurrency`` threads, results in order
        (each call still goes through the semaphore and the token bucket)."""
        todo = list(items)
        if len(todo) <= 1 or self.max_concurrency == 1:
            return [fn(item) for item in todo]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(fn, todo))

    # ------------------------------------------------------------------ writes (XML)

    def _write(
        self,
        method: str,
        resource: str,
        body: bytes,
        *,
        params: Mapping[str, Any] | None,
        retry: bool | None,
    ) -> list[dict[str, Any]]:
        def parse(response: httpx.Response) -> list[dict[str, Any]]:
            if not response.content.strip():
                return []
            return psxml.document_items(self.xml(response, f"{method} {resource}"), resource)

        return self._call(
            method,
            resource,
            parse,
            params=params,
            content=body,
            headers={"Content-Type": "text/xml; charset=utf-8"},
            retry=retry,
        )

    def put_xml(
        self, resource: str, body: bytes, *, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """PUT a FULL object (the id comes from the body); idempotent, so retried."""
        return self._write("PUT", resource, body, params=params, retry=True)

    def post_xml(
        self, resource: str, body: bytes, *, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """POST (create); never retried automatically: a lost answer may hide a success."""
        return self._write("POST", resource, body, params=params, retry=False)

    def delete(self, resource: str, id: int) -> None:
        """DELETE; retried, and a 404 after a retried attempt counts as done."""
        path = f"{resource}/{int(id)}"
        try:
            self.request("DELETE", path, retry=False)
            return
        except ChannelUnavailable:
            pass
        try:
            self.request("DELETE", path)
        except ChannelNotFound:
            return

    def upload(self, path: str, filename: str, content: bytes, content_type: str) -> Element:
        """multipart POST (images); not retried."""
        return self._call(
            "POST",
            path,
            lambda r: self.xml(r, f"POST {path}"),
            files={"image": (filename, content, content_type)},
            retry=False,
        )
