"""Which model a cohort supports — the sequence model or the logistic baseline on window summaries — chosen by
participant-grouped cross-validation, with nested cross-validation saying how well that choice does on people it
never saw (`earlywarn train --model auto|choose`, docs/training.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from earlywarn.data.windows import WindowSet
from earlywarn.training import tracking
from earlywarn.training.choices import ModelKind
from earlywarn.training.configs import FitConfig
from earlywarn.training.fold_fit import fit_bundle
from earlywarn.training.metrics import safe_auc
from earlywarn.training.splits import FoldPlan, TrainingDataError, plan_folds
from earlywarn.training.train import TrainConfig, TrainResult, load_windows, train

SMALL_COHORT = 200  # participants with windows; `auto` chooses at or below it, larger cohorts get the sequence model
OUTER_FOLDS, INNER_FOLDS = 5, 3


@dataclass(frozen=True)
class Candidate:
    """One option the choice weighs: a model kind and its behavioural-penalty weight."""

    kind: ModelKind
    behaviour_weight: float | None  # None: as configured (`--behaviour-weight`)

    def fit(self, fit: FitConfig) -> FitConfig:
        weight = fit.behaviour_weight if self.behaviour_weight is None else self.behaviour_weight
        return replace(fit, kind=self.kind, behaviour_weight=weight, hparams={} if self.kind == "baseline" else fit.hparams)


# Simplest first: the one-SE rule prefers the earlier of two that the folds cannot tell apart. The penalty is a
# prior about which way is worse; case-control data (cases vs controls, not before vs after) may not follow it.
CANDIDATES = {
    "baseline": Candidate("baseline", 0.0),
    "sequence": Candidate("additive", None),
    "sequence_no_penalty": Candidate("additive", 0.0),
}


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean and standard error of the per-fold difference a - b (folds where both are defined)."""
    d = np.array(a) - np.array(b)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan"), float("nan")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("inf")


@dataclass
class Comparison:
    """Every candidate's AUROC on the same participant-grouped folds; the choice by the one-standard-error rule."""

    auroc: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in CANDIDATES})

    def best(self) -> str:
        means = {k: _mean(v) for k, v in self.auroc.items()}
        return max(CANDIDATES, key=lambda k: (np.nan_to_num(means[k], nan=-1.0), -list(CANDIDATES).index(k)))

    @property
    def choice(self) -> str:
        """The simplest candidate within one standard error of the best (paired over folds): on 20–200 people a small
        lead is mostly fold noise, and the simpler model is the safer one to serve."""
        best = self.best()
        for name in CANDIDATES:
            lead, se = _paired(self.auroc[best], self.auroc[name])
            if name == best or lead <= se:
                return name
        return best

    def reason(self) -> str:
        best, chosen = self.best(), self.choice
        lead, se = _paired(self.auroc[best], self.auroc[chosen])
        means = ", ".join(f"{k} {_mean(v):.3f}" for k, v in self.auroc.items())
        folds = len(self.auroc[chosen])
        why = "the best" if chosen == best else f"within one SE of the best ({best}: lead {lead:+.3f}, SE {se:.3f})"
        return f"{chosen} chosen, {why}: mean AUROC over {folds} participant-grouped folds {means}"


@dataclass
class NestedChoice:
    """The choice on everyone, and per outer fold what the inner choice picked and how each option did on the fold's
    unseen people: the nested estimate of the choosing procedure itself."""

    comparison: Comparison
    picked: list[str]
    chosen_auroc: list[float]

    @property
    def choice(self) -> str:
        return self.comparison.choice

    def estimates(self) -> dict[str, float]:
        """Mean outer-fold AUROC of always taking each candidate, and of choosing (what `auto` gives)."""
        out = {f"choice_nested_auroc_{k}": _mean(v) for k, v in self.comparison.auroc.items()}
        out["choice_nested_auroc_auto"] = _mean(self.chosen_auroc)
        return out

    def reason(self) -> str:
        e = self.estimates()
        always = ", ".join(f"always {k} {e[f'choice_nested_auroc_{k}']:.3f}" for k in CANDIDATES)
        return (
            f"{self.comparison.reason()}; nested estimate on unseen people: choosing {e['choice_nested_auroc_auto']:.3f} "
            f"(picked {', '.join(self.picked)}), {always}"
        )


