"""The data scientists' notebooks: committed without outputs, and they run top to bottom on small data."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01-explore-cohort.ipynb", "02-train-compare-tune.ipynb", "03-investigate-drift.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code"), path.name


def test_notebooks_run_in_order(tmp_path, monkeypatch):
    """02 trains and promotes the champion that 03 monitors, as a data scientist would run them."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("EARLYWARN_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("EARLYWARN_NOTEBOOK_DIR", str(tmp_path / "work"))
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
        assert images >= 1, f"{path.name} drew no figure"
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, path.name
