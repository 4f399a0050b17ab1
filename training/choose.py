"""Which model a cohort supports: the sequence model or the logistic baseline on window summaries, compared on the
same participant-grouped folds, the choice and its reason recorded with the run (`earlywarn train --model auto`)."""

from __future__ import annotations

from dataclasses import replace

from earlywarn.training import tracking
from earlywarn.training.train import TrainConfig, TrainResult, train


def choose_and_train(cfg: TrainConfig) -> tuple[TrainResult, str]:
    """Train the sequence model with the baseline beside it on the same folds; where the baseline's held-out AUROC is
    at least as high (the simpler model wins a tie), train and register the baseline instead. Small real cohorts
    often favour it (docs/training.md)."""
    first = train(replace(cfg, fit=replace(cfg.fit, kind="additive"), compare_baseline=True))
    if not first.is_global_zero:
        return first, ""
    sequence, baseline = first.metrics["auroc"], first.metrics.get("baseline_auroc", float("nan"))
    if not baseline >= sequence:
        reason = f"additive kept: held-out AUROC {sequence:.3f} against the baseline's {baseline:.3f} on the same folds"
        _note(first.run_id, "additive", reason)
        return first, reason
    reason = f"baseline chosen: held-out AUROC {baseline:.3f} against the additive model's {sequence:.3f} on the same folds"
    _note(first.run_id, "baseline", reason)
    chosen = train(replace(cfg, fit=replace(cfg.fit, kind="baseline"), compare_baseline=False))
    _note(chosen.run_id, "baseline", reason)
    return chosen, reason


def _note(run_id: str | None, kind: str, reason: str) -> None:
    if run_id is None:
        return
    with tracking.run(run_id=run_id):
        tracking.log_run({}, {}, [], texts={"model_choice.txt": reason}, tags={"model_choice": kind})
