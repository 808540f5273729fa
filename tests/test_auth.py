"""API_TOKEN, over real HTTP, for all three apps started with it: every call that changes
state needs `Authorization: Bearer <token>` and is otherwise 401 (JSON, WWW-Authenticate:
Bearer) and changes nothing, whatever its body or path; reads stay open; the OpenAPI says
so; and the load suite, given the token, runs without a failure.

Without API_TOKEN the writes need nothing: test_contract.py makes every write without one.
"""

import os
from dataclasses import dataclass
from typing import ClassVar

import httpx
import pytest

from harness import AppServer
from rig.locust import start_locust
from rig.processes import stop
from test_hostile import Placeholders, changes_nothing
from test_loadtest import SMALL_GRAPH, assert_clean, run_locust

JSON = {"content-type": "application/json"}


@dataclass
class Secured(Placeholders):
    """An app started with API_TOKEN; `app.http` sends no token, `writer` sends it."""

    app: AppServer
    token: str
    writer: httpx.Client
    u: int
    v: int  # u follows v
    w: int  # follows nobody, followed by nobody
    PLACEHOLDERS: ClassVar = ("u", "v", "w")


@pytest.fixture(scope="module")
def secured(secured_app):
    token = secured_app.env["API_TOKEN"]
    writer = httpx.Client(base_url=str(secured_app.http.base_url), headers=bearer(token), timeout=30)
    u, v, w = (created(writer.post("/users", json={"username": name})) for name in ("ann", "bob", "cy"))
    assert writer.put(f"/users/{u}/following/{v}").status_code == 204
    created(writer.post("/tweets", json={"user_id": v, "text": "hello"}))
    yield Secured(secured_app, token, writer, u, v, w)
    writer.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def created(response: httpx.Response) -> int:
    assert response.status_code == 201, response.text
    return response.json()["id"]


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"].startswith("application/json")
    assert "detail" in response.json()


# Every call that changes state, valid in every other way: with the token each would succeed.
WRITES = [
    pytest.param("POST", "/users", b'{"username":"no_token_here"}', id="create-user"),
    pytest.param("PUT", "/users/{w}/following/{u}", None, id="follow"),
    pytest.param("DELETE", "/users/{u}/following/{v}", None, id="unfollow"),
    pytest.param("POST", "/tweets", b'{"user_id":{u},"text":"unauthorized"}', id="tweet"),
]

# Authorization headers that are not the token T (raw bytes: some are not ASCII). A value
# with trailing whitespace is not here: h11, on either side, refuses or strips it.
NOT_THE_TOKEN = [
    pytest.param(lambda t: None, id="none"),
    pytest.param(lambda t: b"", id="empty"),
    pytest.param(lambda t: b"Bearer", id="scheme-only"),
    pytest.param(lambda t: b"Bearer wrong", id="wrong-token"),
    pytest.param(lambda t: b"Bearer " + t[:-1], id="token-minus-last-char"),
    pytest.param(lambda t: b"Bearer " + t + b"x", id="token-plus-a-char"),
    pytest.param(lambda t: b"Bearer " + t.upper(), id="token-in-upper-case"),
    pytest.param(lambda t: b"Bearer " + t + b" x", id="token-and-more"),
    pytest.param(lambda t: b"Bearer\t" + t, id="tab-separator"),
    pytest.param(lambda t: b"Basic " + t, id="basic-scheme"),
    pytest.param(lambda t: b"Token " + t, id="token-scheme"),
    pytest.param(lambda t: t, id="token-without-scheme"),
    pytest.param(lambda t: b"Bearer \xff\xfe" + t, id="non-ascii-bytes"),
    pytest.param(lambda t: b"Bearer " + b"x" * 4000, id="4000-byte-token"),
]


def write(secured: Secured, method: str, path: str, body: bytes | None, authorization: bytes | None):
    headers = {**JSON} if body is not None else {}
    if authorization is not None:
        headers["authorization"] = authorization
    content = None if body is None else secured.fill(body)
    return secured.app.http.request(method, secured.fill(path), content=content, headers=headers)


@pytest.mark.parametrize("authorization", NOT_THE_TOKEN)
@pytest.mark.parametrize("method,path,body", WRITES)
def test_write_without_the_token_is_401_and_changes_nothing(secured, method, path, body, authorization):
    with changes_nothing(secured.app):
        assert_401(write(secured, method, path, body, authorization(secured.token.encode())))


# Bodies and paths that would be 422 (or 404) with the token: without it, 401 comes first.
BAD_WRITES = [
    pytest.param("POST", "/tweets", b'{"user_id":{u},"text":', id="truncated-json"),
    pytest.param("POST", "/tweets", b'{"user_id":{u},"text":"\xff"}', id="invalid-utf-8"),
    pytest.param("POST", "/tweets", b"[" * 3000, id="deep-nesting"),
    pytest.param("POST", "/tweets", b'{"user_id":{u},"user_id":1,"text":"hi"}', id="duplicate-key"),
    pytest.param("POST", "/tweets", b'{"user_id":"{u}","text":""}', id="wrong-fields"),
    pytest.param("POST", "/tweets", b'{"user_id":9223372036854775807,"text":"hi"}', id="unknown-user"),
    pytest.param("POST", "/users", b'{"username":"ann"}', id="taken-username"),
    pytest.param("POST", "/users", b"", id="empty-body"),
    pytest.param("PUT", "/users/0/following/abc", None, id="bad-ids"),
    pytest.param("PUT", "/users/{u}/following/{u}", None, id="self-follow"),
    pytest.param("DELETE", "/users/9223372036854775807/following/{u}", None, id="unknown-follower"),
]


