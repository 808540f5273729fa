"""Hostile input, by hand, against all three apps over real HTTP (httpx, and a raw socket
where httpx cannot say it): what a fuzzer, an attacker or a broken client sends.

Every request here must be refused with a 4xx whose body is JSON with a "detail", never a
5xx, and must change nothing: the SQLite file (every table, read through a read-only
connection) and, for the fanout apps, their Redis database (every key and what it holds)
are the same before and after.

tests/test_contract.py already covers the ordinary invalid input, which is not repeated:
invalid usernames and user bodies (missing or unknown field, array, truncated JSON, empty
body, text/plain, form-encoded), invalid tweets (wrong types, 0, negative, 2**63, 2**64,
lists, unknown fields, surrogates, invalid UTF-8 in a tweet), bodies just over 4 KiB, ids
0, -1, abc, 1.5, 2**63 and 2**64 in every path, the usual bad `limit` and `before`, and
DELETE /tweets and POST /timeline.

Not here because no app can answer them: bytes that are not HTTP (raw non-ASCII in the
request line, a negative Content-Length), which uvicorn refuses with its own 400 text/plain
before any app sees the request.
"""

import http.client
import socket
import sqlite3
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import ClassVar

import httpx
import pytest
import redis

from harness import FANOUT_APPS

JSON = "application/json"
MB = 1_000_000
TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"


# --- the world the hostile requests aim at -----------------------------------------------------


class Placeholders:
    """Fills "{u}" and the like, in a str or bytes template, with the attributes named in
    PLACEHOLDERS: one request written once, aimed at whichever users a test made."""

    PLACEHOLDERS: ClassVar[tuple[str, ...]] = ()

    def fill(self, template):
        for name in self.PLACEHOLDERS:
            mark, value = "{" + name + "}", str(getattr(self, name))
            template = (
                template.replace(mark.encode(), value.encode())
                if isinstance(template, bytes)
                else template.replace(mark, value)
            )
        return template


@dataclass(frozen=True)
class World(Placeholders):
    """Real targets: users u and v (u follows v), and t, a tweet of v in u's home timeline.
    A request that a lax parser read as valid would change them or answer 2xx."""

    u: int
    v: int
    t: int

    PLACEHOLDERS: ClassVar = ("u", "v", "t")


@pytest.fixture(scope="module")
def world(app) -> World:
    u, v = app.create_user("hostile_u"), app.create_user("hostile_v")
    app.follow(u, v)
    t = app.tweet(v, "a target")["id"]
    app.tweet(u, "another")
    app.wait_for_fanout()
    assert app.timeline(u) == [t]  # and, for the fanout apps, u's timeline is now cached
    if app.module in FANOUT_APPS:
        assert redis_contents(app), "nothing in Redis: the Redis comparison would prove nothing"
    return World(u, v, t)


# --- "changes nothing" ----------------------------------------------------------------------------


def database_rows(app) -> dict[str, list]:
    with closing(sqlite3.connect(f"file:{app.database}?mode=ro", uri=True)) as db:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for (table,) in db.execute(TABLES).fetchall()
        }


def redis_contents(app) -> dict | None:
    if app.module not in FANOUT_APPS:
        return None
    client = redis.Redis.from_url(app.env["REDIS_URL"])
    readers = {
        b"string": client.get,
        b"zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        b"hash": client.hgetall,
        b"list": lambda key: client.lrange(key, 0, -1),
        b"set": client.smembers,
    }
    with closing(client):
        contents = {key: readers[client.type(key)](key) for key in sorted(client.scan_iter())}
        assert client.dbsize() == len(contents)
        return contents


def snapshot(app) -> dict:
    app.wait_for_fanout()  # what a fanout worker still owes is not a change made by the request
    return {"sqlite": database_rows(app), "redis": redis_contents(app)}


@contextmanager
def changes_nothing(app):
    before = snapshot(app)
    yield
    assert snapshot(app) == before, "a refused request changed the stores"


