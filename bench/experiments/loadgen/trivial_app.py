"""The cheapest app that speaks enough of the contract for the load generator's
self-benchmark (`python -m bench loadgen`): 1000 users (GET /users/{id}), a zero backlog
(GET /stats), an empty timeline for any other GET (/health included) and 201 for any POST.
Raw ASGI, no framework, so that the app costs as little as possible and the load generator
is what is measured."""

import re

USERS = 1000
JSON = [(b"content-type", b"application/json")]
TIMELINE = b'{"user_id":1,"tweets":[]}'
TWEET = b'{"id":1,"user_id":1,"text":"x","created_at":"2026-01-01T00:00:00.000000Z"}'
USER = re.compile(rb"/users/(\d+)")


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):  # drain the request body
        pass
    status, body = answer(scope["method"], scope["raw_path"])
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": body})


def answer(method: str, path: bytes) -> tuple[int, bytes]:
    if method == "POST":
        return 201, TWEET
    if path == b"/stats":
        return 200, b'{"fanout_backlog":0}'
    if match := USER.fullmatch(path):
        user = int(match[1])
        if not 1 <= user <= USERS:
            return 404, b'{"detail":"no such user"}'
        return 200, b'{"id":%d,"username":"user%d","followers":%d,"following":%d,"tweets":0}' % (
            user,
            user,
            USERS // user,
            20,
        )
    return 200, TIMELINE
