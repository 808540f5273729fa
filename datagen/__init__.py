"""Realistic data for the three apps: a seeded follow graph (graph.py), a seeded tweet
history (history.py), named scales (scales.py), and bulk loaders that write the state the
HTTP API would have produced, into SQLite (load.py) and the fanout apps' Redis (caches.py).

    python -m datagen tiny|small|default|large --database PATH
                      [--redis-url URL --approach fanout|hybrid] [--force]

What other components can rely on in a loaded SQLite file (the load suite reads it):
users are ids 1..N with usernames user{id}; users.followers, users.following and
users.tweets are exact counts of the follows and tweets rows; tweet ids are 1..T in time
order with created_at increasing with the id; the celebrities table holds the users with
followers >= the threshold given to the loader. Nothing else is stored about a scale: the
file is the whole state, so e.g. `SELECT id, followers, following FROM users` is how to
pick readers, writers and celebrities for a load test.
"""
