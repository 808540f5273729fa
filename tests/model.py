"""The definition of a home timeline, independent of all three apps: the tweets of the
accounts U follows now, newest first, ids below `before`, at most `limit`."""


class TimelineModel:
    def __init__(self):
        self.follows: set[tuple[int, int]] = set()
        self.tweets: list[tuple[int, int]] = []  # (tweet id, author), oldest first

    @classmethod
    def of_generated(cls, graph, history) -> "TimelineModel":
        """A dataset of datagen's (a Graph and a History), its tweets numbered 1, 2, … in
        order, as every loader numbers them."""
        model = cls()
        model.follows = set(zip(graph.follower.tolist(), graph.followee.tolist(), strict=True))
        model.tweets = list(enumerate(history.author.tolist(), start=1))
        return model

    def follow(self, follower: int, followee: int) -> None:
        self.follows.add((follower, followee))

    def unfollow(self, follower: int, followee: int) -> None:
        self.follows.discard((follower, followee))

    def tweet(self, tweet_id: int, author: int) -> None:
        assert not self.tweets or tweet_id > self.tweets[-1][0], "tweet ids must grow"
        self.tweets.append((tweet_id, author))

    def followers(self, user: int) -> int:
        return sum(1 for _, followee in self.follows if followee == user)

    def timeline(self, user: int, limit: int = 50, before: int | None = None) -> list[int]:
        page = []
        for tweet_id, author in reversed(self.tweets):
            if (user, author) in self.follows and (before is None or tweet_id < before):
                page.append(tweet_id)
                if len(page) == limit:
                    break
        return page
