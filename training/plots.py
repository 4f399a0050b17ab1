"""Evaluation plots saved as PNG: ROC, precision-recall, calibration, risk trajectories around events."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from earlywarn.data import episodes
from earlywarn.data.contract import DATE, PARTICIPANT
from earlywarn.training.metrics import net_benefit


def save_plots(
    frame: pd.DataFrame,
    risk: np.ndarray,
    thresholds: dict[str, float],
    out_dir: Path,
    events: pd.DataFrame | None = None,
    title: str = "",
) -> list[Path]:
    """Write roc.png, pr.png, calibration.png, decision_curve.png and (with events) trajectories.png; returns their
    paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    y = frame["label"].to_numpy().astype(int)
    paths = []

    fig, ax = plt.subplots(figsize=(5, 5))
    fpr, tpr, _ = roc_curve(y, risk)
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate (sensitivity)", title=f"ROC {title}".strip())
    ax.legend(loc="lower right")
    paths.append(_save(fig, out_dir / "roc.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    prec, rec, _ = precision_recall_curve(y, risk)
    ax.plot(rec, prec, label="model")
    ax.axhline(y.mean(), ls="--", color="grey", label=f"prevalence {y.mean():.3f}")
    ax.set(xlabel="Recall (sensitivity)", ylabel="Precision (PPV)", title=f"Precision-recall {title}".strip())
    ax.legend(loc="upper right")
    paths.append(_save(fig, out_dir / "pr.png"))

    fig, ax = plt.subplots(figsize=(5, 5))
    obs, pred = calibration_curve(y, risk, n_bins=10, strategy="quantile")
    ax.plot(pred, obs, "o-", label="model (deciles of risk)")
    top = float(max(pred.max(), obs.max()) * 1.05)
    ax.plot([0, top], [0, top], "--", color="grey", label="perfect calibration")
    ax.set(xlabel="Predicted risk", ylabel="Observed event rate", title=f"Calibration {title}".strip())
    ax.legend(loc="upper left")
    paths.append(_save(fig, out_dir / "calibration.png"))
    paths.append(_decision_curve(y, risk, thresholds, out_dir / "decision_curve.png", title))

    if events is not None and not events.empty:
        paths.append(_trajectories(frame, risk, thresholds, events, out_dir / "trajectories.png"))
    return paths


def _decision_curve(y: np.ndarray, risk: np.ndarray, thresholds: dict[str, float], path: Path, title: str) -> Path:
    """Net benefit of acting on the model's flags across threshold probabilities, beside acting on everyone or no one."""
    top = float(min(0.99, max(np.quantile(risk, 0.99) * 1.5, max(thresholds.values(), default=0) * 1.5, 0.05)))
    cuts = np.linspace(0.001, top, 200)
    prevalence = float(y.mean())
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(cuts, net_benefit(y, risk, cuts), label="act on the model's flag")
    ax.plot(cuts, prevalence - (1 - prevalence) * cuts / (1 - cuts), "--", color="grey", label="act on everyone")
    ax.axhline(0, color="black", lw=0.8, label="act on no one")
    for name, value in thresholds.items():
        ax.axvline(value, ls=":", color={"high": "red", "elevated": "orange"}.get(name, "grey"), label=f"{name} band threshold")
    ax.set_ylim(min(-0.01, -prevalence * 0.2), max(prevalence * 1.1, 0.01))
    ax.set(xlabel="Threshold probability", ylabel="Net benefit", title=f"Decision curve {title}".strip())
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def _trajectories(frame: pd.DataFrame, risk: np.ndarray, thresholds: dict[str, float], events: pd.DataFrame, path: Path) -> Path:
    scored = frame.assign(risk=risk)
    evaluated = set(scored[PARTICIPANT].unique())  # once: rebuilding it per person was quadratic in the cohort
    people = [p for p in events[PARTICIPANT].unique() if p in evaluated][:4]
    fig, axes = plt.subplots(max(len(people), 1), 1, figsize=(8, 2.2 * max(len(people), 1)), squeeze=False)
    for ax, person in zip(axes[:, 0], people, strict=False):
        s = scored[scored[PARTICIPANT] == person].sort_values(DATE)
        ax.plot(s[DATE], s["risk"], lw=1, label="risk")
        for name, value in thresholds.items():
            ax.axhline(value, ls=":", color={"high": "red", "elevated": "orange"}.get(name, "grey"), label=f"{name} band")
        for d in events.loc[events[PARTICIPANT] == person, DATE]:
            ax.axvline(d, color="black", lw=1.5, label="event")
        opened = _escalations(s[DATE], s["risk"].to_numpy(), thresholds.get("high", np.inf))
        ax.plot(opened, s.set_index(DATE).loc[opened, "risk"], "v", color="red", ms=7, label="escalation opens")
        ax.set_ylabel("risk")
        ax.set_title("A held-out participant (pseudonymous)", fontsize=9)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=True))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="upper left")
    fig.suptitle("Risk trajectories around events")
    fig.autofmt_xdate()
    return _save(fig, path)


def _escalations(days: pd.Series, risk: np.ndarray, high: float) -> list[pd.Timestamp]:
    """The days the service would open an escalation for these daily scores (the episode rules of data/episodes.py)."""
    states = episodes.replay([d.date() for d in days], risk >= high, risk)
    return [day for day, (state, _) in zip(days, states, strict=True) if state == episodes.NEW]


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
