"""The bytes a tweet is stored as in Redis and joined into pages as: encoded once, when it is
cached, so that serving a page costs no decode and re-encode (bench/experiments/encodings/page.py)."""

import orjson


def tweet_json(row: tuple[int, int, str, str]) -> bytes:
    """One tweet row (a TweetRow, or a row selected in its order) as the contract's JSON."""
    tweet_id, user_id, text, created_at = row
    return orjson.dumps({"id": tweet_id, "user_id": user_id, "text": text, "created_at": created_at})
