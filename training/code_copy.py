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
    """What the copied stages need installed to load a model, pinned to the versions here."""
    reqs = []
    for dist in (
        "torch",
        "numpy",
        "pandas",
        "pyarrow",
        "scikit-learn",
        "pytorch-lightning",
        "mlflow",
        "cryptography",
        "pydantic-settings",
        "babel",
        "limits",
    ):
        try:
            reqs.append(f"{dist}=={version(dist).split('+')[0]}")
        except PackageNotFoundError:
            reqs.append(dist)
    return reqs
