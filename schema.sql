-- The source of truth for all three approaches. Redis only ever holds copies of this.

CREATE TABLE IF NOT EXISTS users (
    id          INTEGER PRIMARY KEY,
    username    TEXT    NOT NULL UNIQUE COLLATE NOCASE,   -- Alice and alice conflict
    created_at  TEXT    NOT NULL,
    -- Counters kept in the same transaction as the rows they count, so a profile is one
    -- lookup and the hybrid can tell a celebrity without counting 100k rows.
    followers   INTEGER NOT NULL DEFAULT 0,
    following   INTEGER NOT NULL DEFAULT 0,
    tweets      INTEGER NOT NULL DEFAULT 0
);

-- One row per pair. The primary key answers "whom does U follow" (the join-on-read);
-- the second index answers "who follows A" (the fanout).
CREATE TABLE IF NOT EXISTS follows (
    follower_id INTEGER NOT NULL REFERENCES users (id),
    followee_id INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (follower_id, followee_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS follows_by_followee ON follows (followee_id, follower_id);

-- The rowid is the tweet id: SQLite assigns it under the write lock, so ids grow in
-- commit order, which is what lets an id serve as timestamp, score and cursor.
CREATE TABLE IF NOT EXISTS tweets (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    text        TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS tweets_by_author ON tweets (user_id, id);

-- Transactional outbox (fanout approaches): a row is written in the same transaction as
-- the tweet it owes, and deleted only once every follower's cached timeline has it.
--   kind 'tweet'    push tweet_id into the cached timeline of every follower of user_id
--   kind 'backfill' merge user_id's recent tweets into every follower's (the hybrid, when
--                   an account falls below the celebrity threshold)
--   kind 'evict'    drop user_id's own cached timeline (a follow change Redis missed)
-- next_follower is the resume point of a fanout cut short by a crash; lease_until keeps
-- two worker processes off the same row.
CREATE TABLE IF NOT EXISTS fanout_outbox (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,
    user_id       INTEGER NOT NULL,
    tweet_id      INTEGER,
    next_follower INTEGER NOT NULL DEFAULT 0,
    lease_until   REAL    NOT NULL DEFAULT 0,
    accepted_at   REAL    NOT NULL
);

-- One row per finished tweet fanout: what /stats and the bench report as fanout lag.
-- deliveries counts completions of the same tweet: anything but 1 is a double delivery.
CREATE TABLE IF NOT EXISTS fanout_log (
    tweet_id    INTEGER PRIMARY KEY,
    author_id   INTEGER NOT NULL,
    followers   INTEGER NOT NULL,
    accepted_at REAL    NOT NULL,
    done_at     REAL    NOT NULL,
    deliveries  INTEGER NOT NULL DEFAULT 1
);

-- The hybrid's pulled accounts: those at or over CELEBRITY_THRESHOLD followers. Their
-- tweets are not fanned out; readers merge them in at read time.
CREATE TABLE IF NOT EXISTS celebrities (
    user_id INTEGER PRIMARY KEY REFERENCES users (id)
);