def assert_refused(response: httpx.Response, status: int | None = None) -> None:
    request = f"{response.request.method} {response.request.url}"
    assert 400 <= response.status_code < 500, f"{request} -> {response.status_code}: {response.text[:300]}"
    if status is not None:
        assert response.status_code == status, f"{request} -> {response.status_code}: {response.text[:300]}"
    assert response.headers.get("content-type", "").startswith(JSON), (request, response.headers)
    assert "detail" in response.json(), f"{request} -> {response.text[:300]}"


# --- requests, one at a time ----------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One request; {u}, {v} and {t} in the target and the body stand for the World's."""

    method: str
    target: str  # path and query, percent-encoded exactly as they go on the wire
    body: bytes | None = None
    content_type: str | None = JSON  # None: no Content-Type header at all
    status: int = 422


def case(name: str, *args, **kwargs):
    return pytest.param(Hostile(*args, **kwargs), id=name)


def tweet_body(raw: bytes, name: str, content_type: str | None = JSON, status: int = 422):
    return case(f"tweet-{name}", "POST", "/tweets", raw, content_type, status)


def user_body(raw: bytes, name: str, content_type: str | None = JSON, status: int = 422):
    return case(f"user-{name}", "POST", "/users", raw, content_type, status)


def on_both_posts(raw_tweet: bytes, raw_user: bytes, name: str, content_type: str | None = JSON):
    return [tweet_body(raw_tweet, name, content_type), user_body(raw_user, name, content_type)]


TWEET = b'{"user_id":{u},"text":"hi"}'
USER = b'{"username":"lax_parser"}'  # free: if a request with it got through, a user appears

# Within 4 KiB and deeper than Python's recursion limit (~1000), or close to it.
DEEP_NESTING = [
    *on_both_posts(b"[" * 2000 + b"]" * 2000, b"[" * 2000 + b"]" * 2000, "2000-arrays"),
    *on_both_posts(b"[" * 4000, b"[" * 4000, "4000-unclosed-arrays"),
    *on_both_posts(b'{"a":' * 680 + b"1" + b"}" * 680, b'{"":' * 800 + b"0" + b"}" * 800, "700-objects"),
    *on_both_posts(
        b'{"user_id":{u},"text":"hi","x":' + b"[{" * 1000,
        b'{"username":' + b'[{"":' * 600,
        "deep-mixed-unclosed",
    ),
    *on_both_posts(
        b'{"user_id":{u},"text":"hi","x":' + b"[" * 1900 + b"]" * 1900 + b"}",
        b'{"username":"lax_parser","x":' + b"[" * 1900 + b"]" * 1900 + b"}",
        "deep-unknown-field",
    ),
    *on_both_posts(
        b'{"user_id":{u},"text":' + b"[" * 500 + b"]" * 500 + b"}",
        b'{"username":' + b"[" * 500 + b"]" * 500 + b"}",
        "500-arrays-where-a-string-belongs",
    ),
]

# test_contract.py has invalid UTF-8 in a tweet's text; here: in a user, in keys, other encodings.
NOT_UTF8 = [
    user_body(b'{"username":"lax\xff"}', "invalid-utf-8"),
    user_body(b'{"username":"lax_parser\xc3"}', "truncated-multibyte"),
    user_body(b'{"username":"\xed\xa0\x80"}', "utf-8-encoded-surrogate"),
    user_body(b'{"username":"\\ud800"}', "escaped-lone-surrogate"),
    user_body(b'\xef\xbb\xbf{"username":"lax_parser"}', "utf-8-bom"),
    user_body('{"username":"lax_parser"}'.encode("utf-16"), "utf-16"),
    user_body('{"username":"lax_parser"}'.encode("utf-32-le"), "utf-32"),
    user_body(b'{"user\xffname":"lax_parser"}', "invalid-utf-8-in-key"),
    tweet_body(b'{"user_id":{u},"te\x80xt":"hi"}', "invalid-utf-8-in-key"),
    tweet_body(b'{"user_id":{u},"text":"hi","x":"\xfe"}', "invalid-utf-8-in-unknown-field"),
    tweet_body(b'\xef\xbb\xbf{"user_id":{u},"text":"hi"}', "utf-8-bom"),
    tweet_body('{"user_id":{u},"text":"hi"}'.encode("utf-16-le"), "utf-16"),
]

