"""Episode-level figures a care team lives with: episode PPV, event sensitivity, lead times and alert load (issue 28)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from earlywarn.data import episodes
from earlywarn.data.contract import DATE, PARTICIPANT

LEAD_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def openings(frame: pd.DataFrame, risk: np.ndarray, high: float | np.ndarray, rules: episodes.Rules) -> pd.DataFrame:
    """The episodes the service would open scoring each participant's windows day by day (no feedback): one row per
    opening, with participant and day."""
    scored = frame[[PARTICIPANT, DATE]].assign(risk=np.asarray(risk, float), high=np.asarray(risk, float) >= high)
    rows = []
    for pid, person in scored.sort_values([PARTICIPANT, DATE]).groupby(PARTICIPANT, sort=False):
        days = [d.date() for d in person[DATE]]
        states = episodes.replay(days, person["high"].to_numpy(), person["risk"].to_numpy(), rules)
        rows += [(pid, pd.Timestamp(day)) for day, (state, _) in zip(days, states, strict=True) if state == episodes.NEW]
    return pd.DataFrame(rows, columns=[PARTICIPANT, DATE])


def judge_openings(opened: pd.DataFrame, events: pd.DataFrame | None, horizon: int, washout: int) -> pd.DataFrame:
    """Each opening with `lead` (days to the first event 1..horizon days after it; NaN: none followed) and
    `post_event` (it opened within the washout after an event: neither an early warning nor a false alarm)."""
    out = opened[[PARTICIPANT, DATE]].reset_index(drop=True).assign(lead=np.nan, post_event=False)
    if events is None or events.empty or out.empty:
        return out
    pairs = out.reset_index().merge(events[[PARTICIPANT, DATE]].rename(columns={DATE: "event"}), on=PARTICIPANT)
    gap = (pairs["event"] - pairs[DATE]).dt.days
    ahead = pairs[(gap >= 1) & (gap <= horizon)].assign(gap=gap).groupby("index")["gap"].min()
    after = pairs[(gap < 0) & (-gap <= washout)]["index"].unique()
    out.loc[ahead.index, "lead"] = ahead.to_numpy(float)
    out.loc[after, "post_event"] = True
    return out


def caught_events(events: pd.DataFrame | None, opened: pd.DataFrame, observed: pd.DataFrame, horizon: int) -> tuple[int, int]:
    """(events an opening came 1..horizon days before, events with the participant observed in that horizon)."""
    if events is None or events.empty:
        return 0, 0
    ev = events[[PARTICIPANT, DATE]].drop_duplicates().rename(columns={DATE: "event"}).reset_index(drop=True)
    seen = ev.reset_index().merge(observed[[PARTICIPANT, DATE]], on=PARTICIPANT)
    lag = (seen["event"] - seen[DATE]).dt.days
    judged = set(seen.loc[(lag >= 1) & (lag <= horizon), "index"])
    hits = ev.reset_index().merge(opened[[PARTICIPANT, DATE]], on=PARTICIPANT)
    lag = (hits["event"] - hits[DATE]).dt.days
    caught = set(hits.loc[(lag >= 1) & (lag <= horizon), "index"]) & judged
    return len(caught), len(judged)


def episode_figures(
    judged: pd.DataFrame, caught: tuple[int, int], participant_months: float, reps: int = 200, seed: int = 0
) -> dict[str, float]:
    """Episode PPV (openings followed by an event within the horizon, post-event ones left out) with a participant-
    bootstrap 95% interval, event sensitivity per episode, the lead-time distribution and openings per 100
    participant-months."""
    counted = judged[~judged["post_event"]]
    followed = counted["lead"].notna().to_numpy()
    out = {
        "episodes_opened": float(len(counted)),
        "episodes_post_event": float(judged["post_event"].sum()),
        "episode_ppv": float(followed.mean()) if len(counted) else float("nan"),
        "event_sensitivity_episodes": caught[0] / caught[1] if caught[1] else float("nan"),
        "events_judged_for_sensitivity": float(caught[1]),
        "alerts_per_100_participant_months": 100 * len(counted) / participant_months if participant_months else float("nan"),
    }
    people = counted[PARTICIPANT].to_numpy()
    out["episode_ppv_ci_low"], out["episode_ppv_ci_high"] = _bootstrap_share(people, followed, reps, seed)
    leads = counted["lead"].dropna().to_numpy()
    for q in LEAD_QUANTILES:
        out[f"lead_time_p{int(q * 100)}_days"] = float(np.quantile(leads, q)) if len(leads) else float("nan")
    return out


def _bootstrap_share(people: np.ndarray, hit: np.ndarray, reps: int, seed: int) -> tuple[float, float]:
    """95% percentile interval of a share, resampling participants (their episodes travel together)."""
    if len(hit) == 0 or reps < 1:  # no openings, or intervals not asked for (tuning trials)
        return float("nan"), float("nan")
    ids, index = np.unique(people, return_inverse=True)
    hits, totals = np.bincount(index, weights=hit.astype(float)), np.bincount(index).astype(float)
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(reps, len(ids)))
    shares = hits[draws].sum(axis=1) / np.maximum(totals[draws].sum(axis=1), 1)
    return float(np.quantile(shares, 0.025)), float(np.quantile(shares, 0.975))
