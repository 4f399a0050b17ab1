"""A plain copy of the `earlywarn` package with only the stages a model or service needs, for MLflow and the bento."""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The package as imported: in a checkout its stage folders are links to the repository's top-level folders, in a
# wheel they are real folders; copying follows the links either way.
PACKAGE = Path(__file__).parents[1]
KEEP = ("*.py", "*.po", "py.typed", "requirements.lock", "bentofile.yaml")
# What the pyfunc's code imports (data and training stages as MLflow loads them); a clean-environment test checks it.
MODEL_PACKAGES = (
    "torch", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "pydantic", "pydantic-settings", "babel", "limits",
    "cryptography", "pyyaml", "mlflow",
)  # fmt: skip
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def _skipped(folder: str, names: list[str]) -> list[str]:
    """shutil.copytree's ignore callback: caches and anything that is neither code nor a shipped data file."""
    return [
        n
        for n in names
        if n == "__pycache__" or (not (Path(folder) / n).is_dir() and not any(fnmatch(n, pattern) for pattern in KEEP))
    ]


def copy_package(dest: Path, stages: tuple[str, ...]) -> Path:
    """`dest/earlywarn` with the package's own files and the named stages, links followed; returns that folder."""
    out = dest / "earlywarn"
    out.mkdir(parents=True)
    for f in ("__init__.py", "py.typed"):
        shutil.copy(PACKAGE / f, out / f)
    for stage in stages:
        shutil.copytree(PACKAGE / stage, out / stage, ignore=_skipped)
    return out


def model_requirements() -> list[str]:
    """A logged model's pip requirements: every package its code imports when MLflow loads it, pinned to the versions
    it was trained and checked with here (a CPU build of torch comes from PyTorch's CPU index)."""
    pins = [f"{dist}=={v}" if (v := _installed(dist)) else dist for dist in MODEL_PACKAGES]
    return ([TORCH_CPU_INDEX] if any("+cpu" in p for p in pins) else []) + pins


def _installed(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None
