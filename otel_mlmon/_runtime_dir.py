"""The one place that decides where otel-mlmon keeps per-user files, and that they are private.

Two things live on disk: the label key every process of a host shares (``monitor._keys``) and
the files through which the workers of a server share one Prometheus port
(``sdk.prometheus``). Both must be readable by this user only: a directory another user can
list or write would let them read the key or plant files a worker trusts.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


class UnusableDirectory(Exception):
    """A directory cannot be used safely (not ours, not private, not a directory, not
    creatable)."""


def user_temp_directory() -> Path:
    """``<tempdir>/otel-mlmon-<uid>``: this user's directory under the system's temporary
    directory (not created here)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"otel-mlmon-{uid}"


def private_directory(path: Path) -> Path:
    """``path``, created with mode 0700 if missing, checked to be a real directory (not a link
    to one) of this user that no one else can read, list or write.

    Raises:
        UnusableDirectory: it is not, or cannot be created.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise UnusableDirectory(f"{path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise UnusableDirectory(f"{path} is not a directory")
    uid = os.getuid() if hasattr(os, "getuid") else info.st_uid
    if info.st_uid != uid or info.st_mode & 0o077:
        raise UnusableDirectory(f"{path} must belong to this user with mode 0700")
    return path
