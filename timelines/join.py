"""The home timeline as join-on-read computes it on every read (approach1.py): everyone
the user follows, all their tweets, newest first. The fanout apps answer with it too where
their cache cannot (Redis down, a page deeper than the cache)."""

from timelines.sql import Dialects

# :user, :before, :limit -> tweet rows (id, user_id, text, created_at), newest first.
HOME_TIMELINE = Dialects(
    sqlite="""
        SELECT tweets.id, tweets.user_id, tweets.text, tweets.created_at
        FROM tweets
        JOIN follows ON tweets.user_id = follows.followee_id
        WHERE follows.follower_id = :user AND tweets.id < :before
        ORDER BY tweets.id DESC
        LIMIT :limit""",
    # Written as the join above, PostgreSQL's planner walks the whole tweets index
    # backwards for followees' rows; asked for each followee's newest `limit` first (one
    # short index scan each, as SQLite does), it merges at most followees × limit ids, from
    # the index alone, and reads the rows of the `limit` that win.
    postgres="""
        SELECT tweets.id, tweets.user_id, tweets.text, tweets.created_at
        FROM tweets
        WHERE tweets.id IN (
            SELECT recent.id
            FROM follows
            CROSS JOIN LATERAL (
                SELECT id FROM tweets
                WHERE tweets.user_id = follows.followee_id AND tweets.id < :before
                ORDER BY tweets.id DESC
                LIMIT :limit) AS recent
            WHERE follows.follower_id = :user
            ORDER BY recent.id DESC
            LIMIT :limit)
        ORDER BY tweets.id DESC""",
)