@pytest.mark.parametrize("method,path,body", BAD_WRITES)
def test_bad_write_without_the_token_is_401_before_it_is_422(secured, method, path, body):
    with changes_nothing(secured.app):
        assert_401(write(secured, method, path, body, None))
        assert_401(write(secured, method, path, body, b"Bearer wrong"))


def test_body_over_4_kib_is_413_even_without_the_token(secured):
    """The body limit comes first: it refuses what it has not read, token or not."""
    with changes_nothing(secured.app):
        response = write(secured, "POST", "/tweets", b'{"user_id":{u},"text":"' + b"a" * 5000 + b'"}', None)
    assert response.status_code == 413, response.text


def test_every_write_succeeds_with_the_token(secured):
    user = created(secured.writer.post("/users", json={"username": "with_token"}))
    # Auth schemes are case-insensitive (RFC 9110 11.1).
    lower_case = {"Authorization": f"bearer {secured.token}"}
    assert secured.writer.put(f"/users/{user}/following/{secured.v}", headers=lower_case).status_code == 204
    tweet = created(secured.writer.post("/tweets", json={"user_id": secured.v, "text": "for with_token"}))
    secured.app.wait_for_fanout()
    assert secured.app.timeline(user)[0] == tweet
    assert secured.writer.delete(f"/users/{user}/following/{secured.v}").status_code == 204
    assert secured.app.http.get(f"/users/{user}").json()["following"] == 0


@pytest.mark.parametrize("authorization", [None, b"Bearer wrong"], ids=["no-token", "wrong-token"])
def test_reads_are_open(secured, authorization):
    headers = {} if authorization is None else {"authorization": authorization}
    for path in (
        "/users/{u}",
        "/users/{v}/tweets",
        "/timeline/{u}?limit=5",
        "/health",
        "/stats",
        "/openapi.json",
    ):
        response = secured.app.http.get(secured.fill(path), headers=headers)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"


def operations(app: AppServer) -> dict[str, dict]:
    schema = app.http.get("/openapi.json").json()
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def test_openapi_asks_for_the_bearer_token_on_writes_only(secured):
    schema = secured.app.http.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "API_TOKEN, which the app was started with",
        }
    }
    secured_operations = {
        name for name, operation in operations(secured.app).items() if "security" in operation
    }
    assert secured_operations == {
        "POST /users",
        "PUT /users/{follower_id}/following/{followee_id}",
        "DELETE /users/{follower_id}/following/{followee_id}",
        "POST /tweets",
    }
    for name, operation in operations(secured.app).items():
        assert ("401" in operation["responses"]) == (name in secured_operations), name


def test_without_api_token_writes_are_open_and_the_openapi_asks_for_nothing(start_app):
    app = start_app("approach1")  # API_TOKEN unset: the demo
    assert all(
        "security" not in operation and "401" not in operation["responses"]
        for operation in operations(app).values()
    )
    assert "securitySchemes" not in app.http.get("/openapi.json").json().get("components", {})
    response = app.http.post("/users", json={"username": "anyone"}, headers=bearer("whatever"))
    assert response.status_code == 201, response.text


# --- the load suite -----------------------------------------------------------------------------

TOKEN = "load-suite-token"


def test_load_suite_given_the_token_runs_without_failures(start_app, tmp_path):
    app = start_app("approach2", api_token=TOKEN)  # fanout: the tweets it sends cost the most
    run = run_locust(app, tmp_path, "token", *SMALL_GRAPH, "--api-token", TOKEN, seconds=3)
    assert_clean(run)
    assert run.stats["loadtest"]["operations"]["tweet"] > 0
    assert app.http.get("/users/100").status_code == 200  # the graph was built, with the token


def test_load_suite_takes_the_token_from_the_environment(start_app, tmp_path, monkeypatch):
    app = start_app("approach3_hybrid", api_token=TOKEN)
    monkeypatch.setenv("API_TOKEN", TOKEN)
    run = run_locust(app, tmp_path, "token-from-env", *SMALL_GRAPH, seconds=2)
    assert_clean(run)


def test_load_suite_without_the_token_stops_at_the_first_write(start_app, tmp_path):
    app = start_app("approach1", api_token=TOKEN)
    environment = {name: value for name, value in os.environ.items() if name != "API_TOKEN"}
    log = tmp_path / "locust.log"
    locust = start_locust(app.url, 2, 2, log, tuple(SMALL_GRAPH), cwd=tmp_path, env=environment)
    try:
        assert locust.wait(timeout=120) != 0
    finally:
        stop(locust)
    assert "POST /users user1 answered 401" in log.read_text()
    assert app.http.get("/users/1").status_code == 404  # nothing was created
