"""LightningDataModule over participant-split windows; fits the preprocessor on the training participants only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from data.windows import WindowSet
from training.preprocess import Preprocessor


class WindowDataset(Dataset):
    """Batches are sliced from the shared panel and preprocessed in one vectorised call (no per-window Python)."""

    def __init__(self, windows: WindowSet, preprocessor: Preprocessor):
        self.windows, self.pre = windows, preprocessor

    def __len__(self) -> int:
        return len(self.windows)

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        i = np.asarray(idx)
        x = self.pre.transform(self.windows.history(i, self.pre.input_days))
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

    def __init__(self, train: WindowSet, val: WindowSet, batch_size: int = 256, recent_days: int = 7):
        super().__init__()
        self.train_windows, self.val_windows, self.batch_size = train, val, batch_size
        self.preprocessor = Preprocessor.fit(
            training_days(train), train.panel.features, train.cfg.lookback, recent_days, train.cfg.baseline_days
        )

    @property
    def n_features(self) -> int:
        return len(self.preprocessor.features)

    def _loader(self, windows: WindowSet, shuffle: bool) -> DataLoader:
        return DataLoader(
            WindowDataset(windows, self.preprocessor), batch_size=self.batch_size, shuffle=shuffle, collate_fn=_already_batched
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_windows, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_windows, shuffle=False)
