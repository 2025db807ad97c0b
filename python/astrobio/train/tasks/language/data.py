"""Tokenized reaction names as torch data: a Dataset of token-id lists, a padding collate, and a
LightningDataModule over the `ReactionSubsystems` split, and the class weights.

Names are tokenized once with the packaged tokenizer (no padding); each batch is padded to its
own longest name, which keeps CPU batches short (names are ~10-40 word pieces). The train loader
draws its order from (seed, epoch) only (`EpochShuffle`), so the batch order is reproducible,
independent of the global RNG, and the same after a resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ....datasets.reactions import ReactionSubsystems
from ...rng import epoch_seed

__all__ = ["EpochShuffle", "TokenizedTexts", "PadCollate", "ReactionDataModule", "class_weights", "tokenize"]


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids (with [CLS] and [SEP]) of each text, truncated to `max_length`, unpadded."""
    return [list(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]


class TokenizedTexts(Dataset):
    """(token ids, label) pairs; item i is a dict with `input_ids` (list[int]) and `label` (int)."""

    def __init__(self, ids: list[list[int]], labels: np.ndarray) -> None:
        if len(ids) != len(labels):
            raise ValueError(f"{len(ids)} token lists for {len(labels)} labels")
        self.ids = ids
        self.labels = np.asarray(labels, np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "label": int(self.labels[i])}


class PadCollate:
    """Pads a list of items to the batch's longest sequence: input_ids [B, T] (pad id),
    attention_mask [B, T] (1 = token), labels [B]. A class, not a closure, so it pickles into
    DataLoader worker processes."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = int(pad_id)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, it in enumerate(items):
            n = len(it["input_ids"])
            ids[row, :n] = torch.tensor(it["input_ids"], dtype=torch.long)
            mask[row, :n] = 1
        labels = torch.tensor([it["label"] for it in items], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class EpochShuffle(torch.utils.data.Sampler):
    """Indices 0..n-1 in an order drawn from (seed, epoch) only. Lightning calls `set_epoch` at
    each epoch start, so a resumed run gets the same order as an uninterrupted one (a shuffling
    DataLoader's own generator would restart at the resume)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        g = torch.Generator()
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())


def class_weights(data: ReactionSubsystems) -> torch.Tensor:
    """Cross-entropy weights n / (K n_k) from the train split's class counts ("balanced")."""
    counts = np.bincount(data.labels_of("train"), minlength=data.num_classes).astype(np.float64)
    return torch.tensor(counts.sum() / (data.num_classes * np.maximum(counts, 1.0)), dtype=torch.float32)


class ReactionDataModule(L.LightningDataModule):
    """Train (shuffled by (seed, epoch)) and val loaders over a `ReactionSubsystems` split."""

    def __init__(self, data: ReactionSubsystems, tokenizer: Any, *, batch_size: int = 32, eval_batch_size: int = 128,
                 max_length: int = 64, seed: int = 0, num_workers: int = 0) -> None:
        super().__init__()
        self.data = data
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_length = max_length
        self.seed = seed
        self.num_workers = num_workers
        self.collate = PadCollate(tokenizer.pad_token_id)
        self._sets: dict[str, TokenizedTexts] = {}

    def dataset(self, split: str) -> TokenizedTexts:
        """The tokenized split (tokenized on first use, then cached)."""
        if split not in self._sets:
            ids = tokenize(self.tokenizer, self.data.texts_of(split), self.max_length)
            self._sets[split] = TokenizedTexts(ids, self.data.labels_of(split))
        return self._sets[split]

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            self.dataset(split)

    def train_dataloader(self) -> DataLoader:
        train = self.dataset("train")
        return DataLoader(train, batch_size=self.batch_size, sampler=EpochShuffle(len(train), self.seed),
                          collate_fn=self.collate, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset("val"), batch_size=self.eval_batch_size, shuffle=False, collate_fn=self.collate,
                          num_workers=self.num_workers)
