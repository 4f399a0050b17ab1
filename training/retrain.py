"""`retrain(cfg) -> RetrainResult`: training data plus what the service scored and partners reported; train, then gate."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from earlywarn.data import progress, state, store
from earlywarn.data.contract import DATE, EVENT, PARTICIPANT
from earlywarn.data.ingest import CARE_FILE
from earlywarn.training import tracking
from earlywarn.training.fit import FitConfig
from earlywarn.training.promote import PromoteConfig, PromoteResult, promote
from earlywarn.training.run_report import comparison_table
from earlywarn.training.train import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class RetrainConfig:
    """Where the live data is, from when, and how to train and gate the challenger."""

    db_url: str
    since: dt.date | None = None  # only logged inputs whose window ends on or after this day
    base_features: Path | None = None  # default: the champion's training data, from its MLflow run
    base_outcomes: Path | None = None
    out: Path = field(default_factory=lambda: state.path("retrain"))
    fit: FitConfig = field(default_factory=FitConfig)
    gates: PromoteConfig = field(default_factory=PromoteConfig)
    now: dt.datetime | None = None


@dataclass
class RetrainResult:
    features_path: Path
    outcomes_path: Path
    logged_participants: int
    logged_days: int
    reported_events: int
    escalations_acted_on: int
    left_out_partners: int  # sent traffic without opting in to retraining
    left_out_people: int  # of partners that opted in, with fewer logged days than their minimum
    train: TrainResult
    promotion: PromoteResult
    comparison: str


def _base_paths(cfg: RetrainConfig) -> tuple[Path, Path]:
    if cfg.base_features and cfg.base_outcomes:
        return cfg.base_features, cfg.base_outcomes
    tracking.configure()
    champion = tracking.version_info(tracking.CHAMPION)
    if champion is None:
        raise LookupError("no champion: pass the original training data (--features, --outcomes)")
    return tracking.training_data(champion.run_id).original_paths()  # a retrained champion: its first data


def live_dataset(cfg: RetrainConfig, base_features: Path, base_outcomes: Path, folder: Path) -> tuple[Path, Path, dict[str, int]]:
    """Write the training tables: the original ones plus logged daily inputs and reported events (as event outcomes).

    Logged participants appear under their pseudonymous key (partner:key), never a raw id. Windows are built later by
    the usual rules, so a window counts only with a full horizon of follow-up inside the data (matured) and its
    features only ever come from days up to its end."""
    engine = store.engine_for(cfg.db_url)
    store.migrate(engine)
    base = pd.read_parquet(base_features) if base_features.suffix == ".parquet" else pd.read_csv(base_features)
    base_out = pd.read_csv(base_outcomes, dtype={PARTICIPANT: str})
    if EVENT not in base_out.columns:
        raise ValueError("retraining on reported outcomes needs event-mode training data (participant_id, date, event)")
    logged = store.read_inputs(engine, since=cfg.since)
    features = [c for c in base.columns if c not in (PARTICIPANT, DATE)]
    stats = {"logged_participants": 0, "logged_days": 0, "reported_events": 0, "left_out_partners": 0, "left_out_people": 0}
    parts, events = [base], [base_out[[PARTICIPANT, DATE, EVENT]]]
    if not logged.empty:
        width = len(logged.columns) - 3
        if width != len(features):
            raise ValueError(f"logged windows have {width} features, the training data {len(features)}: models differ")
        logged = _consented(engine, logged.rename(columns=dict(enumerate(features))), stats)
        ids = logged["partner"] + ":" + logged["participant_key"]
        live = logged[features].assign(**{PARTICIPANT: ids, DATE: pd.to_datetime(logged["date"])})[[PARTICIPANT, DATE, *features]]
        parts.append(live)
        reported = store.read_outcomes(engine)
        if not reported.empty:
            reported = reported.assign(**{PARTICIPANT: reported["partner"] + ":" + reported["participant_key"]})
            reported = reported[reported[PARTICIPANT].isin(set(ids))]
            reported[DATE] = pd.to_datetime(reported["date"]).dt.strftime("%Y-%m-%d")
            events.append(reported[[PARTICIPANT, DATE, EVENT]])
            stats["reported_events"] = len(reported)
        stats["logged_participants"], stats["logged_days"] = int(ids.nunique()), len(live)
    folder.mkdir(parents=True, exist_ok=True)
    features_path, outcomes_path = folder / "features.parquet", folder / "outcomes.csv"
    care = _care_days(engine, set(ids) if not logged.empty else set())
    stats["escalations_acted_on"] = len(care)
    care.to_csv(folder / CARE_FILE, index=False)
    combined = pd.concat(parts, ignore_index=True)
    combined[DATE] = pd.to_datetime(combined[DATE])
    combined.to_parquet(features_path, index=False)
    pd.concat(events, ignore_index=True).drop_duplicates().to_csv(outcomes_path, index=False)
    attributes = base_features.parent / "participants.csv"
    if attributes.exists():
        (folder / "participants.csv").write_text(attributes.read_text())
    return features_path, outcomes_path, stats


def _consented(engine: sa.Engine, logged: pd.DataFrame, stats: dict[str, int]) -> pd.DataFrame:
    """Only traffic of partners that opted in to retraining, and of their people with at least the partner's minimum
    of logged days (a one-day probe never becomes training data)."""
    allowed = store.retraining_partners(engine)
    stats["left_out_partners"] = len(set(logged["partner"]) - set(allowed))
    logged = logged[logged["partner"].isin(set(allowed))]
    days = logged.groupby(["partner", "participant_key"])["date"].transform("nunique")
    enough = days >= logged["partner"].map(allowed)
    stats["left_out_people"] = int(logged.loc[~enough, ["partner", "participant_key"]].drop_duplicates().shape[0])
    return logged[enough]


def _care_days(engine: sa.Engine, logged_ids: set[str]) -> pd.DataFrame:
    """The day each escalation opened that a care team acted on (feedback contacted / already_in_care), for the
    logged participants: windows care may have changed are censored in training, not taken as negatives."""
    alerts = store.read_alerts(engine)
    acted = alerts[alerts["action"].isin(store.ACTED_ON) & ~alerts["post_event"].astype(bool)]
    ids = acted["partner"] + ":" + acted["participant_key"]
    care = pd.DataFrame({PARTICIPANT: ids, DATE: pd.to_datetime(acted["day"]).dt.strftime("%Y-%m-%d")})
    return care[care[PARTICIPANT].isin(logged_ids)].drop_duplicates()


def retrain(cfg: RetrainConfig) -> RetrainResult:
    """Build the live training set, train a challenger, compare it with the champion on the same held-out
    participants, promote it if it passes the gates; log the comparison to the challenger's MLflow run."""
    now = cfg.now or dt.datetime.now(dt.UTC)
    base_features, base_outcomes = _base_paths(cfg)
    folder = cfg.out / now.strftime("%Y%m%dT%H%M%S")
    features_path, outcomes_path, stats = live_dataset(cfg, base_features, base_outcomes, folder)
    trained = train(
        TrainConfig(
            features=features_path,
            outcomes=outcomes_path,
            out=folder / "train",
            fit=replace(cfg.fit, progress=progress.shown()),
            run_name="retrain",
            compare_baseline=False,
            original_data=(base_features, base_outcomes),
        )
    )
    promotion = promote(cfg.gates)
    table = comparison_table(promotion)
    if trained.run_id:
        summary = {"gates": [g.__dict__ for g in promotion.gates], **stats, "promoted": promotion.promoted}
        with tracking.run(run_id=trained.run_id):
            tracking.log_run(
                {},
                {},
                [],
                texts={
                    "retrain_comparison.txt": table + "\n\n" + promotion.message + "\n",
                    "retrain.json": json.dumps(summary, indent=2, default=str),
                },
                tags={"earlywarn.retrain": "true", "earlywarn.promoted": str(promotion.promoted).lower()},
            )
    (folder / "comparison.txt").write_text(table + "\n\n" + promotion.message + "\n")
    (folder / "retrain.json").write_text(json.dumps(stats | {"promoted": promotion.promoted}, indent=2))
    return RetrainResult(features_path, outcomes_path, train=trained, promotion=promotion, comparison=table, **stats)