BIG_INTEGERS_IN_BODIES = [
    tweet_body(b'{"user_id":%d,"text":"hi"}' % value, name)
    for name, value in (
        ("10**30", 10**30),
        ("-10**30", -(10**30)),
        ("-2**63", -(2**63)),
        ("-2**64", -(2**64)),
        ("2**64*10", 2**64 * 10),
    )
] + [
    tweet_body(b'{"user_id":' + b"9" * 4000 + b',"text":"hi"}', "4000-digits"),
    tweet_body(b'{"user_id":1' + b"0" * 400 + b',"text":"hi"}', "10**400"),
    tweet_body(b'{"user_id":1e400,"text":"hi"}', "1e400-overflows-to-inf"),
    tweet_body(b'{"user_id":{u}.0,"text":"hi"}', "u.0"),
    tweet_body(b'{"user_id":{u}e0,"text":"hi"}', "u-e0"),
    tweet_body(b'{"user_id":-0,"text":"hi"}', "minus-0"),
    user_body(b'{"username":1' + b"0" * 30 + b"}", "10**30-as-username"),
]

# Ids, limits and cursors that only a lax parser reads as the integer next to them.
NUMBERS_IN_PATHS = [
    case(f"{method}-{where}-{name}", method, target.replace("X", spelled), status=422)
    for name, spelled in (
        ("10**30", str(10**30)),
        ("-10**30", str(-(10**30))),
        ("-2**63", str(-(2**63))),
        ("4000-digits", "9" * 4000),
        ("plus", "%2B{u}"),
        ("leading-space", "%20{u}"),
        ("trailing-space", "{u}%20"),
        ("tab", "{u}%09"),
        ("underscore", "0_{u}"),
        ("dot-zero", "{u}.0"),
        ("exponent", "{u}e0"),
        ("hex", "0x{u}"),
        ("fullwidth-digits", "%EF%BC%91"),
        ("arabic-indic-digit", "%D9%A1"),
        ("nul", "{u}%00"),
        ("invalid-utf-8", "%FF"),
        ("overlong-utf-8", "%C0%B1"),
        ("true", "true"),
        ("null", "null"),
        ("nan", "NaN"),
        ("infinity", "Infinity"),
        ("json-list", "%5B{u}%5D"),
    )
    for method, where, target in (
        ("GET", "profile", "/users/X"),
        ("GET", "timeline", "/timeline/X"),
        ("PUT", "follower", "/users/X/following/{v}"),
        ("DELETE", "followee", "/users/{u}/following/X"),
    )
]
NUMBERS_IN_QUERIES = [
    case(f"GET-{endpoint}-{parameter}-{name}", "GET", f"{path}?{parameter}={spelled}")
    for endpoint, path in (("timeline", "/timeline/{u}"), ("own", "/users/{v}/tweets"))
    for parameter, spelled_values in (
        (
            "limit",
            (
                ("10**30", str(10**30)),
                ("2**64", str(2**64)),
                ("-2**63", str(-(2**63))),
                ("plus", "%2B5"),
                ("space", "%205"),
                ("underscore", "1_0"),
                ("dot-zero", "5.0"),
                ("exponent", "1e1"),
                ("true", "true"),
                ("false", "false"),
                ("null", "null"),
                ("quoted", "%225%22"),
                ("empty", ""),
                ("fullwidth", "%EF%BC%95"),
                ("invalid-utf-8", "%FF"),
                ("nan", "nan"),
            ),
        ),
        (
            "before",
            (
                ("10**30", str(10**30)),
                ("-10**30", str(-(10**30))),
                ("2**64+t", str(2**64) + "{t}"),
                ("plus", "%2B{t}"),
                ("space", "{t}%20"),
                ("underscore", "0_{t}"),
                ("dot-zero", "{t}.0"),
                ("exponent", "{t}e0"),
                ("true", "true"),
                ("empty", ""),
                ("infinity", "inf"),
                ("invalid-utf-8", "%C3"),
            ),
        ),
    )
    for name, spelled in spelled_values
]

