"""A private Mosquitto broker and PostgreSQL server on free loopback ports.

For the tests, the benchmarks and a one-machine trial: each runs the Debian package's own
binaries (``mosquitto``; ``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/*/bin``) in a
temporary folder, never the system's services. ``./dev test`` installs the packages.

The broker's configuration queues without dropping: Mosquitto's default
``max_queued_messages 1000`` drops messages for a lagging subscriber even at QoS 1
(mosquitto.conf(5)), so both queue limits are 0 (no limit); persistence is on and the
state is kept on disk, so a restarted broker resumes its persistent
sessions with their queued messages. The state is written on a clean stop (SIGTERM) and every
5 s in between (saving at every change rewrites the whole file per message: far too slow).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from twin._errors import DataMissingError

__all__ = ["MOSQUITTO_CONF", "Mosquitto", "Postgres", "free_port", "wait_port"]

#: The broker configuration (``{port}`` and ``{folder}`` filled in).
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
persistence true
persistence_location {folder}/
persistence_file broker.db
autosave_on_changes false
autosave_interval 5
persistent_client_expiration 1d
set_tcp_nodelay true
log_dest file {folder}/broker.log
log_type error
log_type warning
"""


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, *, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    """Return once something accepts connections on ``port``; raise ``TimeoutError`` if not."""
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > end:
                msg = f"nothing listens on {host}:{port} after {timeout:.0f} s"
                raise TimeoutError(msg) from None
            time.sleep(0.02)


def _which(name: str, *extra: str) -> str:
    found = shutil.which(name)
    for candidate in (found, *extra):
        if candidate and Path(candidate).is_file():
            return candidate
    msg = f"{name} is not installed: `apt-get install {name}` (./dev test does it)"
    raise DataMissingError(msg)


class Mosquitto:
    """A Mosquitto broker in its own folder; :meth:`stop` and :meth:`start` keep its state.

    >>> with Mosquitto() as broker:  # doctest: +SKIP
    ...     broker.url
    'mqtt://127.0.0.1:41234'
    """

    def __init__(
        self, folder: str | Path | None = None, *, port: int | None = None, extra: str = ""
    ) -> None:
        self._own = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="twin-mosquitto-"))
        self.port = port or free_port()
        self.exe = _which("mosquitto", "/usr/sbin/mosquitto")
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text(MOSQUITTO_CONF.format(port=self.port, folder=self.folder) + extra)
        if os.geteuid() == 0:
            # started as root, mosquitto drops to its own user: which must be able to write its
            # persistence file and log here, or a restart silently loses every session
            for path in (self.folder, self.conf):
                shutil.chown(path, "mosquitto")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        self.proc = subprocess.Popen(  # noqa: S603 - our own binary and config
            [self.exe, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            log = self.folder / "broker.log"
            detail = log.read_text()[-500:] if log.exists() else ""
            self.stop()
            msg = f"mosquitto did not start on port {self.port}: {detail}"
            raise RuntimeError(msg) from None
        return self

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGTERM: it writes its persistence file first; SIGKILL if ``kill``)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop (state saved) and start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own:
            shutil.rmtree(self.folder, ignore_errors=True)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    exe = shutil.which("initdb")
    if exe:
        return Path(exe).parent
    msg = "PostgreSQL is not installed: `apt-get install postgresql` (./dev test does it)"
    raise DataMissingError(msg)


class Postgres:
    """A PostgreSQL cluster in a temporary folder, reachable at :attr:`url` (trust auth).

    PostgreSQL refuses to run as root: then the cluster belongs to the ``postgres`` system
    user the Debian package creates, and its commands run through ``runuser``.
    """

    def __init__(self, *, port: int | None = None, fsync: bool = True) -> None:
        self.bin = _pg_bin()
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="twin-postgres-"))
        self.data = self.folder / "data"
        self.fsync = fsync
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.user = "postgres" if self._as else os.environ.get("USER", "postgres")

    @property
    def url(self) -> str:
        """``postgresql://USER@127.0.0.1:PORT/postgres``."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - our own binaries
            [*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start(self) -> Postgres:
        """Make the cluster (first time) and start the server; wait until it answers."""
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            f"-c fsync={'on' if self.fsync else 'off'} -c max_connections=50"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "start",
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
