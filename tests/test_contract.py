"""Every endpoint and every status of docs/CONTRACT.md, over real HTTP, for all three apps.

The `app` fixture is one running app per approach, shared by this whole module, so every
test makes its own users (unique names) and never assumes an absolute id. Fanout apps
deliver after they answer: timelines are only compared once `fanout_backlog` is 0.

Two rules hold for every response in this module and are checked on each one by
`every_response_keeps_the_error_rules`: no 5xx, and every error is JSON with a "detail".
"""

import json
import re
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from harness import FANOUT_APPS
from timelines.designs import by_module

MAX_ID = 2**63 - 1  # the largest valid id: well-formed, and nobody has it
UNKNOWN_ID = MAX_ID
BODY_LIMIT = 4096
JSON = {"content-type": "application/json"}

# Path ids and `before` values that are not positive integers below 2^63.
BAD_IDS = [
    pytest.param(value, id=f"id={value}") for value in ("0", "-1", "abc", "1.5", str(2**63), str(2**64))
]
BAD_LIMITS = [pytest.param(value, id=f"limit={value}") for value in ("0", "201", "-1", "x", "1.5")]
BAD_BEFORES = [
    pytest.param(value, id=f"before={value}") for value in ("0", "-1", str(2**63), str(2**64), "x", "1.5")
]


# --- helpers -------------------------------------------------------------------------------


def unique_name(prefix: str = "u") -> str:
    """A fresh valid username: [A-Za-z0-9_], at most 32 characters."""
    return f"{prefix}_{uuid.uuid4().hex}"[:32]


def new_user(app, prefix: str = "u") -> int:
    return app.create_user(unique_name(prefix))


def new_users(app, count: int) -> list[int]:
    return [new_user(app) for _ in range(count)]


def post_tweet(app, user_id: int, text: str = "hello") -> dict:
    return app.tweet(user_id, text)


def profile(app, user_id: int) -> dict:
    response = app.http.get(f"/users/{user_id}")
    assert response.status_code == 200, response.text
    return response.json()


def counts(app, user_id: int) -> tuple[int, int, int]:
    p = profile(app, user_id)
    return p["followers"], p["following"], p["tweets"]


def page(app, path: str, **params) -> dict:
    response = app.http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def home(app, user_id: int, **params) -> list[dict]:
    return page(app, f"/timeline/{user_id}", **params)["tweets"]


def own(app, user_id: int, **params) -> list[dict]:
    return page(app, f"/users/{user_id}/tweets", **params)["tweets"]


def ids(tweets: list[dict]) -> list[int]:
    return [tweet["id"] for tweet in tweets]


def settled(app) -> None:
    """Fanout apps owe deliveries after they answer; wait until nothing is owed."""
    app.wait_for_fanout()


def expect_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"(expected {status}): {response.text[:300]}"
    )
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert "detail" in response.json(), response.text


def state_of(app, *user_ids: int) -> dict:
    """Everything a client can see about these users, once fanout has caught up."""
    settled(app)
    return {
        user_id: {
            "profile": profile(app, user_id),
            "own": own(app, user_id, limit=200),
            "home": home(app, user_id, limit=200),
        }
        for user_id in user_ids
    }


@contextmanager
def nothing_changes(app, *user_ids: int):
    """A response other than 2xx means the call changed nothing (docs/CONTRACT.md)."""
    before = state_of(app, *user_ids)
    yield
    assert state_of(app, *user_ids) == before, "a refused call changed something"


def sized_tweet(user_id: int, size: int, text: str = "padded") -> bytes:
    """A valid tweet body of exactly `size` bytes, padded with JSON whitespace."""
    body = json.dumps({"user_id": user_id, "text": text}).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"}"


def sized_with_unknown_field(user_id: int, size: int) -> bytes:
    """A tweet body of exactly `size` bytes, padded in an unknown field (so: 422, not 201)."""
    body = b'{"user_id":%d,"text":"padded","pad":""}' % user_id
    assert len(body) <= size
    return body[:-2] + b"x" * (size - len(body)) + b'"}'


