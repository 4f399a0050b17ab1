"""Promotion gates: move `champion` to the challenger only if it holds up on the same held-out participants; rollback."""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from earlywarn.data import store
from earlywarn.data.contract import PARTICIPANT
from earlywarn.data.ingest import load_care, load_grid
from earlywarn.data.settings import settings
from earlywarn.data.windows import WindowSet, build_windows
from earlywarn.training import supply_chain, tracking
from earlywarn.training.bundle import ModelBundle, sha256
from earlywarn.training.configs import PromoteConfig
from earlywarn.training.evaluate import band_calibration, subgroup_metrics
from earlywarn.training.external import validations
from earlywarn.training.metrics import bootstrap_intervals, calibration_slope_intercept, expected_calibration_error
from earlywarn.training.splits import plan_folds
from earlywarn.training.train import heldout_digest


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str


@dataclass
class PromoteResult:
    """What happened: the champion afterwards, each gate's verdict and the side-by-side metrics."""

    promoted: bool
    champion: str | None
    previous_champion: str | None
    challenger: str | None = None
    gates: list[Gate] = field(default_factory=list)
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)
    message: str = ""

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]


def heldout_windows(run_id: str) -> tuple[WindowSet, Path, pd.DataFrame | None, int]:
    """Rebuild the challenger's held-out windows from its training-data record (files checked by fingerprint), with
    the number of events among the held-out participants (positive labels for dated labels)."""
    record = tracking.training_data(run_id)
    features, outcomes = Path(record.features_path), Path(record.outcomes_path)
    for path, digest in ((features, record.features_sha256), (outcomes, record.outcomes_sha256)):
        if not path.exists():
            raise FileNotFoundError(f"{path}: the challenger's training data is gone, so the gates cannot be checked")
        if sha256(path) != digest:
            raise RuntimeError(f"{path} changed since the challenger was trained (sha256 differs); the gates cannot be checked")
    window = record.window_config()
    data = load_grid(features, outcomes, pad=window.lookback - 1)
    windows = build_windows(data.panel, data.outcomes, window, data.mode, care=load_care(features))
    plan = plan_folds(windows, record.cv_folds, record.split_seed)[-1]
    if heldout_digest(plan.test) != record.heldout_sha256:
        raise RuntimeError("the re-derived held-out participants differ from the challenger's; the split rules changed")
    attributes_path = features.parent / "participants.csv"
    attributes = pd.read_csv(attributes_path, dtype={PARTICIPANT: str}) if attributes_path.exists() else None
    reported = data.outcomes if data.outcomes is not None else pd.DataFrame({PARTICIPANT: [], "label": []})
    held = reported[reported[PARTICIPANT].astype(str).isin(set(map(str, plan.test)))]
    events = int(held["label"].sum()) if data.mode == "label" else len(held)
    return windows.for_participants(set(plan.test)), features, attributes, events


def score_on(bundle: ModelBundle, held_out: WindowSet, features_path: Path) -> np.ndarray:
    """Risk from a bundle on the held-out windows, using the bundle's own features and lookback."""
    if bundle.features == held_out.panel.features and bundle.window.lookback == held_out.cfg.lookback:
        return bundle.risk(held_out)
    panel = held_out.panel
    if bundle.window.lookback - 1 > panel.pad:  # a longer lookback needs more empty days before each participant
        panel = load_grid(features_path, pad=bundle.window.lookback - 1).panel
    rows = panel.rows_for(pd.Index(panel.participants).get_indexer(held_out.participant_id), held_out.end_day)
    window = panel.history(rows, bundle.input_days)
    # Signals the bundle knows but the data lacks stay missing (NaN), as in serving.
    column = [panel.features.index(f) if f in panel.features else -1 for f in bundle.features]
    values = np.where(np.array(column) >= 0, window[..., column], np.nan).astype(np.float32)
    return bundle.risk(values)


def _metrics(
    cfg: PromoteConfig, bundle: ModelBundle, held_out: WindowSet, risk: np.ndarray, attributes: pd.DataFrame | None, events: int
) -> dict[str, float]:
    y = held_out.label.astype(int)
    two = len(np.unique(y)) == 2
    auroc = float(roc_auc_score(y, risk)) if two else float("nan")  # e.g. one person held out (LOSO)
    low, _ = bootstrap_intervals(y, risk, held_out.participant_id, cfg.bootstrap_reps)["auroc"] if two else (np.nan, np.nan)
    slope, intercept = calibration_slope_intercept(y, risk)
    slope_low, slope_high = _slope_interval(y, risk, held_out.participant_id, cfg.bootstrap_reps)
    m = {
        "auroc": auroc,
        "auroc_ci_low": low,
        "ece": expected_calibration_error(y, risk),
        "calibration_slope": slope,
        "calibration_slope_ci_low": slope_low,
        "calibration_slope_ci_high": slope_high,
        "calibration_intercept": intercept,
        "events": float(events),
    }
    m |= band_calibration(held_out.participant_id, y, risk, bundle.bands.high, bundle.bands.elevated, cfg.bootstrap_reps)
    if attributes is not None:
        m.update(subgroup_metrics(held_out.frame(), y, risk, attributes))
    return m


