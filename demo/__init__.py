"""`make demo` / `python -m demo`: the three designs live, side by side, in about a minute.

__main__.py      the command: seeds, starts, serves, stops everything on Ctrl-C or SIGTERM
stack.py         the processes: one redis-server, the three apps, one Locust per app
latency_feed.py  loaded into each Locust next to loadtest/locustfile.py: every request's
                 latency to a file, flushed each second
live.py          the figures of the last 10 s per app, from those files and the apps' /stats
celebrity.py     the most-followed account tweets on all three; when its last follower sees it
server.py        the page (static/index.html) and /live, /celebrity
"""