WRONG_TYPES_IN_BODIES = [
    tweet_body(b'{"user_id":false,"text":"hi"}', "user_id-false"),
    tweet_body(b'{"user_id":"{u}.0","text":"hi"}', "user_id-numeric-string"),
    tweet_body(b'{"user_id":{"$gt":0},"text":"hi"}', "user_id-query-operator"),
    tweet_body(b'{"user_id":{u},"text":true}', "text-true"),
    tweet_body(b'{"user_id":{u},"text":1.5}', "text-float"),
    tweet_body(b'{"user_id":{u},"text":{"a":"hi"}}', "text-object"),
    user_body(b'{"username":false}', "username-false"),
    user_body(b'{"username":0}', "username-0"),
    user_body(b'{"username":{"$ne":null}}', "username-query-operator"),
    user_body(b'{"username":1.5}', "username-float"),
]

MULTIPART_TWEET = (
    b'--B\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n{u}\r\n'
    b'--B\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--B--\r\n'
)
MULTIPART_USER = b'--B\r\nContent-Disposition: form-data; name="username"\r\n\r\nlax_parser\r\n--B--\r\n'
# The body is what the endpoint wants; only its declared type is wrong (or missing).
WRONG_CONTENT_TYPES = [
    *on_both_posts(TWEET, USER, "no-content-type", content_type=None),
    *on_both_posts(MULTIPART_TWEET, MULTIPART_USER, "multipart", "multipart/form-data; boundary=B"),
    tweet_body(b"user_id={u}&text=hi", "form-encoded", "application/x-www-form-urlencoded"),
    *on_both_posts(TWEET, USER, "text-json", "text/json"),
    *on_both_posts(TWEET, USER, "application-xml", "application/xml"),
    *on_both_posts(TWEET, USER, "octet-stream", "application/octet-stream"),
    *on_both_posts(TWEET, USER, "json-seq", "application/json-seq"),
    *on_both_posts(TWEET, USER, "empty-content-type", ""),
    *on_both_posts(TWEET, USER, "garbage-content-type", ";;;==="),
]

SHAPES = [
    *on_both_posts(
        b'{"user_id":{u},"text":"hi","__proto__":{"admin":true}}',
        b'{"username":"lax_parser","__proto__":{"admin":true}}',
        "__proto__-field",
    ),
    *on_both_posts(b'{"User_Id":{u},"text":"hi"}', b'{"Username":"lax_parser"}', "field-in-other-case"),
    *on_both_posts(b'{"user_id ":{u},"text":"hi"}', b'{"username ":"lax_parser"}', "field-with-space"),
    tweet_body(b"", "empty-body"),  # (users: test_contract.py)
    *on_both_posts(b"   \r\n\t ", b"   \r\n\t ", "whitespace-body"),
    *on_both_posts(b"null", b"null", "null"),
    *on_both_posts(b"true", b"true", "true"),
    *on_both_posts(b"0", b"0", "number"),
    user_body(b'"lax_parser"', "string"),  # (tweets: test_contract.py)
    *on_both_posts(b"[]", b"[]", "empty-array"),
    *on_both_posts(TWEET + TWEET, USER + USER, "two-documents"),
    *on_both_posts(b"/*x*/" + TWEET, b"/*x*/" + USER, "comment"),
    *on_both_posts(b"{'user_id':{u},'text':'hi'}", b"{'username':'lax_parser'}", "single-quotes"),
    *on_both_posts(b'{"user_id":{u},"text":"hi",}', b'{"username":"lax_parser",}', "trailing-comma"),
    *on_both_posts(b'{"user_id":{u},"text":"hi"}\x00', b'{"username":"lax_parser"}\x00', "trailing-nul"),
]