def gates(cfg: PromoteConfig, challenger: dict[str, float], champion: dict[str, float] | None) -> list[Gate]:
    out = []
    if champion is None:  # nothing to compare with: a floor instead of a comparison
        low = challenger.get("auroc_ci_low", float("nan"))
        out.append(
            Gate(
                "auroc",
                bool(low > cfg.min_auroc_lower),  # NaN (one class held out) fails
                f"no champion yet: challenger AUROC {challenger['auroc']:.3f}, 95% lower bound {low:.3f} "
                f"(must exceed {cfg.min_auroc_lower})",
            )
        )
        events = challenger.get("events", 0.0)
        out.append(Gate("events", events >= cfg.min_events, f"{events:.0f} held-out events (at least {cfg.min_events})"))
    else:
        ok = bool(challenger["auroc"] >= champion["auroc"] - cfg.auroc_tolerance)  # NaN (one class held out) fails
        out.append(
            Gate(
                "auroc",
                ok,
                f"challenger {challenger['auroc']:.3f} vs champion {champion['auroc']:.3f} (tolerance {cfg.auroc_tolerance})",
            )
        )
    out.append(Gate("ece", challenger["ece"] <= cfg.max_ece, f"challenger ECE {challenger['ece']:.3f} (limit {cfg.max_ece})"))
    slope = challenger.get("calibration_slope", float("nan"))
    low, high = challenger.get("calibration_slope_ci_low", np.nan), challenger.get("calibration_slope_ci_high", np.nan)
    outside = not cfg.min_slope <= slope <= cfg.max_slope  # NaN (one class) is outside
    clear = not (low <= 1.0 <= high)
    out.append(
        Gate(
            "calibration_slope",
            not (outside and clear),
            f"challenger calibration slope {slope:.2f} (95% CI {low:.2f}-{high:.2f}; out of {cfg.min_slope}-{cfg.max_slope} "
            "fails when the interval excludes 1)",
        )
    )
    out.append(_high_band_gate(cfg, challenger))
    collapsed = []
    for key, value in challenger.items():
        if not (key.startswith("subgroup_") and key.endswith("_auroc")):
            continue
        n = challenger.get(key.replace("_auroc", "_n_windows"), 0)
        if n < cfg.min_subgroup_windows or not np.isfinite(value):
            continue
        reference = champion.get(key) if champion else None
        floor = (reference - cfg.max_subgroup_drop) if reference is not None and np.isfinite(reference) else 0.5
        if value < floor:
            collapsed.append(f"{key[len('subgroup_') : -len('_auroc')]} {value:.3f} < {floor:.3f}")
    out.append(Gate("subgroups", not collapsed, "; ".join(collapsed) or "no subgroup AUROC collapsed"))
    out.append(_gap_gate(cfg, challenger))
    return out


