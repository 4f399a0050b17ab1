"""The model bundle: architecture, weights, preprocessing, calibration, bands and interval, saved as JSON plus verified
weights; and what the model says about a window: risk, its interval, and each signal's exact part in it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from earlywarn.data.contract import source
from earlywarn.data.windows import WindowConfig, WindowSet
from earlywarn.training.calibration import Bands, Calibration, profile_keys
from earlywarn.training.nets import AdditiveNet, ModelKind, build_net
from earlywarn.training.preprocess import Preprocessor
from earlywarn.training.profiles import source_subsets
from earlywarn.training.signing import Keys, SigningError, keys
from earlywarn.training.uncertainty import Interval

SPEC_FILE, WEIGHTS_FILE, MANIFEST_FILE = "model.json", "weights.pt", "manifest.json"
SIGNATURE_FILE = "signature"
FORMAT = 2  # 2: additive nets with per-signal terms, the spline calibrator, the interval's covariance in the weights


@dataclass
class Assessment:
    """What the model says about each window. [B] risk, its calibrated log-odds, the SD of the network's logit (the
    model's own uncertainty and the missing days'), the interval's ends;
    with `explain`, [B, F] each signal's contribution to the change in shown log-odds from the person's usual days
    (they add up to `log_odds_change` exactly) and the part of it due to days missing beyond the person's usual gaps."""

    risk: np.ndarray
    log_odds: np.ndarray
    sd: np.ndarray
    low: np.ndarray
    high: np.ndarray
    present: np.ndarray  # [B, F] bool: the signal arrived on some day of the input history
    contributions: np.ndarray | None = None
    missing_part: np.ndarray | None = None
    log_odds_change: np.ndarray | None = None


class BundleError(RuntimeError):
    """A model bundle is missing, corrupt, tampered with or incompatible; never serve it."""


def _check_signature(d: Path, trusted: Keys) -> None:
    if not (d / SIGNATURE_FILE).exists():
        raise BundleError(f"{d}: the model is not signed; refusing to load it (train or import it again with this release)")
    if ":" not in (d / SIGNATURE_FILE).read_text():
        raise BundleError(f"{d}: signed by an earlier release with the HMAC secret; train the model again to sign it")
    try:
        trusted.verify((d / MANIFEST_FILE).read_bytes(), (d / SIGNATURE_FILE).read_text(), f"{d}: the model's manifest")
    except SigningError as err:
        raise BundleError(f"{err}; refusing to load it") from None


