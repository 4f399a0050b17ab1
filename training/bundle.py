"""The model bundle: architecture, weights, preprocessing, calibration and bands, saved as JSON plus verified weights."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.pseudonym import Pseudonymizer
from data.windows import WindowConfig, WindowSet
from training.calibration import Bands, Calibrator
from training.nets import ModelKind, build_net
from training.preprocess import Preprocessor
from training.uncertainty import Interval, imputations, logit

SPEC_FILE, WEIGHTS_FILE, MANIFEST_FILE = "model.json", "weights.pt", "manifest.json"
SIGNATURE_FILE, SIGNING_PURPOSE = "signature", b"model signature"
IG_STEPS = 8  # path steps: the contributions add up to the logit change within 0.003 here (as with 16 or 32 steps)


@dataclass
class Attribution:
    """Per-signal integrated gradients from the person's baseline: [B] risk, [B, F] contributions to the logit, [B, F]
    the part of them on days the signal was missing, and [B] the logit change they explain."""

    risk: np.ndarray
    contributions: np.ndarray
    missing_part: np.ndarray
    logit_change: np.ndarray


class BundleError(RuntimeError):
    """A model bundle is missing, corrupt, tampered with or incompatible; never serve it."""


def signing_key(demo: bool | None = None) -> bytes:
    """The model-signing key, derived from the deployment secret (EARLYWARN_HMAC_KEY; the demo key only in demo mode,
    so a production service refuses models signed in demo mode)."""
    return Pseudonymizer.from_env(demo).derived(SIGNING_PURPOSE)


def _signature(manifest: Path, key: bytes) -> str:
    return hmac.new(key, manifest.read_bytes(), hashlib.sha256).hexdigest()


def _check_signature(d: Path, key: bytes) -> None:
    if not (d / SIGNATURE_FILE).exists():
        raise BundleError(f"{d}: the model is not signed; refusing to load it (train or import it again with this release)")
    if not hmac.compare_digest((d / SIGNATURE_FILE).read_text().strip(), _signature(d / MANIFEST_FILE, key)):
        raise BundleError(
            f"{d}: the manifest's signature does not match this deployment's key: the model was changed after it was "
            "signed, or signed with another EARLYWARN_HMAC_KEY (a demo-mode model in production); refusing to load it"
        )


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
    calibrator: Calibrator
    bands: Bands
    window: WindowConfig
    net: torch.nn.Module
    interval: Interval = field(default_factory=Interval)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return list(self.preprocessor.features)

    @property
    def input_days(self) -> int:
        """Days of history each input needs: arrays given to `logits`/`risk` are [B, input_days, F]."""
        return self.preprocessor.input_days

    @torch.inference_mode()
    def logits(self, values: np.ndarray | WindowSet, batch_size: int = 4096) -> np.ndarray:
        """[B, D, F] raw days ending on each window's last day (features in bundle order; D = `input_days` gives the
        model its full personal baseline), or a window set sliced a batch at a time -> [B] logits."""
        self.net.eval()
        out = np.empty(len(values), np.float32)
        for i in range(0, len(values), batch_size):
            window = slice(i, i + batch_size)
            part = values.history(window, self.input_days) if isinstance(values, WindowSet) else values[window]
            out[i : i + batch_size] = self.net(torch.from_numpy(self.preprocessor.transform(part))).numpy()
        return out

    def risk(self, values: np.ndarray | WindowSet) -> np.ndarray:
        return self.calibrator(self.logits(values))

    def spread(self, values: np.ndarray) -> np.ndarray:
        """[B] SD of the calibrated logit over fills of each window's missing days from the person's own days
        (0 where nothing is missing): how much the gaps leave open."""
        filled, gappy = imputations(values, self.preprocessor.lookback)
        out = np.zeros(len(values))
        if gappy.any():
            draws = filled[:, gappy].reshape(-1, *values.shape[1:])
            scored = logit(self.calibrator(self.logits(draws))).reshape(len(filled), -1)
            out[gappy] = scored.std(axis=0)
        return out

    def risk_interval(self, values: np.ndarray, risk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B] low and high ends of each risk's interval (`interval.coverage`, 80%)."""
        return self.interval.bounds(risk, self.spread(values))

    def attributions(self, values: np.ndarray, steps: int = IG_STEPS) -> Attribution:
        """Integrated gradients from the person's own baseline (`Preprocessor.reference`) to their window, per signal.

        Completeness: each row's contributions add up to logit(window) - logit(reference), up to the path integral's
        discretisation, so they explain the change from the person's usual days. Cells where the signal did not
        arrive are counted apart, which tells a change in the signal from data that stopped arriving."""
        self.net.eval()
        x = torch.from_numpy(self.preprocessor.transform(values))
        ref = torch.from_numpy(self.preprocessor.transform(self.preprocessor.reference(values)))
        alphas = ((torch.arange(steps, dtype=torch.float32) + 0.5) / steps)[:, None, None, None]
        path = (ref[None] + alphas * (x - ref)[None]).reshape(-1, *x.shape[1:]).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.net(path).sum(), path)
        with torch.inference_mode():
            logits, ref_logits = self.net(torch.cat([x, ref])).numpy().reshape(2, -1)
        cells = ((x - ref) * grad.reshape(steps, *x.shape).mean(dim=0)).numpy()
        n_f = len(self.features)
        per_cell = cells.reshape(cells.shape[0], cells.shape[1], -1, n_f).sum(axis=2)  # [B, lookback, F]
        missing = np.isnan(values[:, -self.preprocessor.lookback :])
        return Attribution(self.calibrator(logits), per_cell.sum(axis=1), (per_cell * missing).sum(axis=1), logits - ref_logits)

    def save(self, directory: str | Path, key: bytes | None = None) -> Path:
        """Write the bundle with a sha256 manifest and an HMAC signature of it (`signing_key`, from the deployment
        secret): someone who can write the model store but not read the secret cannot make a model that loads."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        spec = {
            "format": 1,
            "kind": self.kind,
            "hparams": self.hparams,
            "preprocessor": self.preprocessor.to_dict(),
            "calibrator": self.calibrator.to_dict(),
            "bands": self.bands.to_dict(),
            "window": vars(self.window),
            "interval": self.interval.to_dict(),
            "meta": self.meta,
        }
        (d / SPEC_FILE).write_text(json.dumps(spec, indent=2, default=str))
        torch.save(self.net.state_dict(), d / WEIGHTS_FILE)
        manifest = {name: sha256(d / name) for name in (SPEC_FILE, WEIGHTS_FILE)}
        (d / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        (d / SIGNATURE_FILE).write_text(_signature(d / MANIFEST_FILE, key or signing_key()))
        return d

    @classmethod
    def load(cls, directory: str | Path, key: bytes | None = None) -> ModelBundle:
        """Load after checking the manifest's signature and every file against the manifest's sha256; weights load
        with weights_only (no pickle)."""
        d, key = Path(directory), key or signing_key()
        try:
            _check_signature(d, key)
            manifest = json.loads((d / MANIFEST_FILE).read_text())
            for name in (SPEC_FILE, WEIGHTS_FILE):
                if sha256(d / name) != manifest[name]:
                    raise BundleError(f"{d / name}: sha256 does not match the manifest; refusing to load a tampered model")
            spec = json.loads((d / SPEC_FILE).read_text())
            if spec.get("format") != 1:
                raise BundleError(f"{d}: unsupported bundle format {spec.get('format')!r}")
            pre = Preprocessor.from_dict(spec["preprocessor"])
            net = build_net(spec["kind"], len(pre.features), spec["hparams"])
            net.load_state_dict(torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True))
            net.eval()
            return cls(
                kind=spec["kind"],
                hparams=spec["hparams"],
                preprocessor=pre,
                calibrator=Calibrator.from_dict(spec["calibrator"]),
                bands=Bands(**spec["bands"]),
                window=WindowConfig(**spec["window"]),
                net=net,
                interval=Interval.from_dict(spec.get("interval")),
                meta=spec.get("meta", {}),
            )
        except BundleError:
            raise
        except (OSError, KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as err:
            raise BundleError(f"{d}: not a usable earlywarn model bundle ({type(err).__name__}: {err})") from err
