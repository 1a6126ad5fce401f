"""Packaging: the OpenTelemetry requirements on one release line, and the wheel installed as a
user installs it (a fresh virtual environment outside the repository, the pip that comes with
Python, no constraints file) running ``otel-mlmon demo``."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
#: The interpreter this virtual environment was made from, with the pip it bundles.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    return [Requirement(r) for r in [*project["dependencies"], *(r for e in extras for r in e)]]


def test_opentelemetry_requirements_are_pinned_to_one_release_line() -> None:
    pins = {
        r.name: [(s.operator, s.version) for s in r.specifier]
        for r in _requirements()
        if r.name.startswith("opentelemetry-")
    }
    versions = {spec[0][1] for spec in pins.values()}
    stable = {v for v in versions if not Version(v).is_prerelease}
    contrib = versions - stable

    assert {name: "==" for name in pins} == {n: s[0][0] for n, s in pins.items() if len(s) == 1}
    assert (1, 1) == (len(stable), len(contrib)), pins
    # A pair: that SDK release pins that contrib release's semantic conventions.
    (sdk,), (contrib_version,) = stable, contrib
    assert sdk == importlib.metadata.version("opentelemetry-sdk")
    expected = f"opentelemetry-semantic-conventions=={contrib_version}"
    assert expected in (importlib.metadata.requires("opentelemetry-sdk") or [])


def _user_environment(home: Path) -> dict[str, str]:
    """A shell's environment without this test run's: no venv, no pip settings, no OTel."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "OTEL_", "VIRTUAL"))}
    keep.pop("PYTHONPATH", None)
    return {
        **keep,
        "PYTHONUNBUFFERED": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "HOME": str(home),
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built as a release would build it."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        timeout=900,
    )
    (built,) = out.glob("otel_mlmon-*.whl")
    return built


@pytest.mark.install
def test_the_wheel_installs_with_the_bundled_pip_and_runs_the_demo(
    wheel: Path, tmp_path: Path
) -> None:
    venv, home = tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    env = {**_user_environment(home), "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip")}
    subprocess.run([str(BASE_PYTHON), "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip_version = subprocess.run(
        [str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=True
    ).stdout

    install = subprocess.run(
        [str(python), "-m", "pip", "install", f"{wheel}[examples]"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert 0 == install.returncode, f"{pip_version}{install.stdout[-4000:]}{install.stderr}"
    shipped = subprocess.run(
        [str(python), "-c", "import otel_mlmon.examples.fastapi_app as m; print(m.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    demo = subprocess.run(
        [str(venv / "bin" / "otel-mlmon"), "demo", "--duration", "4", "--rate", "20",
         "--prometheus-port", "0", "--log-file", str(tmp_path / "demo.log")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert shipped.startswith(str(venv)), shipped
    assert 0 == demo.returncode, demo.stderr
    final = demo.stdout.split("otel-mlmon demo")[-1]
    served = re.search(r"requests\s+(\d+)", final)
    assert served is not None and int(served.group(1)) > 0, demo.stdout
    assert "telemetry flushed" in demo.stdout
