"""Plots for exploring a cohort in the notebooks: signals and missingness around relapse events, personal baselines."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from earlywarn.data.contract import DATE, PARTICIPANT, SIGNALS


def _label(signal: str) -> str:
    sig = SIGNALS.get(signal)
    return f"{signal} ({sig.unit})" if sig else signal


def signals_around_events(
    features: pd.DataFrame, outcomes: pd.DataFrame, participants: list[str], signals: list[str], days: int = 60
) -> plt.Figure:
    """For each participant, the signals over the `days` before and after their first event, in personal SDs."""
    fig, axes = plt.subplots(len(participants), 1, figsize=(11, 3.2 * len(participants)), squeeze=False)
    for ax, pid in zip(axes[:, 0], participants, strict=True):
        person = features[features[PARTICIPANT] == pid].set_index(DATE).sort_index()
        event = pd.Timestamp(outcomes.loc[outcomes[PARTICIPANT] == pid, DATE].min())
        span = person.loc[event - pd.Timedelta(days=days) : event + pd.Timedelta(days=days // 2)]
        for s in signals:
            z = (span[s] - person[s].mean()) / person[s].std()
            ax.plot((pd.DatetimeIndex(span.index) - event).days, z, label=_label(s), lw=1.2)
        ax.axvline(0, color="crimson", ls="--", label="relapse event")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(
            title=f"Participant {pid}: signals around the first relapse", xlabel="days from event", ylabel="personal z-score (SD)"
        )
        ax.legend(fontsize=8, ncol=2, loc="upper left")
    fig.tight_layout()
    return fig


def missingness_around_events(features: pd.DataFrame, outcomes: pd.DataFrame, days: int = 42) -> plt.Figure:
    """Share of missing values per signal group by day relative to each event (all events pooled)."""
    signals = [c for c in features.columns if c in SIGNALS]
    groups = sorted({SIGNALS[s].group for s in signals})
    rows = []
    by_person = {pid: g.set_index(DATE) for pid, g in features.groupby(PARTICIPANT)}
    for pid, when in zip(outcomes[PARTICIPANT], pd.to_datetime(outcomes[DATE]), strict=True):
        person = by_person.get(pid)
        if person is None:
            continue
        span = person.loc[when - pd.Timedelta(days=days) : when]
        offset = (pd.DatetimeIndex(span.index) - when).days
        for g in groups:
            cols = [s for s in signals if SIGNALS[s].group == g]
            rows.append(pd.DataFrame({"day": offset, "group": g, "missing": span[cols].isna().mean(axis=1).to_numpy()}))
    frame = pd.concat(rows)
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, part in frame.groupby("group"):
        curve = part.groupby("day")["missing"].mean()
        ax.plot(curve.index, curve.to_numpy(), label=str(name))
    ax.set(title="Missing data in the weeks before relapse events", xlabel="days before event", ylabel="share of values missing")
    ax.legend(title="signal group")
    fig.tight_layout()
    return fig


def personal_baseline(
    features: pd.DataFrame, outcomes: pd.DataFrame, participant: str, signal: str, window: int = 28
) -> plt.Figure:
    """One participant's daily values against their rolling personal baseline (mean ± 1 SD of the previous weeks)."""
    person = features[features[PARTICIPANT] == participant].set_index(DATE).sort_index()[signal]
    mean = person.shift(1).rolling(window, min_periods=7).mean()
    sd = person.shift(1).rolling(window, min_periods=7).std()
    fig, ax = plt.subplots(figsize=(11, 3.5))
    ax.plot(person.index, person.to_numpy(), lw=0.8, label="daily value")
    ax.plot(mean.index, mean.to_numpy(), color="black", label=f"personal baseline ({window}-day mean)")
    ax.fill_between(mean.index, (mean - sd).to_numpy(), (mean + sd).to_numpy(), color="grey", alpha=0.3, label="± 1 SD")
    for i, when in enumerate(pd.to_datetime(outcomes.loc[outcomes[PARTICIPANT] == participant, DATE])):
        ax.axvline(float(mdates.date2num(when)), color="crimson", ls="--", label="relapse event" if i == 0 else None)
    ax.set(title=f"Participant {participant}: {signal} against the personal baseline", xlabel="date", ylabel=_label(signal))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def distributions(reference: pd.DataFrame, current: pd.DataFrame, signals: list[str]) -> plt.Figure:
    """Reference and live distributions of the model-input summaries (weekly means) of some signals."""
    fig, axes = plt.subplots(1, len(signals), figsize=(5 * len(signals), 3.5), squeeze=False)
    for ax, s in zip(axes[0], signals, strict=True):
        ref, cur = reference[s].dropna().to_numpy(float), current[s].dropna().to_numpy(float)
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"reference (n={len(ref)})")
        ax.hist(cur, bins=bins, density=True, alpha=0.5, label=f"live (n={len(cur)})")
        ax.set(title=f"{s}: weekly mean per window", xlabel=_label(s), ylabel="density")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
