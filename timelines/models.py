"""The contract's shapes, once, so the three apps validate and document identically."""

from typing import Annotated, Any, Literal, NamedTuple

from fastapi import Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from timelines.designs import Label

MAX_ID = 2**63  # ids are positive and fit a signed 64-bit integer (docs/CONTRACT.md)


def _decimal(value: object) -> object:
    # Lax parsing reads "+1", " 1" and "1_0" as numbers: many URLs for one resource. A number
    # in a path or a query is its ASCII digits, nothing else.
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be written in decimal digits")
    return value


# After Path/Query: before them, pydantic cannot fold gt/lt into the JSON Schema, and the
# OpenAPI would show them as unknown keywords ("gt") instead of exclusiveMinimum.
Digits = BeforeValidator(_decimal)
UserId = Annotated[int, Path(gt=0, lt=MAX_ID), Digits]
Limit = Annotated[int, Query(ge=1, le=200), Digits]
Before = Annotated[int | None, Query(gt=0, lt=MAX_ID), Digits]


class Strict(BaseModel):
    # An unknown field is a client mistake worth a 422, not something to drop silently.
    model_config = ConfigDict(extra="forbid")


class NewUser(Strict):
    username: Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9_]{1,32}$")]


class NewTweet(Strict):
    user_id: Annotated[StrictInt, Field(gt=0, lt=MAX_ID)]
    # max_length counts code points. A lone surrogate ("\ud800") never gets this far:
    # pydantic refuses it as not Unicode (422).
    text: Annotated[StrictStr, Field(min_length=1, max_length=280)]


class User(BaseModel):
    id: int
    username: str


class Profile(User):
    followers: int
    following: int
    tweets: int


class Tweet(BaseModel):
    id: int
    user_id: int
    text: str
    created_at: str


class TweetRow(NamedTuple):
    """A tweet as the database hands it over, before it becomes a `Tweet`'s JSON: the row
    every query that reads whole tweets selects, in this order."""

    id: int
    user_id: int
    text: str
    created_at: str


class TweetList(BaseModel):
    user_id: int
    tweets: list[Tweet]


class Health(BaseModel):
    status: Literal["ok"]
    approach: Label


class Problem(BaseModel):
    detail: str | list[Any]


class Stats(BaseModel):
    model_config = ConfigDict(extra="allow")
    approach: str
    fanout_backlog: int
