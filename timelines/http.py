"""The HTTP contract's plumbing, identical for all three apps: the app factory, the 4 KiB
body limit, strict JSON bodies, the API token on writes, JSON errors instead of tracebacks,
and JSON encoding with one library."""

import functools
import hmac
import json
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import orjson
import redis.exceptions
from fastapi import Depends, FastAPI, HTTPException, Request, Security, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.telemetry import TelemetryConfig
from psycopg_pool import PoolTimeout
from starlette.routing import Match
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from timelines.cache import RedisBusy
from timelines.db import UNAVAILABLE
from timelines.models import Problem
from timelines.settings import Settings

BODY_LIMIT = 4096
log = logging.getLogger("uvicorn.error")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid API_TOKEN; nothing was changed"},
    404: {"model": Problem, "description": "No such user"},
    413: {"model": Problem, "description": "Body over 4 KiB"},
    422: {"model": Problem, "description": "Invalid request"},
    503: {"model": Problem, "description": "A store is unreachable; nothing was changed"},
}
RETRY_AFTER = "1"  # seconds: every 503 says when to try again
UNLIMITED = ("/health", "/stats")  # answered past MAX_IN_FLIGHT, so that overload can be seen
BODILESS = ("GET", "HEAD", "OPTIONS")  # methods whose body, if any, nobody reads
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
# The apps export no OpenTelemetry. Left on, FastAPI asks OpenTelemetry for its providers on
# every request, which reads the environment each time: up to a tenth of a cached read's
# CPU (python -m bench profile).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(title: str, lifespan: Lifespan[FastAPI]) -> FastAPI:
    app = FastAPI(title=title, lifespan=lifespan, responses={503: ERRORS[503]}, telemetry=NO_TELEMETRY)
    # Before any route is declared: routes take their class when they are added.
    app.router.route_class = ContractRoute
    app.add_middleware(BodyLimit)
    app.add_middleware(InFlightLimit, limit=Settings().max_in_flight)  # outermost: sheds first
    # As decorators do: add_exception_handler's types would have these two take any Exception.
    app.exception_handler(RequestValidationError)(invalid_request)
    app.exception_handler(405)(method_not_allowed)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, database_busy)
    app.add_exception_handler(redis.exceptions.ConnectionError, redis_unreachable)
    app.add_exception_handler(redis.exceptions.TimeoutError, redis_unreachable)
    app.add_exception_handler(redis.exceptions.OutOfMemoryError, redis_unreachable)
    app.add_exception_handler(RedisBusy, pool_busy("Redis", "REDIS_MAX_CONNECTIONS"))
    app.add_exception_handler(PoolTimeout, pool_busy("PostgreSQL", "READER_CONNECTIONS"))
    return app


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def problem(status_code: int, detail: str) -> Response:
    response = json_response({"detail": detail}, status_code)
    if status_code == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def tweet_list(user_id: int, encoded_tweets: list[bytes]) -> Response:
    # Joining fragments orjson already produced: a page costs no decode and re-encode.
    body = b'{"user_id":%d,"tweets":[%s]}' % (user_id, b",".join(encoded_tweets))
    return Response(body, media_type="application/json")


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's default echoes the input back, which may be bytes that are not UTF-8.
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if isinstance(exc.body, NotJson):  # say why, rather than "not a dictionary"
        errors = [e for e in errors if e["loc"][:1] != ["body"]]
        errors.append({"loc": ["body"], "msg": f"not JSON: {exc.body.reason}", "type": "json_invalid"})
    return json_response({"detail": errors}, 422)


async def method_not_allowed(request: Request, exc: HTTPException) -> Response:
    # Starlette's Allow names the methods of the first route whose path matched; PUT and
    # DELETE /users/{a}/following/{b} are two routes, and Allow must name both (RFC 9110).
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    ]
    response = problem(405, str(exc.detail))
    response.headers["Allow"] = ", ".join(allowed)
    return response


async def database_busy(request: Request, exc: Exception) -> Response:
    log.warning("the database refused %s %s: %s", request.method, request.url.path, exc)
    return problem(503, "the database is busy or unreachable (DATABASE_URL); nothing was changed, try again")


async def redis_unreachable(request: Request, exc: Exception) -> Response:
    return problem(503, "Redis is unreachable (REDIS_URL); nothing was changed, try again")


