from pydantic import Field
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    """Read from the environment; the same names in all three apps (CONTRACT.md)."""

    database_url: str = "sqlite:///timelines.db"
    redis_url: str = "redis://localhost:6379/0"
    timeline_length: int = Field(800, ge=1)
    celebrity_threshold: int = Field(10_000, ge=1)
    # Followers per Lua call. On full 800-entry timelines a follower costs Redis ~7-10 µs
    # (bench/fanout.py), so 256 keeps one call near 2-3 ms, under the 5 ms a single call
    # may hold Redis away from every other client.
    fanout_chunk: int = Field(256, ge=1)
    reader_connections: int = Field(4, ge=1)
