"""Request IDs: which incoming IDs are honoured, what is generated, how the binding resets."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_mlmon.context import get_request_id
from otel_mlmon.request_id import (
    MAX_LENGTH,
    bound_request_id,
    is_well_formed,
    new_request_id,
    resolve_request_id,
)

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "incoming",
    ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "req_1.2:3", "x" * MAX_LENGTH, b"bytes-id"],
)
def test_well_formed_incoming_id_is_honoured(incoming: str | bytes) -> None:
    expected = incoming.decode() if isinstance(incoming, bytes) else incoming

    assert resolve_request_id(incoming) == (expected, True)


@pytest.mark.parametrize(
    "incoming",
    [None, "", "x" * (MAX_LENGTH + 1), "a b", "a\nb", "<x>", "id;drop", "é", b"\xff\xfe", "a/b"],
)
def test_absent_or_malformed_id_is_replaced_by_a_generated_one(
    incoming: str | bytes | None,
) -> None:
    request_id, honoured = resolve_request_id(incoming)

    assert honoured is False
    assert GENERATED.fullmatch(request_id)


@given(st.text(max_size=300))
def test_resolved_id_is_always_bounded_and_safe(incoming: str) -> None:
    request_id, honoured = resolve_request_id(incoming)

    assert is_well_formed(request_id)
    assert len(request_id) <= MAX_LENGTH
    assert honoured == (request_id == incoming)


def test_generated_ids_differ() -> None:
    assert len({new_request_id() for _ in range(1000)}) == 1000


def test_bound_request_id_resets_to_the_previous_value_also_on_error() -> None:
    with bound_request_id("outer") as outer:
        with pytest.raises(RuntimeError), bound_request_id("inner"):
            assert get_request_id() == "inner"
            raise RuntimeError("boom")
        assert get_request_id() == outer == "outer"
    assert get_request_id() is None


def test_bound_request_id_survives_gather_and_never_bleeds_between_tasks() -> None:
    async def request(i: int) -> list[str | None]:
        with bound_request_id(f"t-{i}"):
            await asyncio.sleep(0)

            async def child() -> str | None:
                await asyncio.sleep(0.001)
                return get_request_id()

            children = await asyncio.gather(child(), child())
            return [get_request_id(), *children]

    async def run() -> list[list[str | None]]:
        return await asyncio.gather(*(request(i) for i in range(200)))

    results = asyncio.run(run())

    assert results == [[f"t-{i}"] * 3 for i in range(200)]


def test_bound_request_id_never_bleeds_between_threads() -> None:
    barrier = threading.Barrier(8)

    def request(i: int) -> str | None:
        with bound_request_id(f"th-{i}"):
            barrier.wait(timeout=5)
            return get_request_id()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(request, range(8)))

    assert results == [f"th-{i}" for i in range(8)]
