"""`make bench` cost budget: default training, and in-process scoring of 1,000 participants x 28 days with and without
each part (interval, drivers, texts), measured in one run on this machine, each beside its target."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.serving import _cpu
from earlywarn.data.synth import synth
from earlywarn.data.synth_course import SynthConfig
from earlywarn.training.fit import FitConfig
from earlywarn.training.scoring import Histories, histories_from_frame, score_histories
from earlywarn.training.train import TrainConfig, train

REPEATS = 7
CORE = "the scoring core: status, risk, interval, drivers (training.scoring.score_histories)"
API = "the API's results: the core plus texts and what the log keeps (serving.results.score)"


def _median_seconds(run: Callable[[], object], repeats: int = REPEATS) -> float:
    run()  # warm-up: first calls allocate and compile kernels
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _thousand(features: Path, days: int, input_days: int, names: list[str]) -> Histories:
    """1,000 participants' last `days` days (the 500-person cohort twice), on the scoring core's grid."""
    table = pd.read_parquet(features)
    recent = table[table["date"] > table["date"].max() - pd.Timedelta(days=days)]
    twice = pd.concat([recent, recent.assign(participant_id=recent["participant_id"] + "-b")], ignore_index=True)
    histories = histories_from_frame(twice, names, input_days)
    assert len(histories.participant_ids) == 1000
    return histories


def costs() -> str:
    from earlywarn.serving.results import score

    os.environ.setdefault("EARLYWARN_MODE", "demo")  # synthetic people only: the published demo secret is enough
    work = Path(tempfile.mkdtemp(prefix="earlywarn-costs-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    os.environ["EARLYWARN_ARTIFACT_ROOT"] = str(work / "artifacts")
    cohort = synth(SynthConfig(), work / "cohort")
    base = TrainConfig(
        features=cohort.features_path,
        outcomes=cohort.outcomes_path,
        out=work / "out",
        fit=FitConfig(progress=False),
        register=False,
        log_model=False,
    )
    timed: dict[str, float] = {}
    started = time.perf_counter()
    result = train(base)
    timed["default training (with the logistic baseline beside it)"] = time.perf_counter() - started
    plain_fit = replace(base.fit, behaviour_weight=0.0, partial_share=0.0)
    started = time.perf_counter()
    train(replace(base, fit=plain_fit, compare_baseline=False, out=work / "plain"))
    timed["without the penalty, partial-source training and the baseline"] = time.perf_counter() - started

    bundle = result.bundle
    assert bundle is not None
    histories = _thousand(cohort.features_path, 28, bundle.input_days, bundle.features)
    inputs = histories.values[:, -bundle.input_days :]
    torch.set_num_threads(os.cpu_count() or 1)
    parts = {
        "risk only (one network pass)": lambda: bundle.risk(inputs),
        "+ interval (assess)": lambda: bundle.assess(inputs),
        "+ interval and drivers (assess, explain)": lambda: bundle.assess(inputs, explain=True),
        CORE: lambda: score_histories(bundle, histories, explain=True),
        API: lambda: score(bundle, histories),
    }
    scoring = {name: _median_seconds(run) for name, run in parts.items()}
    return _report(timed, scoring, len(histories.participant_ids))


def _report(training: dict[str, float], scoring: dict[str, float], people: int) -> str:
    lines = [
        f"Costs measured {dt.date.today():%Y-%m-%d} on {_cpu()}, {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}; scoring is the median of {REPEATS} passes over {people} participants x 28 days "
        "(90-day histories, the personal baseline included).",
        "",
        "| what | seconds | target |",
        "|---|---|---|",
    ]
    for i, (name, seconds) in enumerate(training.items()):
        lines.append(f"| {name} | {seconds:.0f} | {'≤ 180' if i == 0 else '—'} |")
    for name, seconds in scoring.items():
        lines.append(f"| scoring: {name} | {seconds:.3f} | {'≤ 0.3' if name in (CORE, API) else '—'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    print(costs())
