"""The model being served: its identity, each version's attributes, and what describes it.

``ml.model.info`` and ``ml.model.load.time`` report the current version only (a replaced
version's series stop); a version's attributes come with its id codec. Values that become
attributes are bounded by the attribute value length limit; a longer name, version or
framework is a configuration error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otel_mlmon import _observables, semconv
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.monitor._attributes import ModelAttributes, value_length_limit
from otel_mlmon.monitor._config import Classes, Drift
from otel_mlmon.monitor.labels import IdCodec

if TYPE_CHECKING:
    from otel_mlmon.monitor._recorder import Recorder
    from otel_mlmon.monitor._versions import Versions


def check_length(label: str, value: str | None) -> None:
    """Fail fast on a configured value longer than the attribute value length limit."""
    limit = value_length_limit()
    if value is not None and len(value) > limit:
        raise ConfigurationError(
            f"model {label} is {len(value)} characters, more than the attribute value "
            f"length limit ({limit}, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT)"
        )


class ServedModel:
    """Name, task and framework of the model, when its version was loaded, and the factory of
    each version's :class:`ModelAttributes` (with the id codec signed by ``keys``)."""

    def __init__(
        self,
        name: str,
        task: str,
        framework: str | None,
        classes: Classes,
        keys: Sequence[bytes],
    ) -> None:
        self.name = name
        self.task = task
        check_length("framework", framework)
        self.framework = framework
        self.loaded_at = time.time()
        self._classes = classes
        self._keys = keys
        #: Where the current version's attributes are read (set by the monitor).
        self.recorder: Recorder | None = None

    def attributes(self, version: str, role: str | None = None) -> ModelAttributes:
        """A new version's attributes (``role``: ``ml.model.role`` of a shadow's series).

        Raises:
            ConfigurationError: an empty or over-long version (or name).
        """
        if not isinstance(version, str) or not version.strip():
            raise ConfigurationError("model version must be a non-empty string")
        check_length("name", self.name)
        check_length("version", version)
        classes = self._classes
        attributes = ModelAttributes(
            self.name, version, self.task, classes.resolved_limit(), classes.known, role
        )
        attributes.ids = IdCodec(attributes, self._keys)
        return attributes

    def observe(self, meter: Meter, versions: Versions) -> None:
        """Report the model's observable metrics on ``meter`` (shared per provider): its
        description, and the label counts of every version in ``versions``."""
        observe = _observables.observe
        observe(meter, semconv.ML_MODEL_INFO, semconv.create_ml_model_info, self,
                ServedModel.observe_info)  # fmt: skip
        observe(meter, semconv.ML_MODEL_LOAD_TIME, semconv.create_ml_model_load_time, self,
                ServedModel.observe_load_time)  # fmt: skip
        observe(meter, semconv.ML_MODEL_LABELS, semconv.create_ml_model_labels,
                versions, type(versions).observe_labels)  # fmt: skip
        if self.task == "regression":
            observe(meter, semconv.ML_MODEL_ABSOLUTE_ERROR, semconv.create_ml_model_absolute_error,
                    versions, type(versions).observe_absolute_error)  # fmt: skip
            observe(meter, semconv.ML_MODEL_SQUARED_ERROR, semconv.create_ml_model_squared_error,
                    versions, type(versions).observe_squared_error)  # fmt: skip
        observe(meter, semconv.ML_MODEL_SHADOW_COMPARISONS,
                semconv.create_ml_model_shadow_comparisons,
                versions, lambda owner, options: owner.observe_agreements())  # fmt: skip

    def observe_info(self, options: CallbackOptions) -> Iterator[Observation]:
        """``ml.model.info``: 1, described by the current version's attributes."""
        if self.recorder is not None:
            attributes = dict(self.recorder.attributes.span)
            if self.framework:
                attributes[semconv.ML_MODEL_FRAMEWORK] = self.framework
            yield Observation(1, attributes)

    def observe_load_time(self, options: CallbackOptions) -> Iterator[Observation]:
        """``ml.model.load.time``: when the current version was loaded."""
        if self.recorder is not None:
            yield Observation(self.loaded_at, self.recorder.attributes.base)


def drift_processor(meter: Meter, recorder: Recorder, drift: Drift, task: str) -> Any:
    """The drift processor of a monitor, fed by ``recorder``."""
    # Imported here: a service without drift does not load the drift package.
    from otel_mlmon.drift.processor import DriftProcessor

    return DriftProcessor(
        meter,
        attributes=lambda: recorder.attributes.base,
        feature_names=drift.feature_names,
        reference=drift.reference,
        reference_predictions=drift.predictions,
        config=drift.config,
        predictions_categorical=task == "classification",
        rejected=recorder.instruments.rejected,
    )
