"""The distributed batch-scoring path (Ray Data, local mode) gives the same scores as `earlywarn score`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from earlywarn.serving.score_file import BatchScoreConfig, score_file

pytestmark = pytest.mark.slow


def test_ray_local_mode_matches_the_single_process_scores(served_model, small_cohort, tmp_path, monkeypatch):
    import bentoml  # Ray itself comes with `make test` (the scale extra), so a missing install fails here, not skips

    from earlywarn.serving.ray_score import score_with_ray

    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    tag = served_model["EARLYWARN_MODEL_TAG"]
    single = pd.read_parquet(score_file(BatchScoreConfig(small_cohort.features_path, tmp_path / "one.parquet", tag)).out)
    n = score_with_ray(small_cohort.features_path, tmp_path / "ray", bentoml.models.get(tag).path)
    spread = pd.read_parquet(tmp_path / "ray")
    assert n == len(single) == 80
    a, b = single.set_index("participant_id").sort_index(), spread.set_index("participant_id").sort_index()
    np.testing.assert_allclose(a["risk"].to_numpy(), b["risk"].to_numpy(), atol=1e-5)
    assert (a["band"].fillna("") == b["band"].fillna("")).all()
