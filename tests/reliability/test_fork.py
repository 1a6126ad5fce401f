"""configure() before a pre-forking server: each worker exports its own telemetry under its own
service.instance.id, nothing deadlocks, per-process state (process gauges) belongs to the
process it describes, and a forked child joins its parent's Prometheus endpoint."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from _otlp import OtlpHttpServer, OtlpReceiver, sum_points
from _wait import eventually

import otel_mlmon
from otel_mlmon import ModelMonitor, Telemetry, _fork, resources
from otel_mlmon.testing import InMemoryTelemetry

ROOT = Path(__file__).resolve().parents[2]
CHILDREN = 3
#: Longest a child may take to record, flush and exit before we call it a deadlock: a bound on
#: a hang, generous for a loaded 2-core machine, never a speed check.
CHILD_DEADLINE_S = 60.0


@pytest.fixture
def configured(otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    telemetry = otel_mlmon.configure(
        service_name="forked",
        otlp_endpoint=otlp_http.endpoint,
        set_global=False,
        logs=False,
        prometheus=False,
        gpu_metrics=False,
        process_metrics=False,
        handle_sigterm=False,
    )
    yield telemetry
    telemetry.shutdown()


def _spans_by_instance(receiver: OtlpReceiver) -> dict[str, list[str]]:
    """Predicted class of each span, grouped by the service.instance.id it arrived under."""
    found: dict[str, list[str]] = defaultdict(list)
    for request in receiver.requests["/v1/traces"]:
        for resource_spans in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {kv.key: kv.value.string_value for kv in span.attributes}
                    found[resource["service.instance.id"]].append(attributes["ml.prediction.class"])
    return found


def _in_child(telemetry: Telemetry, monitor: ModelMonitor, index: int) -> None:
    """What each forked worker does: predict, then flush and exit through shutdown()."""
    for _ in range(2):
        with monitor.predict() as p:
            p.record(f"child-{index}")
    if not telemetry.shutdown(timeout_millis=5_000):
        raise SystemExit(2)


def _wait_all(pids: list[int]) -> list[int]:
    """Exit codes of ``pids``; fails (and kills them) if any is still running at the deadline."""
    codes: dict[int, int] = {}

    def all_exited() -> bool:
        for pid in set(pids) - set(codes):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes[pid] = os.waitstatus_to_exitcode(status)
        return len(codes) == len(pids)

    try:
        eventually(all_exited, "the forked children to exit", CHILD_DEADLINE_S)
    except AssertionError:
        for pid in set(pids) - set(codes):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise AssertionError(f"forked children deadlocked: {set(pids) - set(codes)}") from None
    return [codes[pid] for pid in pids]


def _assert_one_instance_per_process(receiver: OtlpReceiver, parent_id: str) -> None:
    by_instance = _spans_by_instance(receiver)
    expected = {parent_id: ["parent"]} | {
        f"<child {i}>": [f"child-{i}"] * 2 for i in range(CHILDREN)
    }
    # Name each child's instance by what it predicted; its id must be its own.
    actual = {
        (iid if iid == parent_id else f"<child {classes[0][-1]}>"): sorted(classes)
        for iid, classes in by_instance.items()
    }
    assert expected == actual


def test_os_fork_children_export_under_their_own_instance_id(
    configured: Telemetry, otlp_http: OtlpHttpServer
) -> None:
    monitor = ModelMonitor(
        "m", tracer_provider=configured.tracer_provider, meter_provider=configured.meter_provider
    )
    with monitor.predict() as p:
        p.record("parent")
    parent_id = str(configured.tracer_provider.resource.attributes["service.instance.id"])  # type: ignore[attr-defined]

    pids = []
    for index in range(CHILDREN):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                _in_child(configured, monitor, index)
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            finally:
                os._exit(code)
        pids.append(pid)

    assert [0] * CHILDREN == _wait_all(pids)
    assert configured.force_flush()
    _assert_one_instance_per_process(otlp_http.receiver, parent_id)

    # Documented limit (SDK behaviour): a child inherits the metric state of its parent, so
    # what the parent counted before the fork is in every child's cumulative counters too.
    inherited = defaultdict(float)
    for request in otlp_http.receiver.requests["/v1/metrics"]:
        iid = OtlpReceiver.resource_attributes(request)["service.instance.id"]
        for point_attributes, value in sum_points([request], "ml.model.predictions"):
            if point_attributes["ml.prediction.class"] == "parent":
                inherited[iid] = value
    assert CHILDREN + 1 == len(inherited)
    assert {1.0} == set(inherited.values())


def test_multiprocessing_fork_workers_export_under_their_own_instance_id(
    configured: Telemetry, otlp_http: OtlpHttpServer
) -> None:
    monitor = ModelMonitor(
        "m", tracer_provider=configured.tracer_provider, meter_provider=configured.meter_provider
    )
    with monitor.predict() as p:
        p.record("parent")
    parent_id = str(configured.tracer_provider.resource.attributes["service.instance.id"])  # type: ignore[attr-defined]

    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_in_child, args=(configured, monitor, index))
        for index in range(CHILDREN)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(CHILD_DEADLINE_S)
    stuck = [w.pid for w in workers if w.is_alive()]
    for worker in workers:
        worker.kill()
    assert [] == stuck, "forked workers deadlocked"
    assert [0] * CHILDREN == [w.exitcode for w in workers]
    assert configured.force_flush()
    _assert_one_instance_per_process(otlp_http.receiver, parent_id)


def _fork_and_check(check: Callable[[], bool]) -> int:
    """Run ``check`` in a forked child; its exit code (0 when the check held)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            code = 0 if check() else 3
        finally:
            os._exit(code)
    return _wait_all([pid])[0]


