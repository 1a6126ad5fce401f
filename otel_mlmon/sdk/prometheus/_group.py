"""The workers of one server, as members of a shared directory.

A *group* is the set of processes that serve one endpoint: those started by the same parent (the
gunicorn master, the ``uvicorn --workers`` supervisor, a shell for a lone process) with the same
``service.name`` and Prometheus address, plus any process forked from one of them (gunicorn
``--preload``). They find each other through a directory under ``$TMPDIR/otel-mlmon-<uid>``
(``OTEL_MLMON_PROMETHEUS_DIR`` moves it), private to the user (mode 0700).

Each member owns, in that directory:

- a Unix socket ``<id>.sock``: connecting to it asks for a snapshot (the member collects and
  writes its files, then answers), and a refused connection says the member is gone, whether
  it exited or was SIGKILLed (the kernel closes the socket either way);
- its snapshot files (:mod:`._files`).

One member at a time holds an exclusive ``flock`` on ``owner.lock``: it serves the port. The
kernel releases the lock when the holder dies, however it dies, and the next member polling for
it takes over. Joining is serialised by ``join.lock``; a member that finds no live member starts
the group over (a lone process restarted counts from zero, as Prometheus expects).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import selectors
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from otel_mlmon import _env
from otel_mlmon._guard import report_internal_error
from otel_mlmon.environment_variables import OTEL_MLMON_PROMETHEUS_DIR
from otel_mlmon.sdk.prometheus import _files
from otel_mlmon.sdk.prometheus._reader import ScrapeReader

#: How often a member looks for work: a request, the port to take over, a bind to retry.
POLL_S: Final = 0.2
#: Longest a scrape waits for the other members' snapshots; a member that has not answered by
#: then is served from its previous snapshot.
SNAPSHOT_TIMEOUT_S: Final = 3.0
#: A group directory untouched this long with no live member is removed by the next joiner of
#: any group (its server was restarted under a new master long ago).
ABANDONED_AFTER_S: Final = 3600.0
_ASK: Final = b"S"
_DONE: Final = b"K"


class UnusableDirectory(Exception):
    """The shared directory cannot be used safely (not ours, not private, not writable)."""


def _private_directory(path: Path) -> Path:
    """``path`` created if missing, and checked to be a real directory of ours, mode 0700."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise UnusableDirectory(f"{path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise UnusableDirectory(f"{path} is not a directory")
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnusableDirectory(f"{path} must belong to this user with mode 0700")
    return path


def base_directory() -> Path:
    """Where the groups of this user live (created on first use)."""
    configured = _env.raw(OTEL_MLMON_PROMETHEUS_DIR)
    if configured is not None:
        return _private_directory(Path(configured))
    return _private_directory(Path(tempfile.gettempdir()) / f"otel-mlmon-{os.getuid()}")


def _started(pid: int) -> float:
    """Start time of process ``pid`` (tells a parent apart from a later one with its pid)."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # gone, or no permission: the pid alone then
        return 0.0


def group_directory(host: str, port: int, service_name: str) -> Path:
    """The directory of the group this process belongs to, created if missing.

    Port 0 asks for a port of this process's own: its group is this process (and its forks).
    """
    if port == 0:
        identity: list[object] = [host, 0, os.getpid(), secrets.token_hex(8)]
    else:
        parent = os.getppid()
        identity = [host, port, parent, _started(parent), service_name]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    base = base_directory()
    directory = _private_directory(base / f"{port}-{digest}")
    _remove_abandoned_groups(base, keep=directory)
    return directory


@contextlib.contextmanager
def _flocked(path: Path, blocking: bool = True) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _answers(path: Path) -> bool:
    """Whether a member listens on the socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(SNAPSHOT_TIMEOUT_S)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def live_members(directory: Path) -> set[str]:
    """Ids of the members whose socket answers."""
    return {path.stem for path in directory.glob("*.sock") if _answers(path)}


def _remove_abandoned_groups(base: Path, keep: Path) -> None:
    """Remove the directories of groups none of whose members is alive and that nobody touched
    for :data:`ABANDONED_AFTER_S` (servers restarted since, under a new master): best effort,
    skipping a group someone is joining."""
    abandoned = time.time() - ABANDONED_AFTER_S
    for directory in base.iterdir():
        with contextlib.suppress(OSError):
            if directory == keep or not directory.is_dir():
                continue
            if directory.stat().st_mtime > abandoned:
                continue
            with _flocked(directory / "join.lock", False) as ours:
                if ours and not live_members(directory):
                    shutil.rmtree(directory, ignore_errors=True)


def _pid_of(member_id: str) -> int:
    return int(member_id.split("-", 1)[0])


class Member:
    """This process in its group: answers snapshot requests and competes for the port.

    ``on_tick`` runs on the member's thread every :data:`POLL_S` at most (the endpoint takes
    the port over and retries a failed bind there).
    """

    def __init__(self, directory: Path, reader: ScrapeReader, on_tick: Callable[[], None]) -> None:
        self.directory = directory
        self.reader = reader
        self._on_tick = on_tick
        self._join()

    def _join(self) -> None:
        self.pid = os.getpid()
        self.id = f"{self.pid}-{secrets.token_hex(4)}"
        self._snapshot_lock = threading.Lock()
        self._collect_lock = threading.Lock()
        self._closed = threading.Event()
        self._owner_fd: int | None = None
        self._control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for attempt in (1, 2):
            try:
                with _flocked(self.directory / "join.lock"):
                    if not live_members(self.directory):
                        _files.remove_all(self.directory)
                    self._control.bind(str(self._socket_path))
                    self._control.listen(64)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
                # Swept as abandoned by another group's joiner just now: create it again.
                _private_directory(self.directory)
        self._control.settimeout(POLL_S)
        self._thread = threading.Thread(
            target=self._run, name="otel-mlmon-prometheus-member", daemon=True
        )

    def start(self) -> None:
        """Start answering requests and watching for the port (the member's thread)."""
        self._thread.start()

    @property
    def _socket_path(self) -> Path:
        return self.directory / f"{self.id}.sock"

    @property
    def leads(self) -> bool:
        """Whether this member holds the group's lock (it is the one to serve the port)."""
        return self._owner_fd is not None

    def try_lead(self) -> bool:
        """Take the group's lock if nobody holds it; whether this member holds it now."""
        if self._owner_fd is None and not self._closed.is_set():
            fd = os.open(self.directory / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._owner_fd = fd
        return self.leads

    def snapshot(self) -> None:
        """Collect this process's metrics and write them for the port owner."""
        with self._snapshot_lock:
            families = self.reader.families()
            if families:  # nothing once the reader is shut down: keep the last snapshot
                _files.write_snapshot(self.directory, self.id, self.pid, families)

    def collect_group(self) -> list[object]:
        """As the port owner: every member's snapshot, fresh where the member answers in time,
        merged; dead members retired first."""
        with self._collect_lock:  # two scrapers at once must not retire a member twice
            return self._collect_group()

    def _collect_group(self) -> list[object]:
        self.snapshot()
        asked = self._ask_others()
        live = {self.id, *asked}
        live_pids = {_pid_of(member) for member in live}
        for member in _files.member_ids(self.directory) - live:
            _files.retire(self.directory, member, _pid_of(member), _pid_of(member) in live_pids)
        return list(_files.merged(self.directory))

    def _ask_others(self) -> set[str]:
        """Ask every other member for a snapshot and wait for the answers (bounded); remove
        the sockets of members that are gone. Returns the ids of the live ones."""
        live: set[str] = set()
        with selectors.DefaultSelector() as waiting:
            for path in self.directory.glob("*.sock"):
                if path.stem == self.id:
                    continue
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.settimeout(SNAPSHOT_TIMEOUT_S)
                try:
                    connection.connect(str(path))
                    connection.sendall(_ASK)
                except OSError:
                    connection.close()
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                live.add(path.stem)
                connection.setblocking(False)
                waiting.register(connection, selectors.EVENT_READ)
            deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
            while waiting.get_map() and (left := deadline - time.monotonic()) > 0:
                for key, _ in waiting.select(left):
                    waiting.unregister(key.fileobj)
                    key.fileobj.close()  # type: ignore[union-attr]
            for key in list(waiting.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
        return live

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self._on_tick()
                self._serve_one_request()
            except Exception as exc:
                if self._closed.is_set():
                    return
                report_internal_error("prometheus group member", exc)

    def _serve_one_request(self) -> None:
        try:
            connection, _ = self._control.accept()
        except (TimeoutError, OSError):
            return
        with connection:
            connection.settimeout(SNAPSHOT_TIMEOUT_S)
            with contextlib.suppress(OSError):
                if connection.recv(1) == _ASK:
                    self.snapshot()
                    connection.sendall(_DONE)

    def close(self) -> None:
        """Leave the group: a last snapshot (this worker's totals outlive it), then the socket
        goes and the lock is released, so another member takes the port over at once. The
        last member to leave removes the directory."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * POLL_S + SNAPSHOT_TIMEOUT_S)
        self._control.close()
        with contextlib.suppress(OSError), _flocked(self.directory / "join.lock"):
            if live_members(self.directory) - {self.id}:
                try:
                    self.snapshot()
                except Exception as exc:
                    report_internal_error("prometheus group member", exc)
            else:
                shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self._socket_path.unlink()
        if self._owner_fd is not None:
            os.close(self._owner_fd)
            self._owner_fd = None

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's socket and lock (closing the copies, never
        the parent's), then join the group as a member of its own."""
        self._control.close()
        if self._owner_fd is not None:
            os.close(self._owner_fd)  # the parent keeps the lock: its descriptor stays open
        self._join()
        self.start()


def is_unusable_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the directory machinery cannot work here (no Unix sockets, a
    path too long for one)."""
    return isinstance(exc, UnusableDirectory) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENAMETOOLONG, errno.EAFNOSUPPORT)
    )
