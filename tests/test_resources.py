"""Process and GPU gauges: the real no-GPU path, NVML readings through a fake binding, fork and
shutdown, and a real-GPU check that runs wherever NVML finds a device."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from otel_mlmon import semconv
from otel_mlmon.resources import GpuMetrics, observe_process
from otel_mlmon.testing import InMemoryTelemetry

GPU_METRICS = (
    semconv.HW_GPU_UTILIZATION,
    semconv.HW_GPU_MEMORY_USAGE,
    semconv.HW_GPU_MEMORY_LIMIT,
    semconv.HW_TEMPERATURE,
    semconv.HW_POWER,
    semconv.ML_PROCESS_GPU_MEMORY_USAGE,
)


class NVMLError(Exception):
    pass


class FakeNvml:
    """The slice of the ``pynvml`` module GpuMetrics uses, with two GPUs."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, count: int = 2, init_error: Exception | None = None) -> None:
        self.count = count
        self.init_error = init_error
        self.inits = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:
        return f"GPU-{handle:04d}".encode()

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=[37, 90][handle], memory=10)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=(handle + 1) * 2**30, total=80 * 2**30, free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 40 + handle

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if handle == 1:
            raise NVMLError("Not Supported")
        return 123_456  # milliwatts

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return [
            SimpleNamespace(pid=os.getpid(), usedGpuMemory=512 * 2**20),
            SimpleNamespace(pid=1, usedGpuMemory=2**30),
        ]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[Any]:
        return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=None)]


def _by_gpu(telemetry: InMemoryTelemetry, name: str) -> dict[int, float]:
    return {p.attributes[semconv.ML_GPU_INDEX]: p.value for p in telemetry.metric_points(name)}


