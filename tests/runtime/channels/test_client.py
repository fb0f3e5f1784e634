"""The client's edge: error mapping per status and transport failure, retries only for
idempotent calls, JSON quirks, dangerous XML refused, the key never shown."""

from __future__ import annotations

import logging

import httpx
import pytest

from engine.errors import (
    ChannelAuthFailed,
    ChannelNotFound,
    ChannelPermissionMissing,
    ChannelProtocolError,
    ChannelRejected,
    ChannelUnavailable,
)
from engine.runtime.channels.prestashop.client import PrestaShopClient
from engine.runtime.channels.prestashop.xml import build_entity, parse_xml
from engine.runtime.channels.ratelimit import RetryPolicy, TokenBucket

from .helpers import KEY, error_xml, xml_response

PS_REALM = (
    'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key '
    'as the login. No password required."'
)
HTML = b"<!DOCTYPE html><html><head><title>My Shop</title></head><body>Welcome</body></html>"


def make(handler, **kw) -> tuple[PrestaShopClient, list[float]]:
    sleeps: list[float] = []
    kw.setdefault("retry", RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=0.05))
    client = PrestaShopClient(
        "http://shop.test/", KEY, transport=httpx.MockTransport(handler), sleep=sleeps.append, **kw
    )
    return client, sleeps


def always(response: httpx.Response):
    return lambda request: response


@pytest.mark.parametrize(
    ("response", "error", "code"),
    [
        (
            xml_response(error_xml(20, "Authentification key is not active"), 401),
            ChannelAuthFailed,
            "20",
        ),
        (
            xml_response(error_xml(18, "Invalid authentication key format"), 401),
            ChannelAuthFailed,
            "18",
        ),
        (
            xml_response(
                error_xml(
                    26, 'Resource of type "orders" is not allowed with this authentication key'
                ),
                401,
            ),
            ChannelPermissionMissing,
            "26",
        ),
        (
            xml_response(error_xml(25, "Method PUT is not allowed for this key"), 405),
            ChannelPermissionMissing,
            "25",
        ),
        (
            xml_response(error_xml(132, "key not allowed on this shop"), 403),
            ChannelPermissionMissing,
            "132",
        ),
        (xml_response(error_xml(101, "Method POST is not allowed"), 405), ChannelRejected, "101"),
        (xml_response(error_xml(32, "This filter does not exist"), 400), ChannelRejected, "32"),
        (
            xml_response(error_xml(93, 'parameter "quantity" not writable'), 400),
            ChannelRejected,
            "93",
        ),
        (xml_response(error_xml(127, "XML error"), 500), ChannelRejected, "127"),
        (xml_response(error_xml(46, "Unable to save resource"), 500), ChannelUnavailable, "46"),
        (
            xml_response(error_xml(22, "The PrestaShop webservice is disabled"), 503),
            ChannelUnavailable,
            "22",
        ),
        (xml_response(b"", 404), ChannelNotFound, None),
        (xml_response(error_xml(87, "Id(s) not exists: 99"), 404), ChannelNotFound, "87"),
        (
            httpx.Response(
                502, content=b"<html>Bad gateway</html>", headers={"Content-Type": "text/html"}
            ),
            ChannelUnavailable,
            None,
        ),
        (httpx.Response(429, headers={"Retry-After": "2"}), ChannelUnavailable, None),
        (
            httpx.Response(200, content=HTML, headers={"Content-Type": "text/html"}),
            ChannelProtocolError,
            None,
        ),
        (
            httpx.Response(404, content=HTML, headers={"Content-Type": "text/html"}),
            ChannelProtocolError,
            None,
        ),
        (
            httpx.Response(301, headers={"Location": "https://shop.test/api/orders"}),
            ChannelProtocolError,
            None,
        ),
        (
            httpx.Response(
                401, content=b"Unauthorized", headers={"WWW-Authenticate": 'Basic realm="nginx"'}
            ),
            ChannelProtocolError,
            None,
        ),
        (
            httpx.Response(
                401,
                content=b"401 Unauthorized",
                headers={"WWW-Authenticate": PS_REALM},
            ),
            ChannelAuthFailed,
            None,
        ),
        (
            httpx.Response(
                200, content=b'{"orders": [', headers={"Content-Type": "application/json"}
            ),
            ChannelProtocolError,
            None,
        ),
        (
            httpx.Response(
                200,
                content=b'{"errors":[{"code":87,"message":"x"}]}',
                headers={"Content-Type": "application/json"},
            ),
            ChannelProtocolError,
            None,
        ),
    ],
)
def test_status_mapping(response, error, code) -> None:
    client, _ = make(always(response))
    with client, pytest.raises(error) as info:
        client.get("orders", params={"display": "full"})
    assert type(info.value) is error
    if code is not None:
        assert info.value.store_code == code
    assert "\n" not in str(info.value)
    assert KEY not in str(info.value)