def _fold_auroc(cfg: TrainConfig, windows: WindowSet, plan: FoldPlan, name: str, labels: bool) -> float:
    """Fit one candidate on the fold's training people (early-stopped on its validation people); AUROC on its test people.
    Logits suffice: calibration is monotone, so it does not change the ranking the choice is made on."""
    fit = replace(CANDIDATES[name].fit(cfg.fit), progress=False, devices=1, strategy="auto")
    made = fit_bundle(cfg, fit, windows.for_participants(set(plan.train)), windows.for_participants(set(plan.val)),
                      None, None, labels, complete=False)  # fmt: skip
    assert made is not None
    test = windows.for_participants(set(plan.test))
    return safe_auc(test.label.astype(int), made[0].logits(test))


def compare(cfg: TrainConfig, windows: WindowSet, folds: int, seed: int, labels: bool) -> Comparison:
    """Every candidate on the same participant-grouped folds."""
    result = Comparison()
    for plan in plan_folds(windows, folds, seed):
        for name in CANDIDATES:
            result.auroc[name].append(_fold_auroc(cfg, windows, plan, name, labels))
    return result


def nested_choice(cfg: TrainConfig, windows: WindowSet, labels: bool) -> NestedChoice:
    """Outer folds: inside each, choose by inner folds on the outer training people only, then score both kinds on
    the outer test people. The outer folds' scores of every candidate are also the comparison the final choice uses."""
    seed = cfg.fit.seed
    everyone, picked, chosen = Comparison(), list[str](), list[float]()
    for k, plan in enumerate(plan_folds(windows, OUTER_FOLDS, seed)):
        rest = windows.for_participants(set(map(str, np.unique(windows.participant_id))) - set(map(str, plan.test)))
        inner = compare(cfg, rest, INNER_FOLDS, seed + 100 + k, labels).choice
        scores = {name: _fold_auroc(cfg, windows, plan, name, labels) for name in CANDIDATES}
        for name in CANDIDATES:
            everyone.auroc[name].append(scores[name])
        picked.append(inner)
        chosen.append(scores[inner])
    return NestedChoice(everyone, picked, chosen)


def choose_and_train(cfg: TrainConfig, when: Literal["small", "always"] = "small") -> tuple[TrainResult, str]:
    """Choose (for small cohorts, or always), train and register the choice, and record why with the run."""
    _, _, data, windows = load_windows(cfg)
    plan_folds(windows, cfg.cv_folds, cfg.fit.seed)  # the requested protocol's own errors come first
    people = len(np.unique(windows.participant))
    single = str(cfg.fit.devices) in ("1", "auto") and cfg.fit.num_nodes == 1
    nested: NestedChoice | None = None
    if when == "small" and people > SMALL_COHORT:
        name, reason = "sequence", f"sequence: {people} participants (more than {SMALL_COHORT}), trained without a choice"
    elif not single:
        name, reason = "sequence", "sequence: distributed training runs the sequence model without a choice"
    else:
        try:
            nested = nested_choice(cfg, windows, data.mode == "label")
            name, reason = nested.choice, nested.reason()
        except TrainingDataError as err:
            name, reason = "baseline", f"baseline: too few people of each outcome for nested cross-validation ({err})"
    fit = CANDIDATES[name].fit(cfg.fit)
    result = train(replace(cfg, fit=fit, compare_baseline=cfg.compare_baseline and fit.kind != "baseline"))
    if result.is_global_zero and result.run_id is not None:
        with tracking.run(run_id=result.run_id):
            record = {"choice": name, "kind": fit.kind, "behaviour_weight": fit.behaviour_weight, "reason": reason,
                      "participants": people} | (
                {"outer_folds": OUTER_FOLDS, "inner_folds": INNER_FOLDS, "picked_per_outer_fold": nested.picked,
                 "auroc_per_outer_fold": nested.comparison.auroc, "chosen_auroc_per_outer_fold": nested.chosen_auroc}
                if nested else {}
            )  # fmt: skip
            metrics = nested.estimates() if nested else {}
            texts = {"model_choice.txt": reason, "model_choice.json": json.dumps(record, indent=2, default=float)}
            tracking.log_run({}, metrics, [], texts=texts, tags={"model_choice": name})
    return result, reason
