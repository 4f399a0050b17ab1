"""Nightly batch scoring from a file gives exactly the scores the API gives, in bounded row batches."""

from __future__ import annotations

import bentoml
import numpy as np
import pandas as pd
import pytest

from earlywarn.serving.results import assemble, score
from earlywarn.serving.score_file import BatchScoreConfig, score_file
from earlywarn.training.bundle import ModelBundle


def test_batch_scores_match_the_api_scoring_path(served_model, small_cohort, tmp_path, monkeypatch):
    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    tag = served_model["EARLYWARN_MODEL_TAG"]
    # 1,000-row batches split most participants (240 days each) across batches: the carry-over must join them.
    result = score_file(BatchScoreConfig(small_cohort.features_path, tmp_path / "scores.parquet", tag, batch_rows=1000))
    out = pd.read_parquet(result.out)
    assert result.participants == 80 == len(out) == out["participant_id"].nunique()
    assert (out["status"] == "scored").sum() == result.scored > 70

    bundle = ModelBundle.load(bentoml.models.get(tag).path)
    table = pd.read_parquet(small_cohort.features_path)
    some = sorted(table["participant_id"].unique())[:5]
    rows = []
    for pid in some:
        person = table[table["participant_id"] == pid].tail(90)  # the API takes 90 days: the personal baseline
        rows.append(
            (
                pid,
                [
                    (d.date(), [None if pd.isna(v) else float(v) for v in r])
                    for d, r in zip(person["date"], person[bundle.features].to_numpy(), strict=True)
                ],
            )
        )
    api, _, _ = score(bundle, assemble(rows, len(bundle.features)), explain=False)
    mine = out.set_index("participant_id").loc[some]
    np.testing.assert_allclose(mine["risk"].to_numpy(), [r["risk"] for r in api], atol=1e-4)
    assert list(mine["band"]) == [r["band"] for r in api]
    assert (mine["window_end"].astype(str) == str(table["date"].max().date())).all()


def test_rows_out_of_participant_order_are_refused(served_model, small_cohort, tmp_path, monkeypatch):
    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    table = pd.read_parquet(small_cohort.features_path)
    shuffled = pd.concat([table.iloc[:5000], table.iloc[10000:12000], table.iloc[5000:10000]])
    shuffled.to_parquet(tmp_path / "f.parquet", row_group_size=1000)
    with pytest.raises(ValueError, match="not contiguous"):
        score_file(
            BatchScoreConfig(tmp_path / "f.parquet", tmp_path / "o.parquet", served_model["EARLYWARN_MODEL_TAG"], batch_rows=1000)
        )


def test_someone_whose_data_stopped_early_is_stale_in_a_batch(served_model, small_cohort, tmp_path, monkeypatch):
    """Scores are for the file's newest day, also in the row batches that do not hold it."""
    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    table = pd.read_parquet(small_cohort.features_path)
    first, second = sorted(table["participant_id"].unique())[:2]
    stopped = table[table["participant_id"] == first]["date"].max() - pd.Timedelta(days=10)
    table = table[(table["participant_id"] != first) | (table["date"] <= stopped)]
    table.to_parquet(tmp_path / "f.parquet", row_group_size=1000)
    result = score_file(
        BatchScoreConfig(tmp_path / "f.parquet", tmp_path / "o.parquet", served_model["EARLYWARN_MODEL_TAG"], batch_rows=500)
    )
    out = pd.read_parquet(result.out).set_index("participant_id")
    assert out.loc[first, "status"] == "stale" and np.isnan(out.loc[first, "risk"]) and not out.loc[first, "escalate"]
    assert out.loc[second, "status"] == "scored"


def test_a_wearable_only_file_is_scored_on_what_it_sends(served_model, small_cohort, tmp_path, monkeypatch):
    """A partner with a wearable and no phone or check-ins: the absent columns are signals never sent, not an error;
    each row says which signals its score rests on, and the scores are the API's for the same days."""
    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    wearable = ["sleep_duration_h", "sleep_midpoint_h", "sleep_efficiency", "steps", "active_minutes"]
    wearable += ["sedentary_minutes", "resting_hr_bpm", "hrv_rmssd_ms"]
    table = pd.read_parquet(small_cohort.features_path)[["participant_id", "date", *wearable]]
    table.to_parquet(tmp_path / "wearable.parquet")
    tag = served_model["EARLYWARN_MODEL_TAG"]
    out = pd.read_parquet(score_file(BatchScoreConfig(tmp_path / "wearable.parquet", tmp_path / "o.parquet", tag)).out)
    assert (out["status"] == "scored").sum() > 70
    assert set(out.loc[out["status"] == "scored", "signals_used"]) == {",".join(wearable)}
    bundle = ModelBundle.load(bentoml.models.get(tag).path)
    person = table[table["participant_id"] == "P03"].tail(90)
    days = [
        (d.date(), [None if f not in wearable or pd.isna(r[f]) else float(r[f]) for f in bundle.features])
        for d, r in person.set_index("date").iterrows()
    ]
    (api,), _, _ = score(bundle, assemble([("P03", days)], len(bundle.features)), explain=False)
    assert out.set_index("participant_id").loc["P03", "risk"] == pytest.approx(api["risk"], abs=1e-4)

    table[["participant_id", "date"]].to_parquet(tmp_path / "nothing.parquet")
    with pytest.raises(ValueError, match="none of the model's signals"):
        score_file(BatchScoreConfig(tmp_path / "nothing.parquet", tmp_path / "o2.parquet", tag))


def test_batch_scoring_leaves_out_withdrawn_people_and_writes_pseudonyms(served_model, small_cohort, tmp_path, monkeypatch):
    """b9b83e2's `earlywarn score` scored withdrawn people and wrote raw ids under the state root (issue 30)."""
    from typer.testing import CliRunner

    from earlywarn.cli import app
    from earlywarn.data import store
    from earlywarn.data.pseudonym import Pseudonymizer
    from earlywarn.data.store.keys import create_key

    monkeypatch.setenv("BENTOML_HOME", served_model["BENTOML_HOME"])
    monkeypatch.setenv("EARLYWARN_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    engine = store.engine_for(f"sqlite:///{tmp_path / 'store.db'}")
    create_key(engine, "acme", actor="test")
    ids = sorted(pd.read_parquet(small_cohort.features_path, columns=["participant_id"])["participant_id"].unique())
    pseudonym = Pseudonymizer.from_env()
    store.forget(engine, "acme", pseudonym("acme", ids[3]), [], actor="test")
    tag = served_model["EARLYWARN_MODEL_TAG"]
    cfg = BatchScoreConfig(small_cohort.features_path, tmp_path / "p.parquet", tag, batch_rows=5000, partner="acme")
    result = score_file(cfg)
    out = pd.read_parquet(result.out)
    assert result.withdrawn == 1 and result.participants == len(ids) - 1 == len(out)
    assert set(out["participant_id"]) == {pseudonym("acme", i) for i in ids if i != ids[3]}  # no raw id written
    raw = pd.read_parquet(score_file(BatchScoreConfig(**(vars(cfg) | {"out": tmp_path / "r.parquet", "raw_ids": True}))).out)
    assert ids[3] not in set(raw["participant_id"]) and ids[0] in set(raw["participant_id"])

    monkeypatch.setenv("EARLYWARN_MODE", "production")
    refused = CliRunner().invoke(app, ["score", "--features", str(small_cohort.features_path), "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "production needs --partner" in refused.output
