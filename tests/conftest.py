import itertools

import pytest

from harness import APPS, AppServer, RedisServer
from rig.postgres import PostgresServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """Started the first time a test asks for it: a run of SQLite tests alone never needs
    PostgreSQL installed."""
    with PostgresServer() as server:
        yield server


_databases = itertools.count()


@pytest.fixture
def new_postgres_database(request):
    """new_postgres_database() -> the URL of one more fresh database (one per app, since each
    app owns its store); all of them dropped after the test, once its apps have stopped
    (start_app depends on this fixture, and pytest tears down in reverse)."""
    names: list[str] = []

    def create() -> str:
        names.append(f"test_{next(_databases)}")
        return request.getfixturevalue("postgres_server").create_database(names[-1])

    yield create
    for name in names:
        request.getfixturevalue("postgres_server").drop_database(name)


@pytest.fixture
def postgres_url(new_postgres_database):
    """A fresh, empty database of the shared server, dropped after the test."""
    return new_postgres_database()


@pytest.fixture
def start_app(tmp_path, redis_server, new_postgres_database):
    """start_app(module, workers=1, prepare=None, **settings) -> a running AppServer on fresh
    stores; prepare(database_path, redis_url), when given, fills them before it starts."""
    started: list[tuple[AppServer, int]] = []
    names = itertools.count()

    def start(module: str, workers: int = 1, prepare=None, **settings) -> AppServer:
        db = redis_server.take_db()
        app = AppServer(
            module, tmp_path / f"{module}-{next(names)}.db", redis_server.url(db), workers=workers, **settings
        )
        started.append((app, db))
        if prepare:
            prepare(app.database, redis_server.url(db))
        return app.start()

    yield start
    for app, db in started:
        app.stop()
        redis_server.give_back_db(db)


@pytest.fixture(scope="module", params=APPS)
def app(request, tmp_path_factory, redis_server):
    """One running app per approach, shared by a module's contract tests."""
    db = redis_server.take_db()
    server = AppServer(request.param, tmp_path_factory.mktemp(request.param) / "app.db", redis_server.url(db))
    server.start()
    yield server
    server.stop()
    redis_server.give_back_db(db)


@pytest.fixture(scope="module", params=APPS)
def secured_app(request, tmp_path_factory, redis_server):
    """Like `app`, but started with API_TOKEN (its value: secured_app.env["API_TOKEN"]), so
    that every call that changes state needs it."""
    db = redis_server.take_db()
    server = AppServer(
        request.param,
        tmp_path_factory.mktemp(request.param) / "app.db",
        redis_server.url(db),
        api_token="ddia-s3cret_token-0123456789",
    )
    server.start()
    yield server
    server.stop()
    redis_server.give_back_db(db)
