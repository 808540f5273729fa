"""The bytes a tweet is stored as in Redis and joined into pages as: encoded once, when it is
cached, so that serving a page costs no decode and re-encode (bench/experiments/encodings/page.py)."""

import orjson


def tweet_json(row) -> bytes:
    """One tweet row (id, user_id, text, created_at) as the contract's JSON object."""
    tweet_id, user_id, text, created_at = row
    return orjson.dumps({"id": tweet_id, "user_id": user_id, "text": text, "created_at": created_at})