def test_json_error_body_is_read() -> None:
    resp = httpx.Response(400, json={"errors": [{"code": 36, "message": "Bad display syntax"}]})
    client, _ = make(always(resp))
    with client, pytest.raises(ChannelRejected) as info:
        client.get("orders")
    assert info.value.store_code == "36"
    assert "Bad display syntax" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("t"),
        httpx.ReadTimeout("t"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadError("reset"),
    ],
)
def test_transport_failures_are_retryable_and_retried_for_get(exc) -> None:
    calls = []

    def handler(request):
        calls.append(request)
        raise exc

    client, sleeps = make(handler)
    with client, pytest.raises(ChannelUnavailable) as info:
        client.get("orders")
    assert info.value.retryable
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert client.stats[("GET", "orders")] == 3


def test_retry_recovers_and_honours_retry_after() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0.04"}),
        httpx.Response(503),
        httpx.Response(200, json={"orders": [{"id": 1}]}),
    ]
    client, sleeps = make(lambda r: answers.pop(0))
    with client:
        assert client.get("orders") == [{"id": 1}]
    assert len(sleeps) == 2
    assert sleeps[0] >= 0.04


def test_post_is_never_retried() -> None:
    calls = []

    def handler(request):
        calls.append(request.method)
        raise httpx.ReadTimeout("lost answer")

    client, sleeps = make(handler)
    body = build_entity("order_history", [("id_order", 5), ("id_order_state", 4)])
    with client, pytest.raises(ChannelUnavailable):
        client.post_xml("order_histories", body)
    assert calls == ["POST"]
    assert sleeps == []


def test_put_is_retried_and_delete_after_lost_answer_counts_as_done() -> None:
    state = {"deleted": False, "calls": 0}

    def handler(request):
        state["calls"] += 1
        if request.method == "DELETE":
            if not state["deleted"]:
                state["deleted"] = True
                raise httpx.ReadTimeout("committed, answer lost")
            return xml_response(error_xml(87, "Id(s) not exists: 7"), 404)
        return xml_response(b"")

    client, _ = make(handler)
    with client:
        client.delete("products", 7)
    assert state["calls"] == 2


def test_json_quirks_empty_list_plural_and_singular() -> None:
    answers = {
        "empty": httpx.Response(200, content=b"[]", headers={"Content-Type": "application/json"}),
        "plural": httpx.Response(200, json={"orders": [{"id": 5, "current_state": 4}]}),
        "single": httpx.Response(200, json={"order": {"id": 5}}),
    }
    for name, resp in answers.items():
        client, _ = make(always(resp))
        with client:
            items = client.get("orders", params={"display": "full"} if name == "plural" else None)
        assert items == (
            []
            if name == "empty"
            else [{"id": 5, "current_state": 4}]
            if name == "plural"
            else [{"id": 5}]
        )


def test_reads_ask_for_json_and_send_the_key_as_basic_user() -> None:
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"orders": []})

    client, _ = make(handler)
    with client:
        client.get("orders", params={"filter[id]": ">[5]", "sort": "[id_ASC]"})
    req = seen[0]
    assert req.headers["Output-Format"] == "JSON"
    import base64

    assert base64.b64decode(req.headers["Authorization"].split()[1]).decode() == KEY + ":"
    assert req.url.path == "/api/orders"
    assert req.url.params["filter[id]"] == ">[5]"


def test_pages_use_limit_offset_and_stop_on_short_page() -> None:
    seen = []

    def handler(request):
        seen.append(dict(request.url.params))
        offset, n = map(int, request.url.params["limit"].split(","))
        ids = list(range(1, 8))[offset : offset + n]
        return httpx.Response(200, json={"orders": [{"id": i} for i in ids]} if ids else [])

    client, _ = make(handler)
    with client:
        got = [o["id"] for o in client.iter_all("orders", page_size=3)]
    assert got == [1, 2, 3, 4, 5, 6, 7]
    assert [p["limit"] for p in seen] == ["0,3", "3,3", "6,3"]
    assert all(p["sort"] == "[id_ASC]" and p["display"] == "full" for p in seen)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<prestashop><order><id>&lol3;</id></order></prestashop>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<prestashop><order><id>&xxe;</id></order></prestashop>"""
DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE prestashop SYSTEM "http://evil.test/x.dtd">
<prestashop><order><id>1</id></order></prestashop>"""


