"""Signed prediction ids that carry what a label join needs, and the join itself.

An id is self-contained: any process holding the key verifies it and joins a label to it, with
no state shared between processes and nothing waiting in memory. Bytes, then base64url without
padding::

    byte 0       format (high 4 bits, 1) and kind (low 4 bits: what the payload holds)
    bytes 1-3    fingerprint of the model name and version (BLAKE2b, 3 bytes)
    bytes 4-7    time of the prediction, whole seconds since the Unix epoch (big-endian)
    bytes 8-11   32 random bits, so two predictions of one class in one second differ
    payload      the recorded output: a known class's index, an integer class, a class's text,
                 a regression value (float64), or for a batch one of those per row
    last 8       MAC: keyed BLAKE2b-64 over all of the above, with the version's key

The version's key is derived from the secret (see ``_keys``), the model name, version, task and
known classes, so an id of another model, version or configuration never verifies. One
prediction's id is 28 to 40 characters (a known class, an integer class up to 2**63, a
regression value, or a class text of up to 10 bytes; a longer text makes a longer id). A batch
id grows with its rows (about 1.4 characters a row for known classes) and is not made past
:data:`MAX_BATCH_PAYLOAD` bytes of payload.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import math
import random
import struct
from collections.abc import Hashable, Sequence
from typing import Final, NamedTuple

import numpy as np

from otel_mlmon.monitor._attributes import ModelAttributes, scalar

FORMAT: Final = 1
NONE, INDEX, INT, TEXT, VALUE, OUTPUT = range(6)
BATCH: Final = 8
_HEADER: Final = 12
_MAC: Final = 8
#: Longest batch payload an id carries; a larger batch gets per-row ids only (``p.ids``).
MAX_BATCH_PAYLOAD: Final = 3000
#: Longest id accepted: longer input is invalid before it is decoded.
MAX_ID_LENGTH: Final = ((_HEADER + MAX_BATCH_PAYLOAD + 2 + _MAC) * 4 + 2) // 3
_INT_BOUND: Final = 1 << 63
_TO_STANDARD: Final = str.maketrans("-_", "+/")
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
# The random module reseeds in a forked child: a child never repeats its parent's bits.
_getrandbits: Final = random.getrandbits
_b2a: Final = binascii.b2a_base64
_a2b: Final = binascii.a2b_base64


def encode_text(raw: bytes) -> str:
    """base64url without padding."""
    return _b2a(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def decode_text(text: object) -> bytes | None:
    """The bytes of a canonical base64url text, else ``None`` (never raises)."""
    if type(text) is not str or len(text) > MAX_ID_LENGTH or not text.isascii():
        return None
    try:
        raw = _a2b(text.translate(_TO_STANDARD) + "=" * (-len(text) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    # One spelling per id: no second text (other padding bits, other alphabet) verifies.
    return raw if encode_text(raw) == text else None


class Decoded(NamedTuple):
    """A verified id: its kind, the recorded output(s), when, and its MAC (for de-duplication)."""

    kind: int
    outputs: list[object]
    time: int
    mac: bytes


class IdCodec:
    """Makes and verifies the ids of one model version."""

    __slots__ = ("_fingerprint", "_known", "_macs", "_task", "_width")

    def __init__(self, attributes: ModelAttributes, keys: Sequence[bytes]) -> None:
        name, version = attributes.model
        known = attributes.known
        self._task = attributes.task
        self._known: dict[Hashable, int] | None = (
            None if known is None else {value: i for i, value in enumerate(known)}
        )
        self._width = 1 if known is None or len(known) < 255 else 2
        identity = "\0".join([name, version, attributes.task, *map(str, known or ())])
        self._fingerprint = hashlib.blake2b(f"{name}\0{version}".encode(), digest_size=3).digest()
        self._macs = [
            hashlib.blake2b(
                digest_size=_MAC,
                key=hashlib.blake2b(identity.encode(), key=key, digest_size=32).digest(),
            )
            for key in keys
        ]

    def _seal(self, kind: int, payload: bytes, when: float) -> str:
        body = b"".join(
            (
                bytes(((FORMAT << 4) | kind,)),
                self._fingerprint,
                (int(when) & 0xFFFFFFFF).to_bytes(4, "big"),
                _getrandbits(32).to_bytes(4, "big"),
                payload,
            )
        )
        mac = self._macs[0].copy()
        mac.update(body)
        return encode_text(body + mac.digest())

    def single(self, output: object, when: float) -> str:
        """The id of one prediction whose recorded output is ``output`` (``None``: none)."""
        kind, payload = self._payload(output)
        return self._seal(kind, payload, when)

    def _payload(self, output: object) -> tuple[int, bytes]:
        if output is None:
            return NONE, b""
        if self._task == "regression":
            return VALUE, struct.pack(">d", output)
        if self._task != "classification":
            return OUTPUT, b""
        if self._known is not None:
            index = self._known.get(output, len(self._known))
            return INDEX, index.to_bytes(self._width, "big")
        if type(output) is int and -_INT_BOUND <= output < _INT_BOUND:
            return INT, output.to_bytes((output.bit_length() + 8) // 8, "big", signed=True)
        return TEXT, str(output).encode("utf-8", "replace")

    def batch(self, outputs: list[object] | None, when: float) -> str:
        """The id of a batch whose recorded outputs are ``outputs`` (``None``: none)."""
        if outputs is None:
            return self._seal(BATCH | NONE, b"", when)
        kind, payload = self._batch_payload(outputs)
        if len(payload) > MAX_BATCH_PAYLOAD:
            return self._seal(BATCH | NONE, b"", when)
        return self._seal(BATCH | kind, payload, when)

    def _batch_payload(self, outputs: list[object]) -> tuple[int, bytes]:
        if self._task == "regression":
            return VALUE, struct.pack(f">{len(outputs)}d", *outputs)
        if self._task != "classification":
            return OUTPUT, len(outputs).to_bytes(4, "big")
        if self._known is not None:
            other = len(self._known)
            indices = [self._known.get(v, other) for v in outputs]
            return INDEX, b"".join(i.to_bytes(self._width, "big") for i in indices)
        if all(type(v) is int and -_INT_BOUND <= v < _INT_BOUND for v in outputs):
            width = max(((v.bit_length() + 8) // 8 for v in outputs), default=1)  # type: ignore[attr-defined]
            rows = (v.to_bytes(width, "big", signed=True) for v in outputs)  # type: ignore[attr-defined]
            return INT, bytes((width,)) + b"".join(rows)
        texts = [str(v).encode("utf-8", "replace")[:65535] for v in outputs]
        return TEXT, b"".join(len(t).to_bytes(2, "big") + t for t in texts)

    def decode(self, prediction_id: object) -> Decoded | None:
        """The content of a genuine id of this version, else ``None``; never raises."""
        raw = decode_text(prediction_id)
        if raw is None or len(raw) < _HEADER + _MAC or raw[0] >> 4 != FORMAT:
            return None
        if raw[1:4] != self._fingerprint:
            return None
        body, mac = raw[:-_MAC], raw[-_MAC:]
        for key in self._macs:
            expected = key.copy()
            expected.update(body)
            if hmac.compare_digest(expected.digest(), mac):
                break
        else:
            return None
        outputs = self._outputs(raw[0] & 0x0F, body[_HEADER:])
        if outputs is None:
            return None
        return Decoded(raw[0] & 0x0F, outputs, int.from_bytes(raw[4:8], "big"), mac)

    def _outputs(self, kind: int, payload: bytes) -> list[object] | None:
        """The recorded outputs in ``payload``, or ``None`` for a kind this version never
        makes (a genuine id of the same version always parses)."""
        batch, kind = bool(kind & BATCH), kind & ~BATCH
        if kind == NONE:
            return []
        if kind == OUTPUT:
            return [None] * (int.from_bytes(payload, "big") if batch else 1)
        if kind == VALUE and self._task == "regression" and len(payload) % 8 == 0:
            return list(struct.unpack(f">{len(payload) // 8}d", payload))
        if self._task != "classification":
            return None
        if kind == INDEX and self._known is not None:
            known, width = list(self._known), self._width
            indices = [payload[i : i + width] for i in range(0, len(payload), width)]
            other = len(known)
            return [known[n] if n < other else None for n in map(_uint, indices)]
        if kind == INT and not batch:
            return [int.from_bytes(payload, "big", signed=True)]
        if kind == INT and payload:
            width = payload[0]
            rows = payload[1:]
            return [
                int.from_bytes(rows[i : i + width], "big", signed=True)
                for i in range(0, len(rows), width)
            ]
        if kind == TEXT and not batch:
            return [payload.decode("utf-8", "replace")]
        if kind == TEXT:
            return _texts(payload)
        return None


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _texts(payload: bytes) -> list[object]:
    texts: list[object] = []
    at = 0
    while at < len(payload):
        size = int.from_bytes(payload[at : at + 2], "big")
        texts.append(payload[at + 2 : at + 2 + size].decode("utf-8", "replace"))
        at += 2 + size
    return texts


def regression_value(value: object) -> float | None:
    """A finite number as a float (a prediction or label of a regression), else ``None``."""
    value = scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def label_rows(label: object, rows: int) -> list[object] | None:
    """The labels of a batch of ``rows``, one per row, or ``None`` when they do not fit."""
    if isinstance(label, np.ndarray):
        values = label.tolist() if label.ndim == 1 else None
    elif isinstance(label, (list, tuple)):
        values = list(label)
    else:
        values = None
    return values if values is not None and len(values) == rows else None
