"""A throwaway PostgreSQL cluster for tests: Debian's server binaries, a temp folder, loopback.

The cluster is made with `initdb` under a fresh temp folder, listens on 127.0.0.1 and a free
port (kept across restarts, so URLs stay valid), trusts local connections for its superuser
`vace`, and trades durability for speed (fsync off). As root the server runs as the `postgres`
OS user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.live_server import free_port

PG_LIB = Path("/usr/lib/postgresql")
SUPERUSER = "vace"
RUN_AS = "postgres"  # OS user for the server when the tests run as root


def find_bin_dir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: $VACE_TEST_PG_BIN, else the newest
    /usr/lib/postgresql/<ver>/bin, else wherever PATH has them. None when absent."""
    candidates: list[Path] = []
    if env := os.environ.get("VACE_TEST_PG_BIN"):
        candidates.append(Path(env))
    if PG_LIB.is_dir():
        versions = [p for p in PG_LIB.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql; "
            "run scripts/ensure-postgres.sh (as root: apt-get install -y postgresql)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root but there is no {RUN_AS!r} OS user to run the server as"
    return None


class PostgresCluster:
    """One running server. `url(db)` gives SQLAlchemy URLs (psycopg 3 driver)."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self._template: str | None = None

    # -------------------------------------------------------------- lifecycle
    @classmethod
    def create(cls, bin_dir: Path | None = None) -> PostgresCluster:
        """initdb + start. Raises RuntimeError when the binaries are missing or a step fails."""
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(missing_reason() or "no PostgreSQL binaries")
        root = Path(tempfile.mkdtemp(prefix="vace-pg-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(bin_dir, root)
        try:
            cluster._initdb()
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "max_connections": "200",
            "shared_buffers": "32MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# vace-server tests\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        self._pg_ctl("start", "-l", str(self.log_path), "-t", "60")

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (`mode`: smart | fast | immediate) and waits for it."""
        self._pg_ctl("stop", "-m", mode, "-t", "60")

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        """Stops the server (every connection is cut), optionally stays down, then starts it
        again on the same port."""
        self.stop(mode)
        if down_seconds:
            time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        """Stops the server if it runs and removes its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -------------------------------------------------------------- databases
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def create_database(self, template: str | None = None) -> str:
        """A new, empty (or copied from `template`) database. Returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with self.admin() as conn:
            conn.execute(query)
        return self.url(name)

    def migrated_database(self) -> str:
        """A new database already at the newest schema (copied from a template migrated once)."""
        if self._template is None:
            from vace_server.tasks import db

            url = self.create_database()
            engine = db.make_engine(url)
            try:
                db.upgrade(engine)
            finally:
                engine.dispose()
            self._template = url.rsplit("/", 1)[1]
        return self.create_database(template=self._template)

    def drop_database(self, url: str) -> None:
        """Drops the database of `url`, cutting off whoever is still connected."""
        name = url.rsplit("/", 1)[1]
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit superuser connection to the `postgres` database (close it after use)."""
        return psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    # -------------------------------------------------------------- helpers
    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", *args)

    def _run(self, program: str, *args: str) -> None:
        cmd = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, check=False)
        if done.returncode != 0:
            log = (
                self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            )
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}\n{log}"
            )