@pytest.mark.parametrize("body", [BOMB, XXE, DTD_ONLY], ids=["bomb", "xxe", "external-dtd"])
def test_dangerous_xml_is_refused(body) -> None:
    with pytest.raises(ChannelProtocolError, match="dangerous"):
        parse_xml(body)
    client, _ = make(always(xml_response(body)))
    with client, pytest.raises(ChannelProtocolError):
        client.get("orders", 1, fmt="XML")


def test_key_never_in_errors_or_logs(caplog) -> None:
    def handler(request):
        if request.url.path.endswith("/1"):
            # a store echoing the key back in its message
            return xml_response(error_xml(20, f"Authentification key {KEY} is not active"), 401)
        raise httpx.ConnectError(f"failed for http://{KEY}@shop.test/?ws_key={KEY}")

    caplog.set_level(logging.DEBUG)
    client, _ = make(handler)
    errors = []
    with client:
        for id_ in (1, 2):
            try:
                client.get("orders", id_)
            except Exception as exc:  # noqa: BLE001 - collecting for the check
                errors.append(exc)
    assert len(errors) == 2
    for exc in errors:
        assert KEY not in str(exc)
        assert KEY not in repr(exc)
    assert caplog.records
    for record in caplog.records:
        assert KEY not in record.getMessage()
    assert KEY not in repr(client)


def test_token_bucket_spaces_calls() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    bucket = TokenBucket(2, 1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        bucket.acquire()
    # 2 at once (burst), then one every 0.5 s
    assert now[0] == pytest.approx(2.0)


def test_map_concurrent_keeps_order_and_bounds_threads() -> None:
    client, _ = make(always(httpx.Response(200, json=[])), max_concurrency=3)
    with client:
        assert client.map_concurrent(lambda x: x * 2, range(10)) == [x * 2 for x in range(10)]


PS_HEADERS = {"PSWS-Version": "8.2.1", "X-Powered-By": "PrestaShop Webservice"}


def test_a_garbled_2xx_body_is_retryable_and_retried_for_reads_and_puts() -> None:
    """A webservice answer cut in transit (its headers, a body that does not parse) is
    ChannelUnavailable: GET and PUT are tried again (the PUT is a full object), a POST is
    not (its caller reads back); a well-formed answer of another shape, HTML, or an answer
    without the webservice's headers stays a protocol error."""
    good_json = b'{"orders":[{"id":1}]}'
    good_xml = b"<prestashop><product><id>3</id></product></prestashop>"
    answers = [
        httpx.Response(
            200, content=good_json[:9], headers={**PS_HEADERS, "Content-Type": "application/json"}
        ),
        httpx.Response(
            200, content=good_json, headers={**PS_HEADERS, "Content-Type": "application/json"}
        ),
        httpx.Response(
            200,
            content=good_xml[:30] + b"<<&\x00",
            headers={**PS_HEADERS, "Content-Type": "text/xml"},
        ),
        httpx.Response(200, content=good_xml, headers={**PS_HEADERS, "Content-Type": "text/xml"}),
    ]
    client, sleeps = make(lambda r: answers.pop(0))
    with client:
        assert client.get("orders") == [{"id": 1}]
        assert client.put_xml("products", b"<prestashop/>") == [{"id": "3"}]
    assert len(sleeps) == 2

    posts = []

    def garbled_post(request: httpx.Request) -> httpx.Response:
        posts.append(request.method)
        return httpx.Response(201, content=good_xml[:20], headers=PS_HEADERS)

    client, sleeps = make(garbled_post)
    with client, pytest.raises(ChannelUnavailable, match="garbled") as info:
        client.post_xml("order_histories", b"<prestashop/>")
    assert info.value.retryable
    assert (posts, sleeps) == (["POST"], [])

    for response in (
        httpx.Response(200, content=good_json[:9], headers={"Content-Type": "application/json"}),
        httpx.Response(200, content=HTML, headers=PS_HEADERS),
        httpx.Response(200, content=b'"text"', headers=PS_HEADERS),
    ):
        client, _ = make(always(response))
        with client, pytest.raises(ChannelProtocolError):
            client.get("orders")