# Parsers disagree on which copy wins; whichever the app picked, a proxy may have seen the other.
DUPLICATE_KEYS = [
    tweet_body(b'{"user_id":{v},"user_id":{u},"text":"hi"}', "user_id-twice"),
    tweet_body(b'{"user_id":{u},"text":"hi","text":"ho"}', "text-twice"),
    tweet_body(b'{"user_id":{u},"user_id":{u},"text":"hi"}', "same-user_id-twice"),
    user_body(b'{"username":"lax_a","username":"lax_b"}', "username-twice"),
    user_body(b'{"username":"lax_parser","username":"lax_parser"}', "same-username-twice"),
    tweet_body(b'{"user_id":{u},"text":"hi","x":{"a":1,"a":2}}', "nested-duplicate"),
]

NOT_NUMBERS = [
    tweet_body(b'{"user_id":%s,"text":"hi"}' % literal, f"user_id-{literal.decode()}")
    for literal in (b"NaN", b"Infinity", b"-Infinity")
] + [
    tweet_body(b'{"user_id":{u},"text":NaN}', "text-NaN"),
    tweet_body(b'{"user_id":{u},"text":"hi","x":Infinity}', "Infinity-in-unknown-field"),
    user_body(b'{"username":NaN}', "username-NaN"),
    user_body(b'{"username":"lax_parser","x":-Infinity}', "-Infinity-in-unknown-field"),
]

METHODS = [
    case(f"{method}-{name}", method, target, content_type=None, status=405)
    for name, target, methods in (
        ("tweets", "/tweets", ("GET", "PUT", "PATCH", "OPTIONS", "TRACE")),
        ("users", "/users", ("GET", "PUT", "DELETE", "PATCH")),
        ("profile", "/users/{u}", ("POST", "PUT", "DELETE", "PATCH")),
        ("own-tweets", "/users/{u}/tweets", ("POST", "DELETE")),
        ("following", "/users/{u}/following/{v}", ("GET", "POST", "PATCH", "OPTIONS")),
        ("timeline", "/timeline/{u}", ("PUT", "DELETE", "TRACE")),
        ("health", "/health", ("POST", "DELETE")),
        ("stats", "/stats", ("PUT", "PATCH")),
    )
    for method in methods
]
ALLOWED = {
    "/tweets": "POST",
    "/users": "POST",
    "/users/{u}": "GET",
    "/users/{u}/tweets": "GET",
    "/users/{u}/following/{v}": "DELETE, PUT",
    "/timeline/{u}": "GET",
    "/health": "GET",
    "/stats": "GET",
}

ODD_PATHS = [
    case("encoded-slash-in-id", "GET", "/users/{u}%2F..%2F{v}", content_type=None, status=None),
    case("dot-segments", "PUT", "/users/{u}/following/%2E%2E/{v}", content_type=None, status=None),
    case("encoded-slash-in-followee", "PUT", "/users/{u}/following/{v}%2F1", content_type=None, status=None),
]

ALL = (
    DEEP_NESTING
    + NOT_UTF8
    + BIG_INTEGERS_IN_BODIES
    + NUMBERS_IN_PATHS
    + NUMBERS_IN_QUERIES
    + WRONG_TYPES_IN_BODIES
    + WRONG_CONTENT_TYPES
    + SHAPES
    + DUPLICATE_KEYS
    + NOT_NUMBERS
    + METHODS
    + ODD_PATHS
)


def send(app, world: World, hostile: Hostile) -> httpx.Response:
    headers = {} if hostile.content_type is None else {"content-type": hostile.content_type}
    content = None if hostile.body is None else world.fill(hostile.body)
    return app.http.request(hostile.method, world.fill(hostile.target), content=content, headers=headers)


