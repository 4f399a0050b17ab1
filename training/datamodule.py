"""LightningDataModule over participant-split windows; fits the preprocessor on the training participants only, and
shows part of the training windows as a partner that sends only some sources would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from earlywarn.data.contract import SOURCES, source
from earlywarn.data.windows import WindowSet
from earlywarn.training.preprocess import Preprocessor


def source_masks(features: list[str]) -> np.ndarray:
    """[S, F] which features come from each source in the contract (wearable, phone, check_in); custom features from none."""
    return np.array([[source(f) == src for f in features] for src in SOURCES], bool)


def partial_keep(features: list[str], n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """[n, F] which signals each of n windows keeps: a `share` of them keep only a random non-empty proper subset of the
    sources (each subset equally likely: wearable-only, phone-only, check-ins only and the pairs, as partners send),
    the rest everything; custom features are always kept."""
    masks = source_masks(features)
    keep = np.ones((n, len(features)), bool)
    partial = np.flatnonzero(rng.random(n) < share)
    if not len(partial) or not masks.any():
        return keep
    subsets = np.array([[bool(k >> s & 1) for s in range(len(masks))] for k in range(1, 2 ** len(masks) - 1)])
    kept = subsets[rng.integers(0, len(subsets), len(partial))]
    keep[partial] = (kept @ masks) | ~masks.any(axis=0)
    return keep


CACHE_BYTES = 3 * 2**30  # preprocessed windows kept in memory across epochs when they fit (the default cohort: 1.5 GB)


class WindowDataset(Dataset):
    """Batches are sliced from the shared panel and preprocessed in one vectorised call (no per-window Python); when
    all of them fit in `cache_bytes` they are preprocessed once, before the first epoch, not once per epoch. With
    `partial_share` > 0 (training only), that share of windows loses whole sources, drawn afresh for every batch;
    the sources are dropped from the preprocessed inputs (`Preprocessor.only`), which is exact."""

    def __init__(
        self,
        windows: WindowSet,
        preprocessor: Preprocessor,
        partial_share: float = 0.0,
        seed: int = 0,
        cache_bytes: int = CACHE_BYTES,
    ):
        self.windows, self.pre = windows, preprocessor
        self.partial_share = partial_share
        self.rng = np.random.default_rng(seed)
        size = len(windows) * preprocessor.lookback * preprocessor.n_inputs * 4
        self.cache = self._preprocess_all() if size <= cache_bytes else None

    def _preprocess_all(self) -> np.ndarray:
        out = np.empty((len(self.windows), self.pre.lookback, self.pre.n_inputs), np.float32)
        for start in range(0, len(self.windows), 4096):
            part = slice(start, start + 4096)
            out[part] = self.pre.transform(self.windows.history(part, self.pre.input_days))
        return out

    def __len__(self) -> int:
        return len(self.windows)

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        i = np.asarray(idx)
        x = self.cache[i] if self.cache is not None else self.pre.transform(self.windows.history(i, self.pre.input_days))
        if self.partial_share > 0:
            x = self.pre.only(x, partial_keep(list(self.pre.features), len(i), self.partial_share, self.rng))
        return torch.from_numpy(x), torch.from_numpy(self.windows.label[i].astype(np.float32))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]


MAX_FIT_DAYS = 2_000_000  # quantiles from 2M days are as good as from all; more would only cost memory


def training_days(windows: WindowSet, seed: int = 0) -> np.ndarray:
    """[N, F] grid rows inside the training windows (each day once), a seeded sample of them for a large cohort."""
    inside = np.zeros(windows.panel.n_rows, bool)
    for back in range(windows.cfg.lookback):  # one pass per lookback day: memory stays one flag per grid row
        inside[windows.end_row - back] = True
    rows = np.flatnonzero(inside)
    if len(rows) > MAX_FIT_DAYS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_FIT_DAYS, replace=False))
    return windows.panel.values[rows]


def _already_batched(batch: Any) -> Any:
    return batch


class RelapseDataModule(pl.LightningDataModule):
    """Train/val windows for Lightning; calibration and test windows are scored outside the trainer."""

    def __init__(
        self,
        train: WindowSet,
        val: WindowSet,
        batch_size: int = 256,
        recent_days: int = 7,
        partial_share: float = 0.0,
        seed: int = 0,
    ):
        super().__init__()
        self.train_windows, self.val_windows, self.batch_size = train, val, batch_size
        self.partial_share, self.seed = partial_share, seed
        self.preprocessor = Preprocessor.fit(
            training_days(train), train.panel.features, train.cfg.lookback, recent_days, train.cfg.baseline_days
        )

    @property
    def n_features(self) -> int:
        return len(self.preprocessor.features)

    def _loader(self, dataset: WindowDataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, collate_fn=_already_batched)

    def train_dataloader(self) -> DataLoader:
        dataset = WindowDataset(self.train_windows, self.preprocessor, self.partial_share, self.seed)
        return self._loader(dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(WindowDataset(self.val_windows, self.preprocessor), shuffle=False)