def test_without_a_gpu_the_gauges_are_absent_and_one_info_log_says_why(
    telemetry: InMemoryTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    gpu = GpuMetrics(telemetry.meter_provider)  # the real pynvml binding
    with caplog.at_level(logging.INFO, logger="otel_mlmon"):
        started = gpu.start()
    if started:
        pytest.skip("this machine has a GPU; test_real_gpu_readings covers it")
    assert gpu.unavailable_reason is not None
    messages = [r.getMessage() for r in caplog.records if "GPU metrics off" in r.getMessage()]
    assert [f"otel-mlmon: GPU metrics off: {gpu.unavailable_reason}"] == messages
    assert set(GPU_METRICS).isdisjoint(telemetry.metrics())


def test_nvml_readings_use_the_hardware_conventions(telemetry: InMemoryTelemetry) -> None:
    nvml = FakeNvml()
    gpu = GpuMetrics(telemetry.meter_provider, nvml=nvml)
    assert gpu.start()

    assert {0: 0.37, 1: 0.90} == _by_gpu(telemetry, semconv.HW_GPU_UTILIZATION)
    assert {0: 2**30, 1: 2 * 2**30} == _by_gpu(telemetry, semconv.HW_GPU_MEMORY_USAGE)
    assert {0: 80 * 2**30, 1: 80 * 2**30} == _by_gpu(telemetry, semconv.HW_GPU_MEMORY_LIMIT)
    assert {0: 40, 1: 41} == _by_gpu(telemetry, semconv.HW_TEMPERATURE)
    assert {0: 123.456} == _by_gpu(telemetry, semconv.HW_POWER)  # GPU 1 does not support it
    assert {0: 512 * 2**20, 1: 512 * 2**20} == _by_gpu(
        telemetry, semconv.ML_PROCESS_GPU_MEMORY_USAGE
    )
    (point, _) = telemetry.metric_points(semconv.HW_TEMPERATURE)
    assert {
        semconv.HW_ID: "GPU-0000",
        semconv.HW_NAME: "NVIDIA H100 80GB HBM3",
        semconv.HW_TYPE: "gpu",
        semconv.HW_VENDOR: "nvidia",
        semconv.ML_GPU_INDEX: 0,
    } == dict(point.attributes)
    metrics = telemetry.metrics()
    assert ("1", "By", "Cel", "W") == (
        metrics[semconv.HW_GPU_UTILIZATION].unit,
        metrics[semconv.HW_GPU_MEMORY_USAGE].unit,
        metrics[semconv.HW_TEMPERATURE].unit,
        metrics[semconv.HW_POWER].unit,
    )


def test_nvml_is_initialised_once_and_shut_down_once(telemetry: InMemoryTelemetry) -> None:
    nvml = FakeNvml()
    gpu = GpuMetrics(telemetry.meter_provider, nvml=nvml)
    assert gpu.start()
    assert gpu.start()
    telemetry.metrics()
    telemetry.metrics()
    gpu.shutdown()
    gpu.shutdown()
    assert (1, 1) == (nvml.inits, nvml.shutdowns)
    assert [] == telemetry.metric_points(semconv.HW_GPU_UTILIZATION)


@pytest.mark.parametrize(
    ("nvml", "reason"),
    [
        (FakeNvml(count=0), "NVML reports no GPU"),
        (FakeNvml(init_error=NVMLError("Driver Not Loaded")), "Driver Not Loaded"),
    ],
)
def test_no_device_or_no_driver_means_no_gauges(
    telemetry: InMemoryTelemetry, nvml: FakeNvml, reason: str
) -> None:
    gpu = GpuMetrics(telemetry.meter_provider, nvml=nvml)
    assert not gpu.start()
    assert reason in (gpu.unavailable_reason or "")
    assert set(GPU_METRICS).isdisjoint(telemetry.metrics())


def test_a_forked_child_initialises_nvml_anew(telemetry: InMemoryTelemetry) -> None:
    nvml = FakeNvml()
    gpu = GpuMetrics(telemetry.meter_provider, nvml=nvml)
    assert gpu.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            values = _by_gpu(telemetry, semconv.HW_GPU_UTILIZATION)
            os.write(write, json.dumps({"inits": nvml.inits, "gpus": len(values)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child = json.loads(os.read(read, 1000))
    os.close(read)
    assert 0 == status
    assert {"inits": 2, "gpus": 2} == child
    assert 1 == nvml.inits  # the parent's state is untouched


def test_process_gauges_come_from_the_system_metrics_instrumentation(
    telemetry: InMemoryTelemetry,
) -> None:
    stop = observe_process(telemetry.meter_provider)
    try:
        metrics = telemetry.metrics()
        status = _proc_status()  # what the kernel says of this process, read just after
    finally:
        stop()
    assert {"process.cpu.utilization", "process.memory.usage", "process.thread.count"} <= set(
        metrics
    )
    (memory,) = metrics["process.memory.usage"].data.data_points
    (threads,) = metrics["process.thread.count"].data.data_points
    assert status["Threads"] == threads.value
    # This process's resident memory: equal but for what the interpreter allocated in between.
    assert abs(status["VmRSS"] * 1024 - memory.value) < 16 * 2**20, (status, memory.value)


def _proc_status() -> dict[str, int]:
    """The numeric fields of /proc/self/status (VmRSS in kB, Threads)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.split() and value.split()[0].isdigit():
            fields[key] = int(value.split()[0])
    return fields


@pytest.mark.gpu
def test_real_gpu_readings(telemetry: InMemoryTelemetry) -> None:
    """Runs wherever NVML finds a GPU; prints what it read (the device check of the brief)."""
    gpu = GpuMetrics(telemetry.meter_provider)
    if not gpu.start():
        pytest.skip(f"no GPU here: {gpu.unavailable_reason}")
    readings = {name: telemetry.metric_points(name) for name in GPU_METRICS}
    for name, points in readings.items():
        for point in points:
            print(name, dict(point.attributes), point.value)
    utilization = readings[semconv.HW_GPU_UTILIZATION]
    assert utilization and all(0.0 <= p.value <= 1.0 for p in utilization)
    for used, limit in zip(
        readings[semconv.HW_GPU_MEMORY_USAGE], readings[semconv.HW_GPU_MEMORY_LIMIT], strict=True
    ):
        assert 0 <= used.value <= limit.value
    assert all(0 < p.value < 120 for p in readings[semconv.HW_TEMPERATURE])
    gpu.shutdown()
