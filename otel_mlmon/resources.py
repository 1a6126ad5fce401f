"""Process and GPU gauges.

Process gauges are the ``process.*`` metrics of ``opentelemetry-instrumentation-system-metrics``,
configured to the few a model service needs; we do not reimplement them.

GPU gauges read NVML through the maintained ``nvidia-ml-py`` bindings (module ``pynvml``),
imported lazily. NVML is initialised once, shut down with the telemetry, and initialised anew in
a forked child before its first reading. With no bindings, no driver or no GPU the gauges are
simply absent and one INFO log says why. Every reading a device does not support (power on some
boards, for example) is skipped, never raised.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, Final

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter

from otel_mlmon import _compat, _fork, semconv
from otel_mlmon.version import __version__

_logger: Final = logging.getLogger("otel_mlmon")

#: The ``process.*`` metrics observed by default.
PROCESS_METRICS: Final = {
    "process.cpu.utilization": None,
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
}

#: Names configure()'s default Views give two of them, on every exporter alike
#: (:func:`otel_mlmon.sdk.default_views`): in Prometheus a gauge must not end in ``_count``, the
#: suffix of a histogram's series (``promtool check metrics`` rejects
#: ``process_thread_count``). The new names are these metrics' OpenTelemetry names before
#: semantic conventions 1.24: ``process_threads`` and ``process_open_file_descriptors``.
PROCESS_METRIC_RENAMES: Final = {
    "process.thread.count": "process.threads",
    "process.open_file_descriptor.count": "process.open_file_descriptors",
}
#: The instrumentation scope of the ``process.*`` metrics.
PROCESS_METRICS_SCOPE: Final = "opentelemetry.instrumentation.system_metrics"


def observe_process(meter_provider: MeterProvider) -> Callable[[], None]:
    """Start the ``process.*`` gauges on ``meter_provider``; return the function that stops them.

    Uses ``SystemMetricsInstrumentor`` with :data:`PROCESS_METRICS` as its configuration.
    """
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    instrumentor = SystemMetricsInstrumentor(config=dict(PROCESS_METRICS))
    if instrumentor.is_instrumented_by_opentelemetry:
        _logger.info("otel-mlmon: process metrics already observed by SystemMetricsInstrumentor")
        return lambda: None
    instrumentor.instrument(meter_provider=meter_provider)
    _process_instrumentors.add(instrumentor)

    def stop() -> None:
        _process_instrumentors.discard(instrumentor)
        instrumentor.uninstrument()

    return stop


# SystemMetricsInstrumentor reads a psutil.Process bound to the pid it was instrumented in: in a
# forked worker it would go on reporting the parent's memory and CPU. Rebind it in the child.
_process_instrumentors: weakref.WeakSet[Any] = weakref.WeakSet()


@_fork.after_fork_in_child
def _process_after_fork_in_child() -> None:
    instrumentors = list(_process_instrumentors)
    if not instrumentors:
        return
    import psutil  # already loaded by the instrumentor: no import work in the fork hook

    for instrumentor in instrumentors:
        _compat.rebind_system_metrics_process(instrumentor, psutil.Process())


_gpu_instances: weakref.WeakSet[GpuMetrics] = weakref.WeakSet()


class GpuMetrics:
    """NVML gauges per GPU: ``hw.gpu.utilization``, ``hw.gpu.memory.usage`` / ``.limit``,
    ``hw.temperature``, ``hw.power`` and ``ml.process.gpu.memory.usage``.

    ``nvml`` is the binding module (``pynvml`` by default); tests pass a fake here, at the
    outermost boundary.

    .. versionadded:: 0.1.0
    """

    def __init__(self, meter_provider: MeterProvider | None = None, *, nvml: Any = None) -> None:
        self._meter_provider = meter_provider
        self._nvml: Any = nvml
        self._lock = threading.Lock()
        self._initialized = False
        self._started = False
        self._devices: list[tuple[Any, dict[str, str | int]]] = []
        self.unavailable_reason: str | None = None

    def _load(self) -> ModuleType | Any | None:
        if self._nvml is not None:
            return self._nvml
        try:
            import pynvml
        except ImportError:
            self.unavailable_reason = (
                "the NVML bindings are not installed (pip install 'otel-mlmon[gpu]')"
            )
            return None
        self._nvml = pynvml
        return pynvml

    def _init(self) -> bool:
        """Initialise NVML and enumerate devices; ``False`` (with a reason) if impossible."""
        nvml = self._load()
        if nvml is None:
            return False
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            self.unavailable_reason = f"NVML could not be initialised ({exc})"
            return False
        devices = []
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                attributes: dict[str, str | int] = {
                    semconv.HW_TYPE: "gpu",
                    semconv.HW_VENDOR: "nvidia",
                    semconv.ML_GPU_INDEX: index,
                    semconv.HW_ID: _text(nvml.nvmlDeviceGetUUID(handle)),
                    semconv.HW_NAME: _text(nvml.nvmlDeviceGetName(handle)),
                }
                devices.append((handle, attributes))
        except Exception as exc:
            self.unavailable_reason = f"NVML could not list the GPUs ({exc})"
            _shutdown_quietly(nvml)
            return False
        if not devices:
            self.unavailable_reason = "NVML reports no GPU"
            _shutdown_quietly(nvml)
            return False
        self._devices = devices
        self._initialized = True
        self._pid = os.getpid()
        return True

    def start(self) -> bool:
        """Create the gauges if a GPU can be read; ``False`` (and one INFO log) otherwise."""
        with self._lock:
            if self._started:
                return True
            if not self._init():
                _logger.info("otel-mlmon: GPU metrics off: %s", self.unavailable_reason)
                return False
            self._started = True
        meter = get_meter("otel_mlmon", __version__, self._meter_provider)
        semconv.create_hw_gpu_utilization(meter, [self._observe_utilization])
        semconv.create_hw_gpu_memory_usage(meter, [self._observe_memory_usage])
        semconv.create_hw_gpu_memory_limit(meter, [self._observe_memory_limit])
        semconv.create_hw_temperature(meter, [self._observe_temperature])
        semconv.create_hw_power(meter, [self._observe_power])
        semconv.create_ml_process_gpu_memory_usage(meter, [self._observe_process_memory])
        _gpu_instances.add(self)
        _logger.info("otel-mlmon: GPU metrics on for %d GPU(s)", len(self._devices))
        return True

    def shutdown(self) -> None:
        """Stop reading and shut NVML down; the gauges then report nothing."""
        with self._lock:
            self._started = False
            if self._initialized:
                self._initialized = False
                _shutdown_quietly(self._nvml)

    def _after_fork_in_child(self) -> None:
        # NVML handles do not survive fork: the child initialises anew on its first reading.
        self._lock = threading.Lock()
        self._initialized = False

    def _readings(self, read: Callable[[Any, Any], float | None]) -> Iterator[Observation]:
        with self._lock:
            if not self._started:
                return
            if not self._initialized and not self._init():
                return
            devices = self._devices
        nvml = self._nvml
        for handle, attributes in devices:
            try:
                value = read(nvml, handle)
            except Exception:  # unsupported on this board, or the GPU fell off the bus
                continue
            if value is not None:
                yield Observation(value, attributes)

    def _observe_utilization(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._readings(lambda n, h: n.nvmlDeviceGetUtilizationRates(h).gpu / 100.0)

    def _observe_memory_usage(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._readings(lambda n, h: n.nvmlDeviceGetMemoryInfo(h).used)

    def _observe_memory_limit(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._readings(lambda n, h: n.nvmlDeviceGetMemoryInfo(h).total)

    def _observe_temperature(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._readings(lambda n, h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU))

    def _observe_power(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._readings(lambda n, h: n.nvmlDeviceGetPowerUsage(h) / 1000.0)

    def _observe_process_memory(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._readings(_process_memory)


def _process_memory(nvml: Any, handle: Any) -> float | None:
    """GPU memory held by this process on one device (0 when it holds none)."""
    pid = os.getpid()
    used = 0
    for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        for process in getattr(nvml, getter)(handle):
            if process.pid == pid and process.usedGpuMemory is not None:
                used += process.usedGpuMemory
    return used


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _shutdown_quietly(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        _logger.debug("otel-mlmon: nvmlShutdown failed", exc_info=True)


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    for gpu in list(_gpu_instances):
        gpu._after_fork_in_child()
