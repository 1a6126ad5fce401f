"""The package version, kept in one place for ``get_tracer``/``get_meter`` and packaging."""

__version__ = "0.1.0"
