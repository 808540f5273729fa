"""The HTTP contract's plumbing, identical for all three apps: the app factory, the 4 KiB
body limit, JSON errors instead of tracebacks, and JSON encoding with one library."""

import logging
import sqlite3
from datetime import UTC, datetime

import orjson
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from timelines.models import Problem

BODY_LIMIT = 4096
log = logging.getLogger("uvicorn.error")

ERRORS = {
    404: {"model": Problem, "description": "No such user"},
    413: {"model": Problem, "description": "Body over 4 KiB"},
    422: {"model": Problem, "description": "Invalid request"},
    503: {"model": Problem, "description": "A store is unreachable; nothing was changed"},
}


def create_app(title: str, lifespan) -> FastAPI:
    app = FastAPI(title=title, lifespan=lifespan, responses={503: ERRORS[503]})
    app.add_middleware(BodyLimit)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(sqlite3.OperationalError, database_busy)
    app.add_exception_handler(redis.exceptions.ConnectionError, redis_unreachable)
    app.add_exception_handler(redis.exceptions.TimeoutError, redis_unreachable)
    return app


def json_response(content, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def problem(status_code: int, detail: str) -> Response:
    return json_response({"detail": detail}, status_code)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def tweet_json(row) -> bytes:
    """One tweet, encoded once; cached as these bytes and joined into pages as they are."""
    tweet_id, user_id, text, created_at = row
    return orjson.dumps({"id": tweet_id, "user_id": user_id, "text": text, "created_at": created_at})


def tweet_list(user_id: int, encoded_tweets: list[bytes]) -> Response:
    # Joining fragments orjson already produced: a page costs no decode and re-encode.
    body = b'{"user_id":%d,"tweets":[%s]}' % (user_id, b",".join(encoded_tweets))
    return Response(body, media_type="application/json")


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    # FastAPI's default echoes the input back, which may be bytes that are not UTF-8.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    return json_response({"detail": errors}, 422)


async def database_busy(request: Request, exc: sqlite3.OperationalError) -> Response:
    log.warning("SQLite refused %s %s: %s", request.method, request.url.path, exc)
    return problem(503, "the database is busy; nothing was changed, try again")


async def redis_unreachable(request: Request, exc: Exception) -> Response:
    return problem(503, "Redis is unreachable (REDIS_URL); nothing was changed, try again")


class BodyLimit:
    """Refuses a body over 4 KiB, declared or streamed, or not UTF-8, before anything parses it."""

    def __init__(self, app, limit: int = BODY_LIMIT):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send, 413, f"request body over {self.limit} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send, 413, f"request body over {self.limit} bytes")
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")  # JSON is UTF-8 (RFC 8259); anything else is a client error
        except UnicodeDecodeError:
            return await self._refuse(send, 422, "request body is not valid UTF-8")
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _refuse(send, status: int, detail: str) -> None:
        response = problem(status, detail)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(response.body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": response.body})


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