@pytest.mark.parametrize("hostile", ALL)
def test_hostile_request_is_refused_with_json_and_changes_nothing(app, world, hostile):
    with changes_nothing(app):
        response = send(app, world, hostile)
    assert_refused(response, hostile.status)
    if response.status_code == 405:  # every method the resource has, not one route's (RFC 9110)
        assert response.headers["allow"] == ALLOWED[hostile.target], response.headers


def test_the_bodies_here_are_valid_once_the_hostile_part_is_gone(app, world):
    """So that the refusals above are about the hostile part, not about a wrong user or path."""
    with changes_nothing(app):  # (the follow exists and the name is taken: both are no-ops)
        assert app.http.put(world.fill("/users/{u}/following/{v}")).status_code == 204
        assert app.http.post("/users", json={"username": "hostile_u"}).status_code == 409
    assert app.http.get(world.fill("/timeline/{u}?limit=5&before={t}")).status_code == 200
    response = app.http.post("/tweets", content=world.fill(TWEET), headers={"content-type": JSON})
    assert response.status_code == 201, response.text


# --- bodies far over the limit ----------------------------------------------------------------------


def trickle(prefix: bytes, size: int, sent: list[int], chunk: int = 64 * 1024):
    """`size` bytes starting with `prefix`, a chunk per millisecond, counting what was taken:
    a server that reads a body it will refuse shows up as all of it sent."""
    filler = b"a" * chunk
    while sent[0] < size:
        piece = prefix if sent[0] == 0 else filler[: size - sent[0]]
        sent[0] += len(piece)
        yield piece
        time.sleep(0.001)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("size", [1 * MB, 50 * MB], ids=["1MB", "50MB"])
@pytest.mark.parametrize(
    "method,target,prefix",
    [
        ("POST", "/tweets", b'{"user_id":{u},"text":"'),
        ("POST", "/users", b'{"username":"'),
        ("PUT", "/users/{v}/following/{u}", b'{"x":"'),  # the limit holds for every method with a body
    ],
    ids=["tweet", "user", "follow"],
)
def test_huge_body_is_413_before_it_is_all_sent(app, world, method, target, prefix, size, framing):
    sent = [0]
    headers = {"content-type": JSON}
    if framing == "content-length":
        headers["content-length"] = str(size)  # httpx then streams the generator unchunked
    with changes_nothing(app):
        started = time.monotonic()
        response = app.http.request(
            method, world.fill(target), headers=headers, content=trickle(world.fill(prefix), size, sent)
        )
        elapsed = time.monotonic() - started
    assert ("transfer-encoding" in response.request.headers) == (framing == "chunked")
    assert_refused(response, 413)
    assert sent[0] < min(size, 1 * MB) // 2, f"{sent[0]} of {size} bytes were sent before the 413"
    assert elapsed < 5


def raw_request(port: int, head: bytes, body_start: bytes) -> tuple[int, bytes, str]:
    """Sends a head and the start of a body, then nothing more, and reads the answer:
    (status, body, content-type). An app that waits for the rest never answers (timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body_start)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read(), response.getheader("content-type", "")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_413_arrives_while_most_of_the_body_is_still_to_come(app, world, framing):
    start = world.fill(b'{"user_id":{u},"text":"') + b"a" * 8192
    if framing == "content-length":
        head, body_start = f"Content-Length: {50 * MB}\r\n", start
    else:
        head, body_start = "Transfer-Encoding: chunked\r\n", b"%x\r\n%s\r\n" % (len(start), start)
    head = f"POST /tweets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {JSON}\r\n{head}\r\n".encode()
    with changes_nothing(app):
        status, body, content_type = raw_request(app.port, head, body_start)
    assert status == 413 and content_type.startswith(JSON) and b'"detail"' in body, (status, body)
