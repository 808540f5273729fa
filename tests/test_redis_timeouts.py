"""A Redis that stops answering cannot hold a call of the apps' client for longer than its
timeouts, whether the call waits for its reply or for the socket to take what it sends: the
apps' connection sends without redis-py's per-call wait_for (timelines/cache.py)."""

import asyncio
import signal
import time

import pytest
import redis.exceptions

from rig.processes import RedisServer
from timelines.cache import connect

SOCKET_TIMEOUT = 2  # timelines.cache.connect's
RETRIES = 1  # and its one retry on a fresh connection


@pytest.fixture
def stopped_redis(tmp_path):
    """A redis-server that is there (it accepted the connection) but frozen (SIGSTOP)."""
    server = RedisServer(tmp_path).start()

    def stop() -> None:
        server.process.send_signal(signal.SIGSTOP)

    yield server, stop
    server.process.send_signal(signal.SIGCONT)
    server.stop()


def seconds_until_timeout(url: str, stop, call) -> float:
    async def main() -> float:
        client = connect(url)
        try:
            await client.ping()  # connected before Redis freezes
            stop()
            began = time.monotonic()
            with pytest.raises(redis.exceptions.TimeoutError):
                await call(client)
            return time.monotonic() - began
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_a_call_waiting_for_its_reply_times_out(stopped_redis):
    server, stop = stopped_redis
    waited = seconds_until_timeout(server.url(), stop, lambda client: client.get("key"))
    assert SOCKET_TIMEOUT <= waited < SOCKET_TIMEOUT * (RETRIES + 1) + 2


def test_a_send_the_socket_cannot_take_times_out(stopped_redis):
    """64 MB fill the socket's buffers on both sides long before Redis would read them."""
    server, stop = stopped_redis
    value = b"x" * (64 << 20)
    waited = seconds_until_timeout(server.url(), stop, lambda client: client.set("key", value))
    assert SOCKET_TIMEOUT <= waited < SOCKET_TIMEOUT * (RETRIES + 1) + 2