def chunked(body: bytes, chunk: int = 1000):
    """Content as a generator: httpx sends it chunked, without a Content-Length."""

    def chunks():
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    return chunks()


def send_body(app, path: str, body: bytes, how: str) -> httpx.Response:
    content = body if how == "sized" else chunked(body)
    response = app.http.post(path, content=content, headers=JSON)
    if how == "chunked":
        assert "content-length" not in {k.lower() for k in response.request.headers}
    return response


def parse_created_at(value: str) -> datetime:
    assert value.endswith(("Z", "+00:00")), f"created_at not marked UTC: {value!r}"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0)
    return moment


# --- the rules every response keeps ----------------------------------------------------------


@pytest.fixture(autouse=True)
def every_response_keeps_the_error_rules(app):
    """No response is ever a 5xx (the stores are up here); every error is JSON with "detail"."""

    def check(response: httpx.Response) -> None:
        request = f"{response.request.method} {response.request.url}"
        if response.status_code >= 500:
            response.read()
            raise AssertionError(f"{request} -> {response.status_code}: {response.text[:500]}")
        if response.status_code >= 400:
            response.read()
            content_type = response.headers.get("content-type", "")
            assert content_type.startswith("application/json"), (
                f"{request} -> {response.status_code} with content-type {content_type!r}"
            )
            try:
                detail_present = "detail" in response.json()
            except ValueError:
                detail_present = False
            assert detail_present, f"{request} -> {response.status_code}: {response.text[:500]}"

    hooks = app.http.event_hooks
    app.http.event_hooks = {**hooks, "response": [*hooks.get("response", []), check]}
    yield
    app.http.event_hooks = hooks


# --- POST /users ----------------------------------------------------------------------------


def test_create_user_answers_201_with_id_and_username(app):
    name = unique_name("Mixed_Case")
    response = app.http.post("/users", json={"username": name})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"id", "username"}
    assert body["username"] == name
    assert type(body["id"]) is int and 0 < body["id"] <= MAX_ID


def test_usernames_of_1_and_32_characters_are_valid(app):
    longest = unique_name("x" * 8).ljust(32, "_")
    assert len(longest) == 32
    assert profile(app, app.create_user(longest))["username"] == longest
    # Each app in this module has a database of its own, and no other test uses one character.
    assert profile(app, app.create_user("Q"))["username"] == "Q"


def test_user_ids_are_distinct(app):
    assert len(set(new_users(app, 5))) == 5


@pytest.mark.parametrize(
    "spell", [str, str.lower, str.upper, str.swapcase], ids=["same", "lower", "upper", "swapcase"]
)
def test_taken_username_is_409_regardless_of_case(app, spell):
    name = unique_name("Alice")
    alice = app.create_user(name)
    with nothing_changes(app, alice):
        expect_error(app.http.post("/users", json={"username": spell(name)}), 409)
    assert profile(app, alice)["username"] == name


INVALID_USERNAMES = [
    pytest.param("", id="empty"),
    pytest.param("a" * 33, id="33-chars"),
    pytest.param("has space", id="space"),
    pytest.param("has-hyphen", id="hyphen"),
    pytest.param("émile", id="accented-letter"),
    pytest.param("名前", id="cjk"),
    pytest.param("\u212aelvin", id="kelvin-sign"),  # folds to ASCII "k" under some casings
    pytest.param("abc\n", id="trailing-newline"),
    pytest.param("\nabc", id="leading-newline"),
    pytest.param("abc\x00", id="nul"),
    pytest.param(123, id="integer"),
    pytest.param(None, id="null"),
    pytest.param(["abc"], id="list"),
    pytest.param(True, id="bool"),
]


@pytest.mark.parametrize("username", INVALID_USERNAMES)
def test_invalid_username_is_422(app, username):
    expect_error(app.http.post("/users", json={"username": username}), 422)