def manifest_digest(directory: str | Path) -> str:
    """The sha256 of a bundle's signed manifest: names exactly these weights, settings and code."""
    return sha256(Path(directory) / MANIFEST_FILE)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class ModelBundle:
    """Everything needed to turn raw windows into calibrated, banded risk — and nothing that needs unpickling."""

    kind: ModelKind
    hparams: dict[str, Any]
    preprocessor: Preprocessor
    calibration: Calibration
    bands: Bands
    window: WindowConfig
    net: AdditiveNet
    interval: Interval = field(default_factory=Interval)
    meta: dict[str, Any] = field(default_factory=dict)
    digest: str = ""  # sha256 of the signed manifest it was loaded from or saved with (`manifest_digest`)

    @property
    def features(self) -> list[str]:
        return list(self.preprocessor.features)

    @property
    def input_days(self) -> int:
        """Days of history each input needs: arrays given to `logits`/`risk` are [B, input_days, F]."""
        return self.preprocessor.input_days

    @torch.inference_mode()
    def scores(self, values: np.ndarray | WindowSet, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """[B, D, F] raw days ending on each window's last day (features in bundle order; D = `input_days` gives the
        model its full personal baseline), or a window set sliced a batch at a time -> ([B] logits, [B] the source
        profile each is calibrated for)."""
        self.net.eval()
        out, keys = np.empty(len(values), np.float32), np.empty(len(values), dtype=object)
        for i in range(0, len(values), batch_size):
            window = slice(i, i + batch_size)
            part = values.history(window, self.input_days) if isinstance(values, WindowSet) else values[window]
            out[i : i + batch_size] = self.net(torch.from_numpy(self.preprocessor.transform(part))).numpy()
            keys[i : i + batch_size] = self.profiles(part)
        return out, keys

    def logits(self, values: np.ndarray | WindowSet) -> np.ndarray:
        return self.scores(values)[0]

    def profiles(self, values: np.ndarray) -> np.ndarray:
        """[B] the source profile (which of wearable, phone, check-ins arrived at all) of each [B, D, F] history."""
        return profile_keys((~np.isnan(values)).any(axis=1), self.features)

    def risk(self, values: np.ndarray | WindowSet) -> np.ndarray:
        return self.calibration(*self.scores(values))

    @torch.inference_mode()
    def profile_scores(
        self, values: np.ndarray, batch_size: int = 4096
    ) -> Iterator[tuple[tuple[str, ...], np.ndarray, np.ndarray]]:
        """(sources, [B] logits, [B] profile keys) of [B, D, F] histories as every source profile would send them (the
        other contract sources never sent), from one preprocessing pass."""
        self.net.eval()
        present = (~np.isnan(values)).any(axis=1)
        x = np.concatenate([self.preprocessor.transform(values[i : i + batch_size]) for i in range(0, len(values), batch_size)])
        for sources in source_subsets(self.features):
            keep = np.array([source(f) is None or source(f) in sources for f in self.features])
            logits = np.concatenate(
                [
                    self.net(torch.from_numpy(self.preprocessor.only(x[i : i + batch_size], keep))).numpy()
                    for i in range(0, len(x), batch_size)
                ]
            )
            yield sources, logits, profile_keys(present & keep, self.features)

    @torch.inference_mode()
    def assess(self, values: np.ndarray, explain: bool = False) -> Assessment:
        """Risk, interval and (with `explain`) drivers of [B, D, F] raw days, in one pass of the network.

        Drivers are exact: a signal's term depends on that signal's days only, so its change from the person's usual
        days is its whole part in the network's logit; the calibration map turns the logit change into the shown
        log-odds change, and each signal gets its share of that (the map's secant over the change)."""
        self.net.eval()
        pre, b = self.preprocessor, len(values)
        x, baseline, spread = pre.transform_with_baseline(values)
        # The missing days' part of the interval: the window with its gaps holding one of the person's SDs above and
        # below their usual level.
        batch = [x, pre.missing_filled(x, baseline, spread, 1.0), pre.missing_filled(x, baseline, spread, -1.0)]
        if explain:
            batch += pre.usual(x, baseline, pre.usual_gaps(values))
        inputs = torch.from_numpy(np.concatenate(batch))
        terms = self.net.terms(inputs).numpy().reshape(len(batch), b, -1)
        offset, gain = (t.numpy()[:b] for t in self.net.scale(inputs))
        logit = offset + gain * terms[0].sum(axis=1)
        present = (~np.isnan(values)).any(axis=1)
        keys = profile_keys(present, self.features)
        log_odds = self.calibration.log_odds(logit, keys)
        missing_var = gain**2 * (((terms[1] - terms[2]) / 2) ** 2).sum(axis=1)
        sd = np.sqrt(self._model_variance(combination_inputs(terms[0], gain)) + missing_var)
        band = self.bands.assign(_sigmoid(log_odds))
        slope = (self.calibration.log_odds(logit + 1, keys) - self.calibration.log_odds(logit - 1, keys)) / 2
        low, high = self.interval.bounds(log_odds, sd, band, _days_missing(values, pre.lookback), slope)
        made = Assessment(_sigmoid(log_odds), log_odds, sd, low, high, present)
        if explain:
            usual_logit = offset + gain * terms[3].sum(axis=1)
            change = log_odds - self.calibration.log_odds(usual_logit, keys)
            step = logit - usual_logit
            moved = np.abs(step) > 1e-9
            secant = np.where(moved, change / np.where(moved, step, 1.0), self.calibration.local_slope(logit, keys))
            weight = (secant * gain)[:, None]
            made.contributions = weight * (terms[0] - terms[3])
            made.missing_part = weight * (terms[0] - terms[4])
            made.log_odds_change = change
        return made

    def _model_variance(self, phi: np.ndarray) -> np.ndarray:
        """[B] variance of the logit from the clustered covariance of how the terms combine (0 before it is fitted)."""
        covariance = self.net.term_covariance.double().numpy()
        return np.maximum(np.einsum("bp,pq,bq->b", phi, covariance, phi), 0.0)

    def save(self, directory: str | Path, covers: dict[str, str] | None = None, signer: Keys | None = None) -> Path:
        """Write the bundle with a sha256 manifest and an Ed25519 signature of it (EARLYWARN_SIGNING_KEY): someone who
        can write the model store but has not the signing key cannot make a model that loads. `covers` adds the
        sha256 of files shipped beside the bundle (the MLflow model's code) to what the signature vouches for."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        spec = {
            "format": FORMAT,
            "kind": self.kind,
            "hparams": self.hparams,
            "preprocessor": self.preprocessor.to_dict(),
            "calibration": self.calibration.to_dict(),
            "bands": self.bands.to_dict(),
            "window": vars(self.window),
            "interval": self.interval.to_dict(),
            "meta": self.meta,
        }
        (d / SPEC_FILE).write_text(json.dumps(spec, indent=2, default=str))
        torch.save(self.net.state_dict(), d / WEIGHTS_FILE)
        manifest: dict[str, Any] = {name: sha256(d / name) for name in (SPEC_FILE, WEIGHTS_FILE)}
        if covers:
            manifest["covers"] = dict(sorted(covers.items()))
        (d / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        (d / SIGNATURE_FILE).write_text((signer or keys()).sign((d / MANIFEST_FILE).read_bytes()))
        self.digest = manifest_digest(d)
        return d

    @classmethod
    def load(cls, directory: str | Path, trusted: Keys | None = None) -> ModelBundle:
        """Load after checking the manifest's signature (public keys only: no secret needed) and every file against
        the manifest's sha256; weights load with weights_only (no pickle)."""
        d = Path(directory)
        try:
            _check_signature(d, trusted or keys())
            manifest = json.loads((d / MANIFEST_FILE).read_text())
            for name in (SPEC_FILE, WEIGHTS_FILE):
                if sha256(d / name) != manifest[name]:
                    raise BundleError(f"{d / name}: sha256 does not match the manifest; refusing to load a tampered model")
            spec = json.loads((d / SPEC_FILE).read_text())
            if spec.get("format") != FORMAT:
                raise BundleError(
                    f"{d}: bundle format {spec.get('format')!r}, this release reads {FORMAT}; train the model again "
                    "(earlywarn train, then earlywarn promote)"
                )
            pre = Preprocessor.from_dict(spec["preprocessor"])
            net = build_net(spec["kind"], len(pre.features), pre.lookback, spec["hparams"])
            net.load_state_dict(torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True))
            net.eval()
            return cls(
                kind=spec["kind"],
                hparams=spec["hparams"],
                preprocessor=pre,
                calibration=Calibration.from_dict(spec["calibration"]),
                bands=Bands.from_dict(spec["bands"]),
                window=WindowConfig(**spec["window"]),
                net=net,
                interval=Interval.from_dict(spec.get("interval")),
                meta=spec.get("meta", {}),
                digest=manifest_digest(d),
            )
        except (BundleError, SigningError):
            raise
        except (OSError, KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as err:
            raise BundleError(f"{d}: not a usable earlywarn model bundle ({type(err).__name__}: {err})") from err


def combination_inputs(terms: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """[B, 1 + F]: what the logit is linear in when the terms' weights are free: an intercept and each scaled term."""
    return np.concatenate([np.ones((len(terms), 1)), terms * gain[:, None]], axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _days_missing(values: np.ndarray, lookback: int) -> np.ndarray:
    """[B] days of the lookback without any signal."""
    return (~(~np.isnan(values[:, -lookback:])).any(axis=2)).sum(axis=1)
