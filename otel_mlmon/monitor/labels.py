"""Signed prediction ids that carry what a label join needs, and the join itself.

An id is self-contained: any process holding the key verifies it and joins a label to it, with
no state shared between processes and nothing waiting in memory. Bytes, then base64url without
padding::

    byte 0       zero bytes padded (bits 7-6), format (bits 5-4: 1), kind (bits 3-0: what the
                 payload holds)
    bytes 1-3    fingerprint of the model name and version (BLAKE2b, 3 bytes)
    bytes 4-7    time of the prediction, whole seconds since the Unix epoch (big-endian)
    bytes 8-11   32 random bits, so two predictions of one class in one second differ
    payload      the recorded output: a known class's index, an integer class, a class's text,
                 a regression value (float64), or for a batch one of those per row; then 0-2
                 zero bytes so that the whole is a multiple of 3 bytes
    last 8       MAC: keyed BLAKE2b-64 over all of the above, with the version's key

A multiple of 3 bytes encodes without ``=`` padding and without spare bits, so each id has
exactly one spelling and decoding needs no second check.

The version's key is derived from the secret (see ``_keys``), the model name, version, task and
known classes, so an id of another model, version or configuration never verifies. One
prediction's id is 28 to 40 characters (a known class, an integer class up to 2**63, a
regression value, or a class text of up to 10 bytes; a longer text makes a longer id). A batch
id grows with its rows (about 1.4 characters a row for known classes) and is not made past
:data:`MAX_BATCH_PAYLOAD` bytes of payload.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import math
import struct
from collections.abc import Callable, Hashable, Sequence
from typing import Final

import numpy as np

from otel_mlmon import _random
from otel_mlmon.monitor._attributes import ModelAttributes, scalar

FORMAT: Final = 1
NONE, INDEX, INT, TEXT, VALUE, OUTPUT = range(6)
BATCH: Final = 8
_HEADER: Final = 12
_MAC: Final = 8
#: Longest batch payload an id carries; a larger batch gets per-row ids only (``p.ids``).
MAX_BATCH_PAYLOAD: Final = 3000
#: Longest id accepted: longer input is invalid before it is decoded.
MAX_ID_LENGTH: Final = (_HEADER + MAX_BATCH_PAYLOAD + 2 + _MAC) * 4 // 3
_INT_BOUND: Final = 1 << 63
# "+" and "/" are not in the URL-safe alphabet: mapped to a byte base64 rejects.
_TO_STANDARD: Final = bytes.maketrans(b"-_+/", b"+/!!")
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_ZEROS: Final = (b"", b"\0", b"\0\0")
# Outputs whose id parts are cached (bool apart: True == 1 would share 1's parts).
_CACHEABLE: Final = frozenset({int, str, float})
_CACHED: Final = 1024
# Reseeded in a forked child: a worker never repeats its parent's bits.
_getrandbits: Final = _random.getrandbits
_b2a: Final = binascii.b2a_base64
_equal: Final = hmac.compare_digest
_a2b: Final = binascii.a2b_base64


#: How an id is packed: (the packer, byte 0 and fingerprint, payload and zero bytes).
_Parts = tuple[Callable[[bytes, int, int, bytes], bytes], bytes, bytes]


@functools.lru_cache(maxsize=64)
def _packer(tail: int) -> Callable[[bytes, int, int, bytes], bytes]:
    """Packs byte 0 and fingerprint, time, nonce and a tail of ``tail`` bytes."""
    return struct.Struct(f">4sII{tail}s").pack


def encode_text(raw: bytes) -> str:
    """base64url of ``raw`` (a multiple of 3 bytes: no padding)."""
    return _b2a(raw, newline=False).translate(_TO_URLSAFE).decode("ascii")


def decode_text(text: object) -> bytes | None:
    """The bytes of a base64url text of whole 4-character groups, else ``None``; never raises.
    Such a text has one spelling per byte string (no padding, no spare bits)."""
    if type(text) is not str or len(text) > MAX_ID_LENGTH or len(text) & 3:
        return None
    try:
        return _a2b(text.encode("ascii").translate(_TO_STANDARD), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None


#: A verified id: (kind, the recorded output(s), when, its MAC). A plain tuple: a NamedTuple
#: costs a Python-level constructor on every label.
Decoded = tuple[int, list[object], int, bytes]


class IdCodec:
    """Makes and verifies the ids of one model version."""

    __slots__ = (
        "_fingerprint",
        "_heads",
        "_integer_classes",
        "_known",
        "_known_list",
        "_mac",
        "_macs",
        "_parts",
        "_task",
        "_width",
    )

    def __init__(self, attributes: ModelAttributes, keys: Sequence[bytes]) -> None:
        name, version = attributes.model
        known = attributes.known
        self._task = attributes.task
        self._known: dict[Hashable, int] | None = (
            None if known is None else {value: i for i, value in enumerate(known)}
        )
        self._known_list = None if known is None else list(known)
        # A classifier whose classes are not declared: its ids carry the class as an integer.
        self._integer_classes = known is None and attributes.classification
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
        self._mac = self._macs[0]
        # byte 0 and the fingerprint, by (zero bytes padded, kind): built once.
        self._heads = [
            [bytes(((pad << 6) | (FORMAT << 4) | kind,)) + self._fingerprint for kind in range(16)]
            for pad in range(3)
        ]
        # What comes before and after the time and nonce, by class: a classifier's ids differ
        # only there. At most _CACHED classes (the class table bounds them anyway).
        self._parts: dict[object, _Parts] = {}

    def _parts_of(self, kind: int, payload: bytes) -> _Parts:
        """How an id with ``payload`` is packed: byte 0 and fingerprint, then time and nonce,
        then the payload and its zero bytes, in one ``struct`` call."""
        pad = -(len(payload) + _HEADER + _MAC) % 3
        tail = payload + _ZEROS[pad]
        return _packer(len(tail)), self._heads[pad][kind], tail

    def _seal(self, parts: _Parts, when: float) -> str:
        pack, head, tail = parts
        body = pack(head, int(when) & 0xFFFFFFFF, _getrandbits(32), tail)
        mac = self._mac.copy()
        mac.update(body)
        return _b2a(body + mac.digest(), newline=False).translate(_TO_URLSAFE).decode("ascii")

    def single(self, output: object, when: float) -> str:
        """The id of one prediction whose recorded output is ``output`` (``None``: none)."""
        # The hot case (a class seen before) inline: one lookup, one pack, one MAC, one
        # encoding; each call saved is a tenth of the id's cost.
        parts = self._parts.get(output) if type(output) in _CACHEABLE else None
        if parts is None:
            parts = self._parts_of(*self._payload(output))
            cacheable = self._task == "classification" and type(output) in _CACHEABLE
            if cacheable and len(self._parts) < _CACHED:
                self._parts[output] = parts
        pack, head, tail = parts
        body = pack(head, int(when) & 0xFFFFFFFF, _getrandbits(32), tail)
        mac = self._mac.copy()
        mac.update(body)
        return _b2a(body + mac.digest(), newline=False).translate(_TO_URLSAFE).decode("ascii")

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
        kind, payload = NONE, b""
        if outputs is not None:
            kind, payload = self._batch_payload(outputs)
            if len(payload) > MAX_BATCH_PAYLOAD:
                kind, payload = NONE, b""
        return self._seal(self._parts_of(BATCH | kind, payload), when)

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

    @property
    def fingerprint(self) -> bytes:
        """Bytes 1-3 of this version's ids: where a registry of versions looks an id up."""
        return self._fingerprint

    def decode(self, prediction_id: object) -> Decoded | None:
        """The content of a genuine id of this version, else ``None``; never raises."""
        raw = decode_text(prediction_id)
        return None if raw is None else self.decode_raw(raw)

    def _verified(self, raw: bytes) -> bytes | None:
        """The signed part of ``raw`` when this version's key (or a previous one) signed it."""
        if len(raw) < _HEADER + _MAC or raw[1:4] != self._fingerprint:
            return None
        if (raw[0] >> 4) & 3 != FORMAT:
            return None
        body, mac = raw[:-_MAC], raw[-_MAC:]
        expected = self._mac.copy()
        expected.update(body)
        if not _equal(expected.digest(), mac) and not self._previous(body, mac):
            return None
        return body

    def made_at(self, raw: bytes) -> int | None:
        """When the prediction of a genuine id (bytes) of this version was made, in whole Unix
        seconds, without reading its payload (an outcome needs no more); ``None`` for any other
        bytes."""
        return None if self._verified(raw) is None else int.from_bytes(raw[4:8], "big")

    def decode_raw(self, raw: bytes) -> Decoded | None:
        """:meth:`decode` of an id already turned into bytes (:func:`decode_text`)."""
        body = self._verified(raw)
        if body is None:
            return None
        first = raw[0]
        kind = first & 0x0F
        payload = body[_HEADER : len(body) - (first >> 6)]
        # The common cases first: one prediction of an integer or of a declared class.
        known = self._known_list
        if kind == INT and self._integer_classes:
            outputs: list[object] = [int.from_bytes(payload, "big", signed=True)]
        elif kind == INDEX and known is not None:
            index = int.from_bytes(payload, "big")
            outputs = [known[index] if index < len(known) else None]
        else:
            parsed = self._outputs(kind, payload)
            if parsed is None:
                return None
            outputs = parsed
        return kind, outputs, int.from_bytes(raw[4:8], "big"), raw[-_MAC:]

    def _previous(self, body: bytes, mac: bytes) -> bool:
        """Whether a previous key (a rotation) signed ``body``."""
        for key in self._macs[1:]:
            expected = key.copy()
            expected.update(body)
            if _equal(expected.digest(), mac):
                return True
        return False

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
        if kind == INDEX and self._known_list is not None:
            known, width = self._known_list, self._width
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
