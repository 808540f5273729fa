"""A private PostgreSQL server for the tests and the bench (issue 13), the counterpart of
rig/processes.py's RedisServer: `initdb` into a temporary folder of its own, `pg_ctl
start` on a free port of 127.0.0.1 with its own unix-socket directory, trust
authentication, and everything it created removed at stop. The machine's own PostgreSQL
(5432, if any) is never touched.

initdb refuses to run as root, so as root the server runs as an unprivileged system user
(`timelines-pg`, created once); otherwise as whoever we are.
"""

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import psycopg
from psycopg import sql

from rig.processes import free_port, pinned, wait_until

NO_POSTGRES = (
    "PostgreSQL's initdb not found: run scripts/ensure-postgres (as root it installs Debian's "
    "postgresql package), or install it yourself: apt-get install postgresql / brew install postgresql"
)
SERVER_USER = "timelines-pg"  # the unprivileged account initdb and postgres run as, when we are root
SUPERUSER = "timelines"  # the database role every URL names


def bin_dir() -> Path:
    """The newest PostgreSQL's binaries: Debian keeps each major version side by side."""
    versions = [Path(p) for p in Path("/usr/lib/postgresql").glob("*/bin") if (Path(p) / "initdb").exists()]
    if versions:
        return max(versions, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])
    if initdb := shutil.which("initdb"):  # Homebrew and others put them on the PATH
        return Path(initdb).resolve().parent
    raise SystemExit(NO_POSTGRES)


def server_account() -> pwd.struct_passwd | None:
    """Whom to run the server as: None (ourselves) unless we are root, then SERVER_USER,
    created as a system account the first time."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
        )
        return pwd.getpwnam(SERVER_USER)


@dataclass(eq=False)  # a process is itself: equal, and hashed, by identity
class PostgresServer:
    """A PostgreSQL server of our own. fsync stays on, since the apps promise durability and
    the bench should pay for it as production would; shared_buffers may be small."""

    cpus: tuple[int, ...] = ()
    port: int = field(default_factory=free_port)
    shared_buffers: str = "128MB"
    # Every test and bench app holds a pool; PostgreSQL's default of 100 runs out.
    max_connections: int = 300
    directory: Path | None = None  # the temporary folder, made at start, removed at stop
    account: pwd.struct_passwd | None = None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def start(self) -> "PostgresServer":
        binaries = bin_dir()
        self.account = server_account()
        # Under the system temp folder, not pytest's: that one is root's alone (0700), and the
        # server's account has to reach its data directory.
        self.directory = Path(tempfile.mkdtemp(prefix=f"timelines-pg-{self.port}-"))
        self.socket_dir.mkdir()
        if self.account is not None:
            for path in (self.directory, self.socket_dir):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        try:
            self._run(
                [binaries / "initdb", "--pgdata", self.data_dir, "--username", SUPERUSER, "--auth", "trust"]
                + ["--encoding", "UTF8", "--locale", "C"]
            )
            self._configure()
            self._run(
                pinned(
                    [str(binaries / "pg_ctl"), "start", "--wait", "--pgdata", str(self.data_dir)], self.cpus
                )
                + ["--log", str(self.log), "--silent"],
                # Own session: a Ctrl-C reaches only the bench, which stops the server itself.
                start_new_session=True,
            )
            wait_until(self.answers, 30, f"postgres on port {self.port} (log: {self.log})")
        except BaseException:
            self.stop()
            raise
        return self

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": self.max_connections,
            "shared_buffers": self.shared_buffers,
            "fsync": "on",
            "synchronous_commit": "on",
        }
        lines = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"\n# rig/postgres.py\n{lines}")

    def _run(self, command: list, **popen) -> None:
        """Runs a PostgreSQL tool as the server's account; its output only when it fails."""
        as_account = {}
        if self.account is not None:
            as_account = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(part) for part in command],
            cwd=self.directory,  # the account may not enter ours
            env={**os.environ, "LC_ALL": "C"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **as_account,
            **popen,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}):\n{result.stdout}{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        if self.directory is None or not self.log.exists():
            return ""
        return f"\n{self.log} ends:\n{self.log.read_text(errors='replace')[-2000:]}"

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def postmaster_pid(self) -> int | None:
        """The running server's process id, from its pid file; None once it has stopped."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def url(self, name: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of `template` (a file-level copy: how the bench
        gives every app run the seeded state afresh without loading it again)."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self._admin(statement)
        return self.url(name)

    def has_database(self, name: str) -> bool:
        with psycopg.connect(self.url("postgres")) as connection:
            return (
                connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is not None
            )

    def rename_database(self, name: str, new_name: str) -> None:
        self._admin(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(new_name))
        )

    def drop_database(self, name: str) -> None:
        # FORCE: an app stopped by SIGKILL may leave its pool's sessions behind for a moment.
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        # CREATE and DROP DATABASE refuse to run inside a transaction block.
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(statement)

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (mode "immediate" is a crash: no checkpoint) and removes the folder
        start made, and nothing else."""
        if self.directory is None:
            return
        if self.postmaster_pid() is not None:
            self._run([bin_dir() / "pg_ctl", "stop", "--wait", "--pgdata", self.data_dir, "--mode", mode])
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> Self:
        return self if self.directory is not None else self.start()

    def __exit__(self, *_) -> None:
        self.stop()