def pool_busy(store: str, setting: str) -> Callable[[Request, Exception], Coroutine[Any, Any, Response]]:
    async def busy(request: Request, exc: Exception) -> Response:
        log.warning(
            "%s's connection pool stayed busy for %s %s: %s", store, request.method, request.url.path, exc
        )
        return problem(
            503, f"busy: every {store} connection of this process ({setting}) is in use; try again"
        )

    return busy


# --- the API token ---------------------------------------------------------------------------


@functools.cache
def api_token() -> bytes | None:
    """API_TOKEN; None when it is unset or empty, and every call is open (the demo)."""
    return (Settings().api_token or "").encode() or None


bearer = HTTPBearer(auto_error=False, description="API_TOKEN, which the app was started with")


async def require_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """FastAPI solves dependencies before it validates the body, so a call without the token
    is 401 whatever it carries, and changes nothing."""
    # Headers arrive decoded as latin-1: encoding back gives the bytes sent, whatever they are
    # (compare_digest refuses non-ASCII str). It takes as long however much of the token is right.
    token = api_token()
    assert token is not None, "ContractRoute drops this check when API_TOKEN is unset"
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode("latin-1"), token):
        raise HTTPException(
            401, "this call needs Authorization: Bearer <API_TOKEN>", headers={"WWW-Authenticate": "Bearer"}
        )


# The dependencies of every call that changes state (ContractRoute drops the token check
# when API_TOKEN is unset).
WRITE = [Depends(require_token)]


# --- strict JSON bodies ------------------------------------------------------------------------


class NotJson:
    """What a body that is not strict JSON parses to. FastAPI answers a body it cannot parse
    at once, before the dependencies run (so before the token check); this stand-in fails
    validation instead, after them, and invalid_request says why it is not JSON."""

    def __init__(self, reason: str):
        self.reason = reason


def strict_json(body: bytes) -> Any:
    """The body's JSON, or NotJson. UTF-8 only (RFC 8259); no NaN or Infinity, which are not
    JSON; no key twice, since parsers disagree on which copy wins (one body, two meanings);
    and no nesting deeper than the parser's recursion, which is a 422, not a 400 or a 500."""
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_not_json)
    except UnicodeDecodeError:
        return NotJson("not valid UTF-8")
    except RecursionError:
        return NotJson("nested too deeply")
    except ValueError as error:
        return NotJson(str(error))


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not a JSON value")


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class ContractRoute(APIRoute):
    """Every route of the three apps: it reads a JSON body with strict_json, and documents the
    answers that the shared plumbing gives before the route's own code runs."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: set[str] | list[str] | None = None,
        dependencies: Sequence[params.Depends] | None = None,
        responses: dict[int | str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        shared: dict[int | str, dict[str, Any]] = {}
        if set(methods or ()) - set(BODILESS):
            shared[413] = ERRORS[413]
        dependencies = list(dependencies or ())
        if any(dependency.dependency is require_token for dependency in dependencies):
            if api_token():
                shared[401] = ERRORS[401]
            else:  # the demo: the call is open, and its OpenAPI asks for no token either
                dependencies = [d for d in dependencies if d.dependency is not require_token]
        super().__init__(
            path,
            endpoint,
            methods=methods,
            dependencies=dependencies,
            responses={**shared, **(responses or {})},
            **kwargs,
        )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


# --- the body limit ----------------------------------------------------------------------------


class BodyLimit:
    """Refuses a body over 4 KiB, declared or streamed, before anything reads all of it."""

    def __init__(self, app: ASGIApp, limit: int = BODY_LIMIT):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODILESS:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send) -> None:
        # Connection: close, so that the server need not read (or drain) the rest of the body.
        response = problem(413, f"request body over {self.limit} bytes")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(response.body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# --- load shedding -----------------------------------------------------------------------------


class InFlightLimit:
    """Past `limit` requests at once, answers 503 at once instead of queueing: past capacity
    a queue only makes every answer late. /health and /stats are never refused."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._refusal = orjson.dumps(
            {"detail": f"busy: this process is at its MAX_IN_FLIGHT={limit} requests; try again"}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            return await self._refuse(send)
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self._refusal)),
            (b"retry-after", RETRY_AFTER.encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": self._refusal})
