"""Where earlywarn keeps its state: one root, EARLYWARN_HOME (default `runs/` in the working directory)."""

from __future__ import annotations

import os
from pathlib import Path

from earlywarn.data.settings import settings

HOME_VAR = "EARLYWARN_HOME"


def home() -> Path:
    """The state root as an absolute path. The CLI pins it once at start (`pin_home`), so a later change of directory,
    as `serve` makes, still finds the same store."""
    return settings().home.resolve()


def path(*parts: str) -> Path:
    """A place under the state root: MLflow store, BentoML store, prediction log, spool, reports, workspace."""
    return home().joinpath(*parts)


def pin_home() -> Path:
    """Resolve the root once and export it, so child processes (the BentoML server) share it."""
    root = home()
    os.environ[HOME_VAR] = str(root)
    return root


def private_files() -> None:
    """From now on this process creates files 0600 and folders 0700: the state root holds pseudonymised health data
    (prediction log, spool, MLflow and Evidently files), which no other account on the machine should read."""
    os.umask(0o077)
