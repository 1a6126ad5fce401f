"""The secret that signs prediction ids: from the caller, the environment, or a host key file.

Precedence: the ``labels=Labels(key=...)`` keyword, then ``OTEL_MLMON_LABEL_KEY``, then a key
shared by every process of this host and user: a file ``label.key`` created once, atomically,
with mode 0600, in the first usable directory of

1. ``$XDG_CACHE_HOME/otel-mlmon`` (default ``~/.cache/otel-mlmon``): survives reboots, so a
   label that comes days later still verifies;
2. ``$XDG_RUNTIME_DIR/otel-mlmon``;
3. ``<tempdir>/otel-mlmon-<uid>``, a directory of mode 0700 owned by the user.

So ``gunicorn -w N`` and ``uvicorn --workers N`` share a key without configuration; replicas on
other hosts need ``OTEL_MLMON_LABEL_KEY``. A directory or file that another user can read or
own is never used. When no directory is usable the key is per process (a warning says so
once). Rotation: the previous key (``OTEL_MLMON_LABEL_KEY_PREVIOUS``, or
``Labels(previous_keys=...)``) still verifies ids it signed.

No message, log record, exception or ``repr`` ever contains a key.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from otel_mlmon import _env
from otel_mlmon._guard import warn_once
from otel_mlmon._runtime_dir import UnusableDirectory, private_directory, user_temp_directory
from otel_mlmon.environment_variables import OTEL_MLMON_LABEL_KEY, OTEL_MLMON_LABEL_KEY_PREVIOUS
from otel_mlmon.exceptions import ConfigurationError

#: Shortest secret accepted, in characters (a 16-character random secret has >= 64 bits).
MIN_KEY_LENGTH: Final = 16
KEY_FILE: Final = "label.key"
_logger: Final = logging.getLogger("otel_mlmon")
_PERSON: Final = b"otel-mlmon key"


def derive(secret: str | bytes) -> bytes:
    """The 32-byte signing key of a secret (any length from :data:`MIN_KEY_LENGTH`)."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    return hashlib.blake2b(raw, digest_size=32, person=_PERSON).digest()


def _checked(secret: object, where: str) -> str | bytes:
    if not isinstance(secret, (str, bytes)):
        raise ConfigurationError(f"{where} must be a string, not {type(secret).__name__}")
    if len(secret.strip()) < MIN_KEY_LENGTH:
        # Never the value: only its length.
        raise ConfigurationError(
            f"{where} is {len(secret.strip())} characters; use at least {MIN_KEY_LENGTH} "
            "random ones (for example: openssl rand -base64 32)"
        )
    return secret.strip()


def resolve(key: str | bytes | None, previous: Sequence[str | bytes]) -> tuple[bytes, ...]:
    """Signing keys, current first then previous ones, as :func:`derive` makes them.

    Raises:
        ConfigurationError: a key shorter than :data:`MIN_KEY_LENGTH` or not a string.
    """
    if key is not None:
        current = derive(_checked(key, "Labels(key=...)"))
    else:
        from_env = _env.raw(OTEL_MLMON_LABEL_KEY)
        if from_env is not None:
            current = derive(_checked(from_env, OTEL_MLMON_LABEL_KEY))
        else:
            current = derive(host_secret())
    older = [derive(_checked(k, "Labels(previous_keys=...)")) for k in previous]
    if not previous:
        from_env = _env.raw(OTEL_MLMON_LABEL_KEY_PREVIOUS)
        if from_env is not None:
            older.append(derive(_checked(from_env, OTEL_MLMON_LABEL_KEY_PREVIOUS)))
    return (current, *[k for k in older if k != current])


def _candidates() -> Iterator[Path]:
    cache = _env.raw("XDG_CACHE_HOME")
    if cache is None:
        try:
            cache = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no HOME and no password entry (some containers)
            cache = None
    if cache is not None:
        yield Path(cache) / "otel-mlmon"
    runtime = _env.raw("XDG_RUNTIME_DIR")
    if runtime is not None:
        yield Path(runtime) / "otel-mlmon"
    yield user_temp_directory()


def _private_dir(path: Path) -> bool:
    """Whether ``path`` is (now) a directory of ours that no one else can read or write."""
    try:
        private_directory(path)
    except UnusableDirectory:
        return False
    return True


def _read(path: Path) -> str | None:
    """The secret in ``path`` if it is a private regular file of ours, else ``None``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        uid = os.getuid() if hasattr(os, "getuid") else info.st_uid
        if info.st_uid != uid or info.st_mode & 0o077 or info.st_size > 4096:
            return None
        text = file.read().decode("ascii", "replace").strip()
    return text if len(text) >= MIN_KEY_LENGTH else None


def _create(directory: Path) -> str | None:
    """Create ``label.key`` in ``directory`` unless another process did first; its secret."""
    target = directory / KEY_FILE
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    temporary = directory / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, target)  # atomic, and never replaces a key another process made
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                return None
        return _read(target)
    except OSError:
        return None
    finally:
        try:  # noqa: SIM105 (a cleanup that must not mask the result)
            os.unlink(temporary)
        except OSError:
            pass


def host_secret() -> str:
    """The secret every process of this host and user shares (made on first use)."""
    for directory in _candidates():
        existing = _read(directory / KEY_FILE)
        if existing is not None:
            return existing
        if not _private_dir(directory):
            continue
        made = _create(directory)
        if made is not None:
            return made
    warn_once(
        "label-key-per-process",
        "otel-mlmon: no private directory for the label key file (tried the cache, runtime "
        "and temporary directories); prediction ids verify only in this process. Set %s.",
        OTEL_MLMON_LABEL_KEY,
    )
    return secrets.token_urlsafe(32)
