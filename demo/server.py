"""The live view: the page, its figures as JSON at /live (keyed by join, fanout and
hybrid), and POST /celebrity, the page's button. A task in the lifespan refreshes the
figures once a second; /live answers the latest without touching the apps."""

import asyncio
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse

from demo.celebrity import CelebrityTweet, tweet_and_watch
from demo.live import WINDOW, AppWindow, FeedTail
from demo.stack import APPS, Stack

PAGE = Path(__file__).with_name("static") / "index.html"
REFRESH_SECONDS = 1.0
DESIGNS = {
    "join": "join-on-read (approach1)",
    "fanout": "fanout-on-write (approach2)",
    "hybrid": "hybrid: fanout except celebrities (approach3_hybrid)",
}


class Live:
    """The latest figures of the three apps, and the celebrity tweets pressed for."""

    def __init__(self, stack: Stack, began: float, say, url: str):
        self.stack, self.began, self.say, self.url = stack, began, say, url
        self.windows = {name: AppWindow(stack.database(name), FeedTail(stack.feed(name))) for name in APPS}
        self.figures: dict = {name: {} for name in APPS}
        self.celebrity_tweets: dict[str, CelebrityTweet] = {}
        self.presses = 0
        self.first_figures_at: float | None = None
        self.problem: str | None = None
        self.tasks: set[asyncio.Task] = set()

    async def refresh_forever(self, client: httpx.AsyncClient) -> None:
        while True:
            try:
                await self.refresh(client)
            except Exception as error:  # noqa: BLE001 - a view that freezes silently is worse
                self.problem = f"refreshing the figures failed: {type(error).__name__}: {error}"
                self.say(f"problem: {self.problem}")
            await asyncio.sleep(REFRESH_SECONDS)

    async def refresh(self, client: httpx.AsyncClient) -> None:
        now = time.time()
        answers = await asyncio.gather(*(self.stats(client, name) for name in APPS))
        for name, (stats, error) in zip(APPS, answers, strict=False):
            window = self.windows[name]
            window.take_feed(now)
            window.take_stats(now, stats, error)
        self.figures = await asyncio.to_thread(
            lambda: {
                name: window.figures(now, fanout=name != "join") for name, window in self.windows.items()
            }
        )
        if self.first_figures_at is None and all(f["read_p50_ms"] is not None for f in self.figures.values()):
            self.first_figures_at = time.monotonic()
            self.say(
                f"live: {self.url} (first figures {self.first_figures_at - self.began:.1f} s after "
                "the start; press c there for the celebrity's tweet; Ctrl-C stops everything)"
            )
        if (problem := self.stack.problem()) and problem != self.problem:
            self.say(f"problem: {problem}")
        self.problem = problem

    async def stats(self, client: httpx.AsyncClient, name: str) -> tuple[dict | None, str | None]:
        try:
            return (await client.get(f"{self.stack.apps[name].url}/stats", timeout=2)).json(), None
        except (httpx.HTTPError, ValueError) as error:
            return None, f"/stats: {type(error).__name__}: {error}"

    def press(self, client: httpx.AsyncClient) -> dict:
        self.presses += 1
        celebrity = self.stack.celebrity
        for name in APPS:
            record = CelebrityTweet(self.presses, time.time())
            self.celebrity_tweets[name] = record
            database = self.stack.database(name) if name != "join" else None
            task = asyncio.create_task(
                tweet_and_watch(client, self.stack.apps[name].url, database, celebrity, record)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return {"press": self.presses, "user_id": celebrity.user_id, "followers": celebrity.followers}

    def as_json(self) -> dict:
        celebrity = self.stack.celebrity
        apps = {
            name: {
                "design": DESIGNS[name],
                **self.figures[name],
                "celebrity_tweet": (
                    record.as_json() if (record := self.celebrity_tweets.get(name)) else None
                ),
            }
            for name in APPS
        }
        return {
            **apps,
            "meta": {
                "elapsed_s": round(time.monotonic() - self.began, 1),
                "window_s": WINDOW,
                "rate_per_app": self.stack.rate,
                "scale": self.stack.scale,
                "celebrity_threshold": self.stack.threshold,
                "presses": self.presses,
                "apps": {name: app.url for name, app in self.stack.apps.items()},
                "redis": self.stack.redis.url(),
                "celebrity": {
                    "user_id": celebrity.user_id,
                    "followers": celebrity.followers,
                    "last_follower": celebrity.last_follower,
                },
                "first_figures_s": (
                    round(self.first_figures_at - self.began, 1) if self.first_figures_at else None
                ),
                "problem": self.problem,
            },
        }


def create_app(live: Live) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with httpx.AsyncClient(timeout=10) as client:
            app.state.client = client
            refresher = asyncio.create_task(live.refresh_forever(client))
            yield
            refresher.cancel()
            for task in list(live.tasks):
                task.cancel()

    app = FastAPI(title="Home timelines: the three designs live", lifespan=lifespan)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE, headers={"Cache-Control": "no-store"})

    @app.get("/live")
    async def figures() -> JSONResponse:
        return JSONResponse(live.as_json(), headers={"Cache-Control": "no-store"})

    @app.post("/celebrity", status_code=202)
    async def celebrity_tweets() -> JSONResponse:
        return JSONResponse(live.press(app.state.client), status_code=202)

    return app