def test_process_gauges_in_a_forked_child_describe_the_child() -> None:
    with InMemoryTelemetry() as telemetry:
        stop = resources.observe_process(telemetry.meter_provider)
        try:
            parent_rss = psutil.Process().memory_info().rss

            def child_reports_its_own_memory() -> bool:
                ballast = b"x" * (256 * 1024 * 1024)  # 256 MiB the parent does not have
                points = telemetry.metric_points("process.memory.usage")
                reported = max(point.value for point in points)
                own = psutil.Process().memory_info().rss
                del ballast
                return abs(reported - own) < 32 * 1024 * 1024 and reported > parent_rss

            assert 0 == _fork_and_check(child_reports_its_own_memory)
        finally:
            stop()


def _predictions_by_class(host: str, port: int) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        sample.labels["ml_prediction_class"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ml_model_predictions_total"
    }


def test_a_forked_child_is_served_by_its_parents_prometheus_endpoint(
    otel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    otel_env.setenv("OTEL_MLMON_PROMETHEUS_DIR", str(tmp_path))
    telemetry = otel_mlmon.configure(
        set_global=False,
        logs=False,
        prometheus_host="127.0.0.1",
        prometheus_port=0,
        gpu_metrics=False,
        process_metrics=False,
        handle_sigterm=False,
    )
    assert telemetry.prometheus_address is not None
    host, port = telemetry.prometheus_address
    monitor = ModelMonitor("m", meter_provider=telemetry.meter_provider)
    try:

        def child_is_served_then_shuts_down_within_the_bound() -> bool:
            for _ in range(3):
                with monitor.predict() as p:
                    p.record("child")
            served = {"child": 3.0} == _predictions_by_class(host, port)
            # True only if every step finished before the bound: no wait on a server thread
            # the child does not have.
            return served and telemetry.shutdown(timeout_millis=3_000)

        assert 0 == _fork_and_check(child_is_served_then_shuts_down_within_the_bound)
        with monitor.predict() as p:
            p.record("parent")
        # The child's total outlives it; the parent's own predictions are there too.
        assert {"child": 3.0, "parent": 1.0} == _predictions_by_class(host, port)
    finally:
        telemetry.shutdown()


def test_a_fork_during_a_scrape_leaves_the_child_able_to_collect(
    otel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import threading

    from opentelemetry.metrics import Observation

    otel_env.setenv("OTEL_MLMON_PROMETHEUS_DIR", str(tmp_path))
    telemetry = otel_mlmon.configure(
        set_global=False, logs=False, prometheus_host="127.0.0.1", prometheus_port=0,
        gpu_metrics=False, process_metrics=False, handle_sigterm=False,
    )  # fmt: skip
    assert telemetry.prometheus_address is not None
    host, port = telemetry.prometheus_address
    collecting, release = threading.Event(), threading.Event()
    parent = os.getpid()

    def slow_gauge(_: object) -> list[Observation]:
        if os.getpid() == parent and not release.is_set():
            collecting.set()
            release.wait(CHILD_DEADLINE_S)  # in progress until the fork comes
        return [Observation(1)]

    def nothing() -> None:
        pass

    # The fork lets the collection go on (the parent's before-fork hooks run last-registered
    # first): whether the fork then waits for it to end, rather than copying the SDK's locks
    # held mid-collection into the child, is what the child's own collection shows.
    _fork.around_fork_in_parent(release.set, nothing)

    telemetry.meter_provider.get_meter("test").create_observable_gauge(
        "slow", callbacks=[slow_gauge]
    )
    scraper = threading.Thread(
        target=lambda: urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10).read()
    )
    try:
        scraper.start()
        assert collecting.wait(CHILD_DEADLINE_S)

        def child_collects() -> bool:
            reader = telemetry.prometheus._reader  # type: ignore[union-attr]
            return any(f.name == "slow" for f in reader.families())

        assert 0 == _fork_and_check(child_collects)
    finally:
        _fork._parent_hooks.remove((release.set, nothing))
        release.set()
        scraper.join()
        telemetry.shutdown()


WSGI_APP = textwrap.dedent(
    """
    import json, os
    import otel_mlmon
    from otel_mlmon import ModelMonitor

    # configure() once, in the gunicorn master (--preload), before it forks the workers.
    telemetry = otel_mlmon.configure(service_name="gunicorn-test", logs=False)
    monitor = ModelMonitor("m")

    def app(environ, start_response):
        with monitor.predict() as p:
            p.record(str(os.getpid()), 0.5)
        instance = telemetry.tracer_provider.resource.attributes["service.instance.id"]
        body = json.dumps({"pid": os.getpid(), "instance": instance}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    """
)


def test_gunicorn_workers_each_export_their_own_telemetry_and_flush_on_sigterm(
    tmp_path: Path, otlp_http: OtlpHttpServer, free_port: int
) -> None:
    import json

    import httpx

    (tmp_path / "wsgi_service.py").write_text(WSGI_APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint,
        OTEL_MLMON_GPU_METRICS="false",
        OTEL_MLMON_STRICT="true",
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
    )
    command = [sys.executable, "-m", "gunicorn", "--preload", "--workers", str(CHILDREN)]
    command += ["--bind", f"127.0.0.1:{free_port}", "--graceful-timeout", "10", "wsgi_service:app"]
    master = subprocess.Popen(
        command,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    served: dict[int, str] = {}
    counts: dict[int, int] = defaultdict(int)
    try:
        with httpx.Client() as client:

            def every_worker_answered() -> bool:
                try:  # a fresh connection each time, so the requests spread over the workers
                    response = client.get(
                        f"http://127.0.0.1:{free_port}/", headers={"Connection": "close"}
                    )
                except httpx.TransportError:
                    return False  # not listening yet
                answer = json.loads(response.content)
                served[answer["pid"]] = answer["instance"]
                counts[answer["pid"]] += 1
                return len(served) == CHILDREN

            eventually(every_worker_answered, "an answer from every worker")
        master.send_signal(signal.SIGTERM)
        _, stderr = master.communicate(timeout=CHILD_DEADLINE_S)
    finally:
        master.kill()
    assert 0 == master.returncode, stderr
    assert CHILDREN == len(served), f"requests reached only {len(served)} workers"
    assert CHILDREN == len(set(served.values())), "workers share a service.instance.id"

    # Every worker flushed its spans on SIGTERM, under its own instance id.
    by_instance = _spans_by_instance(otlp_http.receiver)
    expected = {served[pid]: [str(pid)] * counts[pid] for pid in served}
    assert expected == {iid: sorted(classes) for iid, classes in by_instance.items()}


def _latest_gauges(receiver: OtlpReceiver, name: str) -> dict[str, dict[tuple[str, ...], float]]:
    """Gauge ``name`` per service.instance.id: the latest value of each (feature, method)."""
    found: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
    for request in receiver.requests["/v1/metrics"]:
        iid = str(OtlpReceiver.resource_attributes(request)["service.instance.id"])
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.gauge.data_points:
                        attributes = {kv.key: kv.value.string_value for kv in point.attributes}
                        key = (
                            attributes.get("ml.feature.name", ""),
                            attributes.get("ml.drift.method", ""),
                        )
                        value = point.as_int if point.HasField("as_int") else point.as_double
                        found[iid][key] = value
    return found


def test_drift_windows_are_per_process(configured: Telemetry, otlp_http: OtlpHttpServer) -> None:
    import numpy as np

    from otel_mlmon import Drift, DriftConfig

    reference = np.random.default_rng(7).normal(size=(400, 3))
    monitor = ModelMonitor(
        "drifting",
        drift=Drift(
            feature_names=["a", "b", "c"],
            reference=reference,
            config=DriftConfig(window=400, min_samples=50),
        ),
        tracer_provider=configured.tracer_provider,
        meter_provider=configured.meter_provider,
    )
    parent_id = str(configured.tracer_provider.resource.attributes["service.instance.id"])  # type: ignore[attr-defined]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(write_end)
            os.read(read_end, 1)  # the parent has appended its rows by now
            # The child's traffic has drifted: the same rows shifted by 5 standard deviations.
            for row in reference[:120] + 5.0:
                with monitor.predict(features=row) as p:
                    p.record("x")
            code = 0 if configured.shutdown(timeout_millis=5_000) else 2
        finally:
            os._exit(code)
    os.close(read_end)
    with monitor.predict(features=reference) as p:  # the parent's traffic is the reference
        p.record(["x"] * len(reference))
    os.write(write_end, b"go")
    os.close(write_end)
    assert [0] == _wait_all([pid])
    assert 400 == monitor._drift.window_samples()  # nothing of the child's 120 rows
    assert configured.force_flush()

    samples = _latest_gauges(otlp_http.receiver, "ml.drift.window.samples")
    detected = _latest_gauges(otlp_http.receiver, "ml.drift.detected")
    (child_id,) = set(samples) - {parent_id}
    assert {parent_id: 400, child_id: 120} == {iid: s[("", "")] for iid, s in samples.items()}
    # Each process scored its own window: only the child's shifted traffic is in drift.
    assert {0} == set(detected[parent_id].values())
    assert {1} == set(detected[child_id].values())