def _slope_interval(y: np.ndarray, risk: np.ndarray, people: np.ndarray, reps: int, seed: int = 0) -> tuple[float, float]:
    """A participant-bootstrap 95% interval of the calibration slope."""
    codes, index = pd.factorize(people)
    rows = [np.flatnonzero(codes == c) for c in range(len(index))]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        pick = np.concatenate([rows[c] for c in rng.integers(0, len(index), len(index))])
        if len(np.unique(y[pick])) == 2:
            draws.append(calibration_slope_intercept(y[pick], risk[pick])[0])
    return (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else (np.nan, np.nan)


def _high_band_gate(cfg: PromoteConfig, challenger: dict[str, float]) -> Gate:
    """The high band's risks mean what they say: shown and observed event rate within `max_high_band_gap`."""
    windows = challenger.get("high_band_windows", 0.0)
    shown, observed = challenger.get("high_band_mean_risk", np.nan), challenger.get("high_band_event_rate", np.nan)
    if not windows >= cfg.min_band_windows:
        return Gate(
            "high_band", True, f"not judged: {windows:.0f} held-out windows in the high band (fewer than {cfg.min_band_windows})"
        )
    gap = abs(shown - observed)
    low, high = challenger.get("high_band_gap_ci_low", np.nan), challenger.get("high_band_gap_ci_high", np.nan)
    clear = not (low <= 0.0 <= high)
    detail = (
        f"high band shows {shown:.3f} on average, {observed:.3f} had an event (gap {gap:.3f}, 95% CI of shown minus "
        f"observed {low:+.3f} to {high:+.3f}; over {cfg.max_high_band_gap} fails when the interval excludes 0)"
    )
    return Gate("high_band", not (gap > cfg.max_high_band_gap and clear), detail)


def _gap_gate(cfg: PromoteConfig, challenger: dict[str, float]) -> Gate:
    """Fails when some attribute's best and worst subgroup AUROC differ by more than the limit and the interval of that
    gap excludes zero; judged only when both groups hold `min_subgroup_people` people (fewer: a bootstrap interval
    is too optimistic to block on)."""
    wide = []
    for key, gap in challenger.items():
        if not key.startswith("subgroup_gap_") or key.endswith(("_ci_low", "_ci_high", "_min_participants")):
            continue
        low = challenger.get(f"{key}_ci_low", float("nan"))
        people = challenger.get(f"{key}_min_participants", 0.0)
        if people < cfg.min_subgroup_people or not np.isfinite(gap):
            continue
        if gap > cfg.max_subgroup_gap and np.isfinite(low) and low > 0:
            wide.append(f"{key[len('subgroup_gap_') :]} gap {gap:.3f} (95% CI from {low:.3f}) > {cfg.max_subgroup_gap}")
    detail = "; ".join(wide) or f"no attribute's subgroup AUROC gap exceeds {cfg.max_subgroup_gap} beyond noise"
    return Gate("subgroup_gap", not wide, detail)


def promote(cfg: PromoteConfig) -> PromoteResult:
    """Check the challenger against the champion and move aliases; or, with rollback, restore the previous champion."""
    tracking.configure(cfg.experiment)
    history = tracking.champion_history()
    current = tracking.version_info(tracking.CHAMPION)
    if cfg.rollback:
        if current is None or len(history) < 2:
            return PromoteResult(False, current.version if current else None, None, message="no earlier champion to roll back to")
        previous = history[-2]
        _sign("rollback", previous, tracking.load_bundle(previous), cfg, reason=cfg.reason)
        tracking.set_champion(previous, history[:-1])
        _audit("model.rollback", previous, cfg, {"was": current.version})
        return PromoteResult(
            True, previous, current.version, message=f"rolled back: champion is version {previous} again (was {current.version})"
        )
    challenger = tracking.version_info(tracking.CHALLENGER)
    if challenger is None:
        return PromoteResult(
            False, current.version if current else None, None, message="no challenger registered; run `earlywarn train` first"
        )
    if current is not None and current.version == challenger.version:
        return PromoteResult(
            False, current.version, current.version, challenger.version, message="the challenger is already champion"
        )
    held_out, features, attributes, events = heldout_windows(challenger.run_id)
    challenger_bundle = tracking.load_bundle(challenger.version)
    chall = _metrics(cfg, challenger_bundle, held_out, score_on(challenger_bundle, held_out, features), attributes, events)
    champ = None
    if current:
        champion_bundle = tracking.load_bundle(current.version)
        champ = _metrics(cfg, champion_bundle, held_out, score_on(champion_bundle, held_out, features), attributes, events)
    verdicts = gates(cfg, chall, champ) + ([] if settings().demo else [_validated_on_real_data(challenger.version)])
    comparison = {"challenger": chall} | ({"champion": champ} if champ else {})
    result = PromoteResult(
        False,
        current.version if current else None,
        current.version if current else None,
        challenger.version,
        verdicts,
        comparison,
    )
    if all(g.passed for g in verdicts) or cfg.force:
        if result.failed:  # forced past failed gates: say who and why, on the version itself
            tracking.tag_version(
                challenger.version, "promotion_", supply_chain.override_tags(_who(cfg), cfg.reason, result.failed)
            )
        gates_seen = [asdict(g) for g in verdicts]
        overridden = [g.name for g in result.failed]
        _sign("promote", challenger.version, challenger_bundle, cfg, gates=gates_seen, overridden=overridden, figures=chall)
        tracking.set_champion(challenger.version, [*history, challenger.version])
        _audit("model.promote", challenger.version, cfg, {"overridden": [g.name for g in result.failed], "reason": cfg.reason})
        result.promoted, result.champion = True, challenger.version
        result.message = f"promoted version {challenger.version} to champion"
        if result.failed:
            result.message += f", overriding {', '.join(g.name for g in result.failed)} (by {_who(cfg)}: {cfg.reason})"
    else:
        result.message = "not promoted: " + "; ".join(f"{g.name} gate failed ({g.detail})" for g in result.failed)
    return result


def _validated_on_real_data(version: str) -> Gate:
    """Production: only with a validation record of this version on real people (`earlywarn evaluate`), or --force."""
    real = [r for r in validations(version) if r.get("real_people")]
    if not real:
        return Gate("real_data_validation", False, f"version {version} has no validation record on real people's data")
    verdict = "meeting" if real[-1]["meets_criteria"] else "NOT meeting"
    return Gate("real_data_validation", True, f"validated on {real[-1]['people']:.0f} real people ({verdict} its criteria)")


def _who(cfg: PromoteConfig) -> str:
    return cfg.forced_by or getpass.getuser()


def _sign(action: str, version: str, bundle: ModelBundle, cfg: PromoteConfig, **decision: Any) -> None:
    """The signed record packaging and serving require (`supply_chain`): without it the alias alone is refused."""
    info = tracking.version_info(version)
    record = supply_chain.new_record(action, version, info.run_id if info else "", bundle, by=_who(cfg), **decision)
    tracking.tag_version(version, "", {supply_chain.PROMOTION_TAG: record.signed()})


def _audit(action: str, version: str, cfg: PromoteConfig, detail: dict) -> None:
    store.audit.record(store.engine_for(store.url_from_env()), store.audit.cli_actor(cfg.forced_by), action, version, detail)
