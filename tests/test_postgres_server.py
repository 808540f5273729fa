"""rig/postgres.py's private server: it starts, takes connections on its own port of
127.0.0.1, runs unprivileged, with the settings the apps rely on, makes and drops databases,
and leaves neither a process nor a folder behind when stopped."""

import os

import psutil
import psycopg
import pytest

from rig.postgres import PostgresServer
from rig.processes import wait_until


def setting(url: str, name: str) -> str:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]


def test_it_answers_on_its_own_port_of_localhost_with_durable_settings(postgres_server):
    url = postgres_server.url("postgres")
    assert postgres_server.port != 5432, "never the machine's own PostgreSQL"
    with psycopg.connect(url) as connection:
        address, port = connection.execute("SELECT inet_server_addr()::text, inet_server_port()").fetchone()
    assert (address, port) == ("127.0.0.1/32", postgres_server.port)
    assert setting(url, "listen_addresses") == "127.0.0.1"
    assert setting(url, "fsync") == "on"
    assert int(setting(url, "max_connections")) >= 200


def test_it_runs_as_an_unprivileged_user_who_owns_the_data(postgres_server):
    postmaster = psutil.Process(postgres_server.postmaster_pid())
    uid = postmaster.uids().real
    assert uid != 0
    data_directory = setting(postgres_server.url("postgres"), "data_directory")
    assert os.stat(data_directory).st_uid == uid
    if os.geteuid() != 0:
        assert uid == os.geteuid(), "not root: the server runs as ourselves"


def test_databases_are_created_and_dropped(postgres_server):
    url = postgres_server.create_database("created_here")
    try:
        with psycopg.connect(url) as connection:
            connection.execute("CREATE TABLE t (n integer)")
            connection.execute("INSERT INTO t VALUES (%s)", (7,))
            assert connection.execute("SELECT n FROM t").fetchone() == (7,)
        held = psycopg.connect(url)  # an open session does not stop the drop
    finally:
        postgres_server.drop_database("created_here")
    held.close()
    with psycopg.connect(postgres_server.url("postgres")) as connection:
        names = [name for (name,) in connection.execute("SELECT datname FROM pg_database")]
    assert "created_here" not in names


def test_the_fixture_gives_each_test_an_empty_database(postgres_url):
    with psycopg.connect(postgres_url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", ("public",)
        ).fetchone()
    assert tables == (0,)


def gone(pid: int) -> bool:
    # A zombie has exited; only its parent (here PID 1, after pg_ctl's daemonising) is yet to reap it.
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_leaves_no_process_and_no_folder():
    server = PostgresServer().start()
    postmaster = psutil.Process(server.postmaster_pid())
    pids = [postmaster.pid, *(child.pid for child in postmaster.children(recursive=True))]
    assert len(pids) > 1, "the postmaster and its background workers"
    folder = server.directory
    server.stop()
    wait_until(lambda: all(gone(pid) for pid in pids), 10, "the server's processes to exit")
    assert not folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.url("postgres"), connect_timeout=2)
