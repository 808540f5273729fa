"""Why a page is built by joining pre-encoded tweets: the three ways to answer a cached
50-tweet page, timed on this machine. Run: .venv/bin/python -m bench page-encoding"""

import timeit

import orjson

from timelines.encoding import tweet_json
from timelines.http import tweet_list
from timelines.models import TweetList

PAGE = 50
rows = [(n, n % 97 + 1, "x" * 140, "2026-11-21T10:49:21.119656Z") for n in range(PAGE)]
cached = [tweet_json(row) for row in rows]  # what Redis hands back


def join_fragments() -> bytes:
    return tweet_list(7, cached).body


def decode_and_encode() -> bytes:
    return orjson.dumps({"user_id": 7, "tweets": [orjson.loads(body) for body in cached]})


def pydantic_model() -> bytes:
    page = TweetList(user_id=7, tweets=[orjson.loads(body) for body in cached])
    return page.model_dump_json().encode()


def main(argv: list[str] | None = None) -> int:
    assert (
        orjson.loads(join_fragments()) == orjson.loads(decode_and_encode()) == orjson.loads(pydantic_model())
    )
    print(f"{PAGE}-tweet page, µs per page (best of 5):")
    for way in (join_fragments, decode_and_encode, pydantic_model):
        n = 2000
        best = min(timeit.repeat(way, number=n, repeat=5)) / n * 1e6
        print(f"  {way.__name__:<18} {best:8.1f}")
    return 0