# Bodies that hold a valid, fresh name and are still invalid: afterwards the name must be free.
INVALID_USER_BODIES = [
    pytest.param(lambda name: {"json": {}}, id="missing-field"),
    pytest.param(lambda name: {"json": {"username": name, "admin": True}}, id="unknown-field"),
    pytest.param(lambda name: {"json": [{"username": name}]}, id="json-array"),
    pytest.param(
        lambda name: {"content": b'{"username": "%s"' % name.encode(), "headers": JSON}, id="not-json"
    ),
    pytest.param(lambda name: {"content": b"", "headers": JSON}, id="empty-body"),
    pytest.param(
        lambda name: {
            "content": json.dumps({"username": name}).encode(),
            "headers": {"content-type": "text/plain"},
        },
        id="text-plain",
    ),
    pytest.param(
        lambda name: {
            "content": b"username=%s" % name.encode(),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        id="form-encoded",
    ),
]


@pytest.mark.parametrize("request_for", INVALID_USER_BODIES)
def test_invalid_user_body_is_422_and_creates_nobody(app, request_for):
    name = unique_name()
    expect_error(app.http.post("/users", **request_for(name)), 422)
    app.create_user(name)  # still free: the refused call created nobody


@pytest.mark.parametrize("how", ["sized", "chunked"])
def test_user_body_over_4_kib_is_413_and_creates_nobody(app, how):
    name = unique_name()
    body = json.dumps({"username": name}).encode()
    body = body[:-1] + b" " * (BODY_LIMIT + 1 - len(body)) + b"}"
    expect_error(send_body(app, "/users", body, how), 413)
    app.create_user(name)


# --- GET /users/{id} ------------------------------------------------------------------------


def test_profile_shows_username_and_zero_counts(app):
    name = unique_name()
    user = app.create_user(name)
    assert profile(app, user) == {"id": user, "username": name, "followers": 0, "following": 0, "tweets": 0}


def test_profile_counts_move_with_follows_unfollows_and_tweets(app):
    a, b, c = new_users(app, 3)
    app.follow(a, b)
    app.follow(c, b)
    app.follow(b, a)
    for _ in range(3):
        post_tweet(app, b)
    assert counts(app, a) == (1, 1, 0)
    assert counts(app, b) == (2, 1, 3)
    assert counts(app, c) == (0, 1, 0)
    app.unfollow(c, b)
    app.unfollow(b, a)
    post_tweet(app, a)
    assert counts(app, a) == (0, 1, 1)
    assert counts(app, b) == (1, 0, 3)
    assert counts(app, c) == (0, 0, 0)


def test_profile_of_unknown_user_is_404(app):
    expect_error(app.http.get(f"/users/{UNKNOWN_ID}"), 404)


def test_largest_id_is_valid_and_one_more_is_422(app):
    expect_error(app.http.get(f"/users/{2**63 - 1}"), 404)
    expect_error(app.http.get(f"/users/{2**63}"), 422)


# Every path that takes ids, with BAD standing for the id under test.
ID_PATHS = [
    pytest.param("GET", "/users/BAD", id="GET-profile"),
    pytest.param("GET", "/users/BAD/tweets", id="GET-own-tweets"),
    pytest.param("GET", "/timeline/BAD", id="GET-timeline"),
    pytest.param("PUT", "/users/BAD/following/USER", id="PUT-follower"),
    pytest.param("PUT", "/users/USER/following/BAD", id="PUT-followee"),
    pytest.param("DELETE", "/users/BAD/following/USER", id="DELETE-follower"),
    pytest.param("DELETE", "/users/USER/following/BAD", id="DELETE-followee"),
]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("method,path", ID_PATHS)
def test_id_that_is_not_a_positive_int_below_2_63_is_422(app, method, path, bad_id):
    user = new_user(app)
    with nothing_changes(app, user):
        response = app.http.request(method, path.replace("BAD", bad_id).replace("USER", str(user)))
        expect_error(response, 422)


# --- PUT / DELETE /users/{a}/following/{b} --------------------------------------------------


def test_follow_is_204_with_empty_body(app):
    a, b = new_users(app, 2)
    response = app.http.put(f"/users/{a}/following/{b}")
    assert response.status_code == 204 and response.content == b""
    assert counts(app, a)[:2] == (0, 1)
    assert counts(app, b)[:2] == (1, 0)


def test_follow_twice_is_204_and_counts_once(app):
    a, b = new_users(app, 2)
    post_tweet(app, b, "once")
    app.follow(a, b)
    app.follow(a, b)
    assert counts(app, a)[:2] == (0, 1)
    assert counts(app, b)[:2] == (1, 0)
    settled(app)
    assert [t["text"] for t in home(app, a)] == ["once"]


def test_unfollow_is_204_and_twice_is_still_204(app):
    a, b = new_users(app, 2)
    app.follow(a, b)
    for _ in range(2):
        response = app.http.delete(f"/users/{a}/following/{b}")
        assert response.status_code == 204 and response.content == b""
        assert counts(app, a)[:2] == (0, 0)
        assert counts(app, b)[:2] == (0, 0)


def test_unfollow_of_a_pair_that_never_existed_is_204_and_changes_nothing(app):
    a, b, c = new_users(app, 3)
    app.follow(c, b)
    with nothing_changes(app, a, b, c):
        assert app.http.delete(f"/users/{a}/following/{b}").status_code == 204


def test_follow_is_one_way(app):
    a, b = new_users(app, 2)
    app.follow(a, b)
    app.unfollow(b, a)  # b never followed a: changes nothing
    assert counts(app, a)[:2] == (0, 1)
    assert counts(app, b)[:2] == (1, 0)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("missing", ["follower", "followee", "both"])
def test_follow_or_unfollow_with_a_missing_user_is_404(app, method, missing):
    user, followed = new_users(app, 2)
    app.follow(user, followed)  # so a wrongly accepted DELETE would show in the counts
    follower = UNKNOWN_ID if missing in ("follower", "both") else user
    followee = UNKNOWN_ID - 1 if missing in ("followee", "both") else user  # not a self-follow
    with nothing_changes(app, user, followed):
        expect_error(app.http.request(method, f"/users/{follower}/following/{followee}"), 404)


def test_self_follow_is_422_and_changes_nothing(app):
    user = new_user(app)
    post_tweet(app, user, "mine")
    with nothing_changes(app, user):
        expect_error(app.http.put(f"/users/{user}/following/{user}"), 422)


# --- POST /tweets ---------------------------------------------------------------------------


def test_tweet_is_201_with_id_user_id_text_created_at(app):
    user = new_user(app)
    response = app.http.post("/tweets", json={"user_id": user, "text": "hello, world"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    tweet = response.json()
    assert set(tweet) == {"id", "user_id", "text", "created_at"}
    assert type(tweet["id"]) is int and 0 < tweet["id"] <= MAX_ID
    assert tweet["user_id"] == user and tweet["text"] == "hello, world"
    assert type(tweet["created_at"]) is str


def test_created_at_is_iso_8601_utc_and_now(app):
    tweet = post_tweet(app, new_user(app))
    moment = parse_created_at(tweet["created_at"])
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)


def test_tweet_ids_and_created_at_grow(app):
    a, b = new_users(app, 2)
    tweets = [post_tweet(app, author, f"n{n}") for n, author in enumerate([a, b, a, b, a])]
    tweet_ids = ids(tweets)
    assert tweet_ids == sorted(tweet_ids) and len(set(tweet_ids)) == len(tweet_ids)
    moments = [parse_created_at(t["created_at"]) for t in tweets]
    assert moments == sorted(moments)


TEXTS = [
    pytest.param("a", id="1-char"),
    pytest.param("a" * 280, id="280-ascii"),
    pytest.param("😀" * 280, id="280-emoji-outside-bmp"),
    pytest.param("\U0001f468\u200d\U0001f469\u200d\U0001f467" * 56, id="280-code-points-of-zwj-families"),
    pytest.param("e\u0301" * 140, id="280-code-points-combining"),
    pytest.param("é" * 280, id="280-two-byte-letters"),
    pytest.param(" ", id="one-space"),
    pytest.param('quote " backslash \\ slash / newline \n tab \t', id="json-escapes"),
    pytest.param("nul \x00 inside", id="nul"),
    pytest.param("<script>alert(1)</script> & ' %s {0}", id="markup-and-formats"),
    pytest.param("שלום עולם \u202e", id="rtl"),
    pytest.param("\ufeffbom and \uffff noncharacter", id="bom-and-noncharacter"),
]


@pytest.mark.parametrize("text", TEXTS)
def test_valid_text_is_accepted_and_returned_unchanged_everywhere(app, text):
    author, reader = new_users(app, 2)
    app.follow(reader, author)
    tweet = post_tweet(app, author, text)
    assert tweet["text"] == text
    settled(app)
    assert own(app, author) == [tweet]
    assert home(app, reader) == [tweet]
    assert counts(app, author)[2] == 1


# Invalid tweet bodies for an existing author U; each must be 422 and change nothing.
INVALID_TWEETS = [
    pytest.param(lambda u: {"user_id": u, "text": ""}, id="empty-text"),
    pytest.param(lambda u: {"user_id": u, "text": "a" * 281}, id="281-ascii"),
    pytest.param(lambda u: {"user_id": u, "text": "😀" * 281}, id="281-emoji"),
    pytest.param(lambda u: {"user_id": u, "text": "e\u0301" * 140 + "e"}, id="281-code-points-combining"),
    pytest.param(lambda u: {"user_id": str(u), "text": "hi"}, id="user_id-string"),
    pytest.param(lambda u: {"user_id": float(u), "text": "hi"}, id="user_id-float"),
    pytest.param(lambda u: {"user_id": True, "text": "hi"}, id="user_id-bool"),
    pytest.param(lambda u: {"user_id": None, "text": "hi"}, id="user_id-null"),
    pytest.param(lambda u: {"user_id": 0, "text": "hi"}, id="user_id-0"),
    pytest.param(lambda u: {"user_id": -u, "text": "hi"}, id="user_id-negative"),
    pytest.param(lambda u: {"user_id": 2**63, "text": "hi"}, id="user_id-2**63"),
    pytest.param(lambda u: {"user_id": 2**64 + u, "text": "hi"}, id="user_id-2**64+u"),
    pytest.param(lambda u: {"user_id": [u], "text": "hi"}, id="user_id-list"),
    pytest.param(lambda u: {"user_id": u, "text": 123}, id="text-integer"),
    pytest.param(lambda u: {"user_id": u, "text": None}, id="text-null"),
    pytest.param(lambda u: {"user_id": u, "text": ["hi"]}, id="text-list"),
    pytest.param(lambda u: {"user_id": u}, id="missing-text"),
    pytest.param(lambda u: {"text": "hi"}, id="missing-user_id"),
    pytest.param(lambda u: {"user_id": u, "text": "hi", "reply_to": 1}, id="unknown-field"),
    pytest.param(lambda u: [{"user_id": u, "text": "hi"}], id="json-array"),
    pytest.param(lambda u: "hi", id="json-string"),
]


@pytest.mark.parametrize("body_for", INVALID_TWEETS)
def test_invalid_tweet_is_422_and_changes_nothing(app, body_for):
    author, reader = new_users(app, 2)
    app.follow(reader, author)
    post_tweet(app, author, "before")
    with nothing_changes(app, author, reader):
        expect_error(app.http.post("/tweets", json=body_for(author)), 422)


# Raw bodies: what JSON libraries will not produce for us.
RAW_INVALID_TWEETS = [
    pytest.param(b'{"user_id": %d, "text": "\\ud800"}', JSON, id="unpaired-high-surrogate"),
    pytest.param(b'{"user_id": %d, "text": "a\\udc00b"}', JSON, id="unpaired-low-surrogate"),
    pytest.param(b'{"user_id": %d, "text": "\\udc00\\ud800"}', JSON, id="reversed-surrogate-pair"),
    pytest.param(b'{"user_id":%d,"text":"\xff"}', JSON, id="invalid-utf-8"),
    pytest.param(b'{"user_id":%d,"text":"\xed\xa0\x80"}', JSON, id="utf-8-encoded-surrogate"),
    pytest.param(b'{"user_id":%d,"text":"\xc0\xaf"}', JSON, id="overlong-utf-8"),
    pytest.param(b'{"user_id": %d, "text": "hi"', JSON, id="truncated-json"),
    pytest.param(b'{"user_id": %d, "text": "hi"} trailing', JSON, id="trailing-garbage"),
    pytest.param(b'{"user_id": %d, "text": "hi"}', {"content-type": "text/plain"}, id="text-plain"),
]


@pytest.mark.parametrize("template,headers", RAW_INVALID_TWEETS)
def test_invalid_raw_tweet_body_is_422_and_changes_nothing(app, template, headers):
    author, reader = new_users(app, 2)
    app.follow(reader, author)
    with nothing_changes(app, author, reader):
        response = app.http.post("/tweets", content=template % author, headers=headers)
        expect_error(response, 422)


def test_valid_surrogate_pair_escape_is_one_code_point(app):
    author = new_user(app)
    body = b'{"user_id": %d, "text": "%s"}' % (author, b"\\ud83d\\ude00" * 280)
    response = app.http.post("/tweets", content=body, headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["text"] == "😀" * 280


def test_tweet_by_unknown_user_is_404_and_changes_nothing(app):
    bystander = new_user(app)
    with nothing_changes(app, bystander):
        expect_error(app.http.post("/tweets", json={"user_id": UNKNOWN_ID, "text": "hi"}), 404)
    expect_error(app.http.get(f"/users/{UNKNOWN_ID}/tweets"), 404)


@pytest.mark.parametrize("how", ["sized", "chunked"])
def test_well_formed_tweet_over_4_kib_is_413_and_changes_nothing(app, how):
    author, reader = new_users(app, 2)
    app.follow(reader, author)
    body = json.dumps({"user_id": author, "text": "a" * 5000}).encode()
    with nothing_changes(app, author, reader):
        expect_error(send_body(app, "/tweets", body, how), 413)


@pytest.mark.parametrize("how", ["sized", "chunked"])
def test_valid_tweet_of_4097_bytes_is_413_and_changes_nothing(app, how):
    """Even a body that would be a valid tweet: the limit comes before parsing."""
    author, reader = new_users(app, 2)
    app.follow(reader, author)
    body = sized_tweet(author, BODY_LIMIT + 1)
    assert len(body) == 4097
    with nothing_changes(app, author, reader):
        expect_error(send_body(app, "/tweets", body, how), 413)


@pytest.mark.parametrize("how", ["sized", "chunked"])
def test_valid_tweet_of_exactly_4096_bytes_is_accepted(app, how):
    author = new_user(app)
    body = sized_tweet(author, BODY_LIMIT, text="at the limit")
    assert len(body) == 4096
    response = send_body(app, "/tweets", body, how)
    assert response.status_code == 201, response.text
    assert response.json()["text"] == "at the limit"


@pytest.mark.parametrize("how", ["sized", "chunked"])
@pytest.mark.parametrize(
    "size,status",
    [(BODY_LIMIT, 422), (BODY_LIMIT + 1, 413)],
    ids=["4096-bytes-is-parsed", "4097-bytes-is-not"],
)
def test_the_4_kib_limit_is_on_bytes_before_parsing(app, size, status, how):
    author = new_user(app)
    body = sized_with_unknown_field(author, size)
    assert len(body) == size
    with nothing_changes(app, author):
        expect_error(send_body(app, "/tweets", body, how), status)


def test_4096_bytes_of_multibyte_text_is_under_the_limit_but_over_280_characters(app):
    """1000 emoji are 4000 bytes: within the byte limit, so it is parsed, and it is 422."""
    author = new_user(app)
    body = json.dumps({"user_id": author, "text": "😀" * 1000}, ensure_ascii=False).encode()
    assert len(body) <= BODY_LIMIT
    with nothing_changes(app, author):
        expect_error(app.http.post("/tweets", content=body, headers=JSON), 422)


# --- GET /timeline/{id} and GET /users/{id}/tweets ------------------------------------------


def test_home_timeline_has_user_id_and_tweets_of_followees_newest_first(app):
    reader, a, b, stranger = new_users(app, 4)
    app.follow(reader, a)
    app.follow(reader, b)
    posted = [post_tweet(app, author, f"t{n}") for n, author in enumerate([a, b, stranger, a, b])]
    settled(app)
    body = page(app, f"/timeline/{reader}")
    assert set(body) == {"user_id", "tweets"} and body["user_id"] == reader
    expected = [t for t in reversed(posted) if t["user_id"] != stranger]
    assert body["tweets"] == expected


def test_home_timeline_excludes_the_users_own_tweets(app):
    reader, friend = new_users(app, 2)
    app.follow(reader, friend)
    app.follow(friend, reader)
    mine = post_tweet(app, reader, "mine")
    theirs = post_tweet(app, friend, "theirs")
    settled(app)
    assert home(app, reader) == [theirs]
    assert home(app, friend) == [mine]


def test_home_timeline_of_someone_following_nobody_is_empty(app):
    loner = new_user(app)
    post_tweet(app, loner)
    settled(app)
    assert page(app, f"/timeline/{loner}") == {"user_id": loner, "tweets": []}


def test_own_tweets_are_only_the_users_own_newest_first(app):
    user, followee = new_users(app, 2)
    app.follow(user, followee)
    mine = [post_tweet(app, user, f"m{n}") for n in range(3)]
    post_tweet(app, followee, "not mine")
    body = page(app, f"/users/{user}/tweets")
    assert body == {"user_id": user, "tweets": list(reversed(mine))}


def test_own_tweets_of_a_silent_user_are_empty(app):
    user = new_user(app)
    assert page(app, f"/users/{user}/tweets") == {"user_id": user, "tweets": []}


def test_follow_brings_the_followees_earlier_tweets_and_unfollow_removes_them(app):
    reader, a, b = new_users(app, 3)
    app.follow(reader, b)
    history = [post_tweet(app, author, f"h{n}") for n, author in enumerate([a, b, a, a, b])]
    of = {author: [t for t in reversed(history) if t["user_id"] == author] for author in (a, b)}
    settled(app)
    assert home(app, reader) == of[b]

    app.follow(reader, a)
    settled(app)
    assert home(app, reader) == list(reversed(history))

    app.unfollow(reader, a)
    settled(app)
    assert home(app, reader) == of[b]

    app.follow(reader, a)
    app.unfollow(reader, b)
    settled(app)
    assert home(app, reader) == of[a]

    app.unfollow(reader, a)
    settled(app)
    assert home(app, reader) == []


def test_tweets_after_a_follow_arrive_and_after_an_unfollow_do_not(app):
    reader, author = new_users(app, 2)
    app.follow(reader, author)
    kept = post_tweet(app, author, "while followed")
    app.unfollow(reader, author)
    post_tweet(app, author, "after unfollow")
    settled(app)
    assert home(app, reader) == []
    app.follow(reader, author)
    settled(app)
    assert ids(home(app, reader)) == ids(own(app, author)) and kept in home(app, reader)


HISTORY = 55  # more than the default page of 50


@pytest.fixture
def paged(app):
    """A reader following an author with 55 tweets (and a stranger's tweets mixed in).
    Returns (path to page through, the 55 tweet ids newest first) for each endpoint."""
    reader, author, stranger = new_users(app, 3)
    app.follow(reader, author)
    tweet_ids = []
    for n in range(HISTORY):
        tweet_ids.append(post_tweet(app, author, f"p{n}")["id"])
        if n % 10 == 0:
            post_tweet(app, stranger, "noise")
            post_tweet(app, reader, "own noise")
    settled(app)
    newest_first = tweet_ids[::-1]
    return {
        "timeline": (f"/timeline/{reader}", newest_first),
        "own": (f"/users/{author}/tweets", newest_first),
    }


ENDPOINTS = ["timeline", "own"]


def paged_ids(app, path: str, **params) -> list[int]:
    return ids(page(app, path, **params)["tweets"])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_limit_defaults_to_50_and_1_and_200_are_valid(app, paged, endpoint):
    path, expected = paged[endpoint]
    assert paged_ids(app, path) == expected[:50]
    assert paged_ids(app, path, limit=1) == expected[:1]
    assert paged_ids(app, path, limit=7) == expected[:7]
    assert paged_ids(app, path, limit=200) == expected


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_before_returns_only_ids_below_it(app, paged, endpoint):
    path, expected = paged[endpoint]
    pivot = expected[10]
    assert paged_ids(app, path, before=pivot) == expected[11:]
    assert paged_ids(app, path, before=pivot, limit=5) == expected[11:16]
    assert paged_ids(app, path, before=pivot + 1, limit=1) == [pivot]
    assert paged_ids(app, path, before=expected[-1]) == []
    assert paged_ids(app, path, before=1) == []
    assert paged_ids(app, path, before=MAX_ID) == expected[:50]
    assert paged_ids(app, path, before=expected[0] + 1000) == expected[:50]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_paging_with_before_walks_every_tweet_once(app, paged, endpoint):
    path, expected = paged[endpoint]
    seen, before = [], None
    while True:
        params = {"limit": 8} | ({"before": before} if before else {})
        batch = paged_ids(app, path, **params)
        if not batch:
            break
        seen += batch
        before = batch[-1]
    assert seen == expected


@pytest.mark.parametrize("limit", BAD_LIMITS)
@pytest.mark.parametrize("endpoint", ["/timeline/{}", "/users/{}/tweets"])
def test_limit_outside_1_to_200_is_422(app, endpoint, limit):
    user = new_user(app)
    expect_error(app.http.get(endpoint.format(user), params={"limit": limit}), 422)


@pytest.mark.parametrize("before", BAD_BEFORES)
@pytest.mark.parametrize("endpoint", ["/timeline/{}", "/users/{}/tweets"])
def test_before_that_is_not_a_positive_id_is_422(app, endpoint, before):
    user = new_user(app)
    expect_error(app.http.get(endpoint.format(user), params={"before": before}), 422)


@pytest.mark.parametrize("endpoint", ["/timeline/{}", "/users/{}/tweets"])
def test_timelines_of_unknown_user_are_404(app, endpoint):
    expect_error(app.http.get(endpoint.format(UNKNOWN_ID)), 404)
    expect_error(app.http.get(endpoint.format(UNKNOWN_ID), params={"limit": 5, "before": 10}), 404)


# --- GET /health, GET /stats ----------------------------------------------------------------


def test_health_is_ok_and_names_this_approach(app):
    response = app.http.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok", "approach": by_module(app.module).label}


def test_stats_is_json_with_an_integer_fanout_backlog(app):
    response = app.http.get("/stats")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    backlog = response.json()["fanout_backlog"]
    assert type(backlog) is int and backlog >= 0


def test_fanout_backlog_is_always_0_for_join_on_read_and_drains_to_0_otherwise(app):
    author, *followers = new_users(app, 6)
    for follower in followers:
        app.follow(follower, author)
    backlogs = []
    for n in range(5):
        post_tweet(app, author, f"b{n}")
        backlogs.append(app.stats()["fanout_backlog"])
    if app.module in FANOUT_APPS:
        settled(app)
        assert app.stats()["fanout_backlog"] == 0
    else:
        assert backlogs == [0] * 5


# --- errors in general, and the schema --------------------------------------------------------


def test_unknown_route_and_wrong_method_are_json_errors(app):
    expect_error(app.http.get("/no/such/route"), 404)
    expect_error(app.http.delete("/tweets"), 405)
    expect_error(app.http.post(f"/timeline/{new_user(app)}", json={}), 405)


CONTRACT_ROUTES = {
    ("/users", "post"),
    ("/users/{}", "get"),
    ("/users/{}/following/{}", "put"),
    ("/users/{}/following/{}", "delete"),
    ("/tweets", "post"),
    ("/timeline/{}", "get"),
    ("/users/{}/tweets", "get"),
    ("/health", "get"),
    ("/stats", "get"),
}


def test_openapi_lists_every_contract_route_and_method(app):
    response = app.http.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    listed = {
        (re.sub(r"\{[^}]*\}", "{}", path), method)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert listed >= CONTRACT_ROUTES, f"missing: {CONTRACT_ROUTES - listed}"
