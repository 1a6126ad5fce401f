"""The workers of one server, as members of a shared directory.

A *group* is the set of processes that serve one endpoint: those started by the same parent (the
gunicorn master, the ``uvicorn --workers`` supervisor, a shell for a lone process) with the same
``service.name`` and Prometheus address, plus any process forked from one of them (gunicorn
``--preload``). They find each other through a directory under ``$TMPDIR/otel-mlmon-<uid>``
(``OTEL_MLMON_PROMETHEUS_DIR`` moves it), private to the user (mode 0700).

Each member owns, in that directory:

- a marker file ``<id>.member`` and a Unix socket (in Linux's abstract namespace, so a long
  ``$TMPDIR`` cannot exceed the socket path limit; beside the marker elsewhere): connecting to
  it asks for a snapshot (the member collects and writes its files, then answers), and a
  refused connection says the member is gone, whether it exited or was SIGKILLed (the kernel
  closes the socket either way);
- its snapshot files (:mod:`._files`).

One member at a time holds an exclusive ``flock`` on ``owner.lock``: it serves the port. The
kernel releases the lock when the holder dies, however it dies, and the next member polling for
it takes over. Joining is serialised by ``join.lock``.

The group's totals live as long as its *anchor*, the process whose end ends the group: the
parent (the server's master) or, for port 0, the configuring process itself. Workers recycled
all at once (``max_requests``) or a lone process restarted by the same shell continue the totals
their predecessors left, so a counter never goes backwards; once the anchor is gone and no
member is alive, the next process to set up any group removes the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import selectors
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from otel_mlmon import _env
from otel_mlmon._guard import report_internal_error
from otel_mlmon._runtime_dir import private_directory, user_temp_directory
from otel_mlmon.environment_variables import OTEL_MLMON_PROMETHEUS_DIR
from otel_mlmon.sdk.prometheus import _files
from otel_mlmon.sdk.prometheus._reader import ScrapeReader

#: How often a member looks for work: a request, the port to take over, a bind to retry.
POLL_S: Final = 0.2
#: Longest a scrape waits for the other members' snapshots; a member that has not answered by
#: then is served from its previous snapshot.
SNAPSHOT_TIMEOUT_S: Final = 3.0
#: The file that names a group's anchor: ``[pid, start time]``.
ANCHOR_FILE: Final = "anchor.json"
#: Present while the group's port is held by another program (said once per group).
BIND_FAILED_FILE: Final = "bind-failed"
_ASK: Final = b"S"
_DONE: Final = b"K"


def base_directory() -> Path:
    """Where the groups of this user live (created on first use)."""
    configured = _env.raw(OTEL_MLMON_PROMETHEUS_DIR)
    if configured is not None:
        return private_directory(Path(configured))
    return private_directory(user_temp_directory())


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
    anchor = os.getpid() if port == 0 else os.getppid()
    started = _started(anchor)
    identity = [host, port, anchor, started, service_name]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    base = base_directory()
    directory = private_directory(base / f"{port}-{digest}")
    if not (directory / ANCHOR_FILE).exists():
        partial = directory / f".{ANCHOR_FILE}.{os.getpid()}.partial"
        partial.write_text(json.dumps([anchor, started]))
        os.replace(partial, directory / ANCHOR_FILE)
    _remove_abandoned_groups(base, keep=directory)
    return directory


def anchored_to(directory: Path, pid: int) -> bool:
    """Whether the group in ``directory`` ends with process ``pid``."""
    try:
        return bool(json.loads((directory / ANCHOR_FILE).read_text())[0] == pid)
    except (OSError, ValueError, IndexError):
        return False


def _anchor_alive(directory: Path) -> bool:
    try:
        pid, started = json.loads((directory / ANCHOR_FILE).read_text())
    except (OSError, ValueError):
        return False
    return bool(_started(pid) == started and started)


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


_ABSTRACT_SOCKETS: Final = sys.platform.startswith("linux")


def socket_address(directory: Path, member_id: str) -> str:
    """Where the member ``member_id`` of the group in ``directory`` listens."""
    if _ABSTRACT_SOCKETS:
        group = hashlib.sha256(str(directory).encode()).hexdigest()[:24]
        return f"\0otel-mlmon/{group}/{member_id}"
    return str(directory / f"{member_id}.sock")


def members(directory: Path) -> set[str]:
    """Ids of the members that joined and did not leave (alive, or killed)."""
    return {path.stem for path in directory.glob("*.member")}


def _connect(directory: Path, member_id: str) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(SNAPSHOT_TIMEOUT_S)
    try:
        connection.connect(socket_address(directory, member_id))
    except OSError:
        connection.close()
        return None
    return connection


def live_members(directory: Path) -> set[str]:
    """Ids of the members whose socket answers."""
    live = set()
    for member in members(directory):
        connection = _connect(directory, member)
        if connection is not None:
            connection.close()
            live.add(member)
    return live


def _forget_member(directory: Path, member_id: str) -> None:
    for name in (f"{member_id}.member", f"{member_id}.sock"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def _remove_abandoned_groups(base: Path, keep: Path) -> None:
    """Remove the directories of groups whose anchor is gone and none of whose members is
    alive (a server stopped or restarted under a new master): best effort, skipping a group
    someone is joining."""
    for directory in base.iterdir():
        with contextlib.suppress(OSError):
            if directory == keep or not directory.is_dir() or _anchor_alive(directory):
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
                    self._control.bind(socket_address(self.directory, self.id))
                    self._control.listen(64)
                    (self.directory / f"{self.id}.member").touch(mode=0o600)
                break
            except FileNotFoundError:
                if attempt == 2:
                    raise
                # Swept as abandoned by another group's joiner just now: create it again.
                private_directory(self.directory)
        self._control.settimeout(POLL_S)
        self._thread = threading.Thread(
            target=self._run, name="otel-mlmon-prometheus-member", daemon=True
        )

    def start(self) -> None:
        """Start answering requests and watching for the port (the member's thread)."""
        self._thread.start()

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

    def first_to_fail_binding(self) -> bool:
        """Record that the group's port could not be bound; whether no member had recorded it
        yet (the group says so once, whichever member holds the port when)."""
        try:
            os.close(os.open(self.directory / BIND_FAILED_FILE, os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True

    def bound(self) -> None:
        """The port is served again: a later failure is news."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / BIND_FAILED_FILE).unlink()

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
        """Ask every other member for a snapshot and wait for the answers (bounded); forget
        the members that are gone. Returns the ids of the live ones."""
        live: set[str] = set()
        with selectors.DefaultSelector() as waiting:
            for member in members(self.directory) - {self.id}:
                connection = _connect(self.directory, member)
                try:
                    if connection is None:
                        raise ConnectionRefusedError
                    connection.sendall(_ASK)
                except OSError:
                    if connection is not None:
                        connection.close()
                    _forget_member(self.directory, member)
                    continue
                live.add(member)
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
        last member of a group anchored to this process removes the directory."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * POLL_S + SNAPSHOT_TIMEOUT_S)
        self._control.close()
        with contextlib.suppress(OSError), _flocked(self.directory / "join.lock"):
            alone = not live_members(self.directory) - {self.id}
            if alone and anchored_to(self.directory, self.pid):
                shutil.rmtree(self.directory, ignore_errors=True)
            else:
                try:
                    self.snapshot()
                except Exception as exc:
                    report_internal_error("prometheus group member", exc)
        _forget_member(self.directory, self.id)
        if self._owner_fd is not None:
            os.close(self._owner_fd)
            self._owner_fd = None
            # Wake the others now rather than at their next poll: one takes the port over in
            # milliseconds, so a scrape during a graceful recycle rarely finds it closed.
            live_members(self.directory)

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's socket and lock (closing the copies, never
        the parent's), then join the group as a member of its own."""
        self._control.close()
        if self._owner_fd is not None:
            os.close(self._owner_fd)  # the parent keeps the lock: its descriptor stays open
        self._join()
        self.start()
