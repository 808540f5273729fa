"""A small client for the calls around a run (discovering or creating the graph, reading
/stats), kept apart from the measured requests: these never reach Locust's statistics."""

from http.client import HTTPException

import gevent
import gevent.pool
import orjson
from geventhttpclient import URL, HTTPClient

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
READS = ("GET", "HEAD")


class ApiError(RuntimeError):
    pass


class Api:
    def __init__(self, host: str, concurrency: int = 16, timeout: float = 60, token: str = ""):
        url = URL(host)
        self.base = url.path.rstrip("/")  # a host given with a path prefix keeps it
        self.host = host
        self.concurrency = concurrency
        self.http = HTTPClient.from_url(
            url, concurrency=concurrency, connection_timeout=10, network_timeout=timeout
        )
        # Only writes carry the token: an app with API_TOKEN leaves reads open.
        self.write_headers = {"Authorization": f"Bearer {token}"} if token else {}

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, body=None) -> tuple[int, object]:
        """(status, decoded JSON body or None). Connection errors raise ApiError."""
        payload = b"" if body is None else orjson.dumps(body)
        headers = dict(JSON) if body is not None else {}
        if method not in READS:
            headers.update(self.write_headers)
        try:
            response = self.http.request(method, self.base + path, body=payload, headers=headers or None)
            content = response.read()
        except (OSError, HTTPException, gevent.Timeout) as error:
            raise ApiError(f"{method} {self.host}{path}: {error!r}") from error
        try:
            decoded = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            decoded = None
        return response.status_code, decoded

    def expect(self, status: int, method: str, path: str, body=None):
        code, decoded = self.call(method, path, body)
        if code != status:
            raise ApiError(f"{method} {self.host}{path} answered {code}, expected {status}: {decoded}")
        return decoded

    def map(self, function, items) -> list:
        """function(item) for every item, `concurrency` at a time; results in order. The first
        exception is raised once the calls under way have finished."""
        pool = gevent.pool.Pool(self.concurrency)
        return list(pool.imap(function, items))
