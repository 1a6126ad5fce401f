"""What pyproject.toml cannot say: ``examples/`` ships inside the package.

The example services are installed as ``otel_mlmon.examples`` (this mapping), so
``otel-mlmon demo`` runs the FastAPI example from an installed wheel and the repository keeps a
single copy of it, the one users read and copy. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["otel_mlmon", "otel_mlmon.*"]), "otel_mlmon.examples"],
    package_dir={"otel_mlmon.examples": "examples"},
)
