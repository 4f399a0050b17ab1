"""The scoring core's eligibility rules on a tiny untrained model: stale data and the washout after an event."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from earlywarn.training.bundle import ModelBundle
from earlywarn.training.nets import build_net
from earlywarn.training.scoring import (
    INSUFFICIENT,
    MAX_STALENESS_DAYS,
    RECENT_EVENT,
    SCORED,
    STALE,
    histories_from_days,
    score_histories,
)
from tests.stack import tiny_bundle

FEATURES = ["steps", "sleep_duration_h"]
END = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return tiny_bundle()


def _days(n: int, last: dt.date = END) -> list[tuple[dt.date, list[float | None]]]:
    return [(last - dt.timedelta(days=n - 1 - i), [8000.0 + 10 * i, 7.0]) for i in range(n)]


def _score(bundle, people, as_of, last_event=None):
    histories = histories_from_days(people, len(FEATURES), [as_of] * len(people))
    return score_histories(bundle, histories, last_event=last_event)


def test_data_older_than_the_staleness_limit_is_not_scored(bundle):
    fresh, limit, old = (END - dt.timedelta(days=d) for d in (0, MAX_STALENESS_DAYS, MAX_STALENESS_DAYS + 1))
    people = [("fresh", _days(30, fresh)), ("limit", _days(30, limit)), ("old", _days(30, old))]
    s = _score(bundle, people, END)
    assert s.status == [SCORED, SCORED, STALE]
    assert np.isfinite(s.risk[:2]).all() and np.isnan(s.risk[2]) and s.band[2] is None and not s.escalate(2)
    assert s.reason[2] is not None and f"{MAX_STALENESS_DAYS + 1} days old" in s.reason[2]


def test_trailing_days_without_any_signal_count_as_stale(bundle):
    days = _days(30)
    days[-5:] = [(d, [None, None]) for d, _ in days[-5:]]  # reported, but nothing arrived
    assert _score(bundle, [("p", days)], END).status == [STALE]


def test_the_washout_after_a_reported_event_is_not_scored(bundle):
    people = [(p, _days(30)) for p in ("today", "washout-end", "long-ago", "none", "later-than-as-of")]
    events = [END, END - dt.timedelta(days=27), END - dt.timedelta(days=28), None, END + dt.timedelta(days=1)]
    s = _score(bundle, people, END, events)
    assert s.status == [RECENT_EVENT, RECENT_EVENT, SCORED, SCORED, SCORED]
    assert s.reason[0] is not None and "28 days after an event" in s.reason[0]
    assert np.isnan(s.risk[:2]).all() and s.band[:2] == [None, None]


def test_an_event_after_the_window_but_before_as_of_is_washout(bundle):
    """The person relapsed after their last reported day: a score of the window before it says nothing now."""
    s = _score(bundle, [("p", _days(30, END - dt.timedelta(days=2)))], END, [END - dt.timedelta(days=1)])
    assert s.status == [RECENT_EVENT]


def test_washout_and_staleness_come_before_too_little_data(bundle):
    s = _score(bundle, [("a", _days(3)), ("b", _days(3))], END, [END, None])
    assert s.status == [RECENT_EVENT, INSUFFICIENT]


def test_a_saved_model_loads_only_with_its_signature(bundle, tmp_path, monkeypatch):
    """The manifest is signed with an Ed25519 key apart from the pseudonymisation secret: swapping the weights and
    recomputing the manifest, dropping the signature, or loading where another key is trusted are each refused;
    loading needs only the public key, never EARLYWARN_HMAC_KEY."""
    import json

    from earlywarn.training.bundle import MANIFEST_FILE, SIGNATURE_FILE, SPEC_FILE, WEIGHTS_FILE, BundleError, sha256
    from earlywarn.training.signing import keygen

    folder = bundle.save(tmp_path / "m")
    assert ModelBundle.load(folder).features == FEATURES
    seed, public, kid = keygen()
    monkeypatch.setenv("EARLYWARN_MODE", "production")
    monkeypatch.delenv("EARLYWARN_HMAC_KEY", raising=False)
    monkeypatch.setenv("EARLYWARN_VERIFY_KEYS", public)
    with pytest.raises(BundleError, match="does not trust"):
        ModelBundle.load(folder)  # signed with the demo key: never trusted in production
    monkeypatch.setenv("EARLYWARN_SIGNING_KEY", seed)
    signed = bundle.save(tmp_path / "p")
    monkeypatch.delenv("EARLYWARN_SIGNING_KEY")
    assert ModelBundle.load(signed).digest == sha256(signed / MANIFEST_FILE)  # public key only, no HMAC secret
    assert (signed / SIGNATURE_FILE).read_text().startswith(kid + ":")
    weights = signed / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)
    (signed / MANIFEST_FILE).write_text(json.dumps({n: sha256(signed / n) for n in (SPEC_FILE, WEIGHTS_FILE)}))
    with pytest.raises(BundleError, match="signature does not match"):
        ModelBundle.load(signed)
    (signed / SIGNATURE_FILE).unlink()
    with pytest.raises(BundleError, match="not signed"):
        ModelBundle.load(signed)
    monkeypatch.delenv("EARLYWARN_VERIFY_KEYS")
    with pytest.raises(RuntimeError, match="EARLYWARN_VERIFY_KEYS"):
        ModelBundle.load(folder)


def test_a_baseline_bundle_from_an_older_release_is_refused_with_what_to_do():
    import torch

    from earlywarn.training.nets import SummaryLogisticNet
    from earlywarn.training.preprocess import CHANNELS

    with pytest.raises(ValueError, match=r"older release .* train it again"):
        build_net("baseline", len(FEATURES), 28, {})  # made before the summaries were recorded with the bundle
    net = build_net("baseline", len(FEATURES), 28, {"summaries": list(SummaryLogisticNet.SUMMARIES)})
    x = torch.zeros(2, 28, len(CHANNELS) * len(FEATURES))
    assert net.features(x).shape == (2, len(FEATURES), len(SummaryLogisticNet.SUMMARIES))


def test_the_served_card_is_valid_json_when_a_figure_could_not_be_measured(bundle):
    """b9b83e2 answered GET /v1/model with a 500 when the card held a NaN (a small subgroup's AUROC, as float32)."""
    import json

    from earlywarn.training.model_card import served_card

    saved, bundle.meta = (
        bundle.meta,
        {
            "model_card": {
                "metrics": {"auroc": np.float32(0.71), "subgroup_site_b_auroc": np.float32("nan"), "ece": float("inf")},
                "subgroups": [{"n": 3, "auroc": float("nan")}],
            }
        },
    )
    try:
        card = json.loads(json.dumps(served_card(bundle, "7"), allow_nan=False))
    finally:
        bundle.meta = saved
    assert card["metrics"] == {"auroc": pytest.approx(0.71), "subgroup_site_b_auroc": None, "ece": None}
    assert card["subgroups"] == [{"n": 3, "auroc": None}] and card["version"] == "7"
