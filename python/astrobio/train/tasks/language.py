"""`--model language`: LoRA fine-tuning of the packaged all-MiniLM-L6-v2 encoder to predict a
reaction's subsystem (pathway) from its name, through the shared trainer (checkpoints, exact
resume, early stopping on validation macro-F1, logging, summary).

The pieces are astrobio.text / astrobio.models.language / astrobio.datasets.reactions (see
docs/training.md for the task's rules and split); this module adapts them to the trainer:

- data: `load_reaction_subsystems` on the metabolic store (`data.graphs`, else the default
  dataset's), the data rules and split from `model.language`; `ReactionDataModule` tokenizes.
- module: `LanguageTaskModule` (cross-entropy with class weights, validation accuracy and
  macro-F1 from a confusion matrix summed exactly over ranks). Its checkpoints hold only the
  trainable tensors (LoRA matrices and head; the frozen 22M-parameter encoder is the shipped
  file), plus optimizer and loop state, so resume is exact and a checkpoint is ~1 MB.
- evaluation: `evaluate_language` (the model beside the majority class and TF-IDF + logistic
  regression, on the same val/test names); then the adapter alone is saved to `<run>/adapter`,
  reloaded, and must predict exactly the same classes (IntegrityError otherwise).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import IntegrityError
from ..config import TrainConfig
from ..module import TaskModule, seeded_rng, step_seed, warmup_cosine
from ._metabolic import open_metabolic

__all__ = ["EpochShuffle", "LanguageTask", "LanguageTaskModule"]


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
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def _datamodule(data: Any, tokenizer: Any, cfg: TrainConfig) -> Any:
    """astrobio.text's ReactionDataModule with an (seed, epoch)-shuffled train loader."""
    from torch.utils.data import DataLoader

    from ...text.data import ReactionDataModule

    class DataModule(ReactionDataModule):
        def train_dataloader(self) -> DataLoader:
            train = self.dataset("train")
            return DataLoader(train, batch_size=self.batch_size, sampler=EpochShuffle(len(train), self.seed),
                              collate_fn=self.collate, num_workers=self.num_workers)

    return DataModule(data, tokenizer, batch_size=cfg.data.batch_size, max_length=cfg.model.language.max_length,
                      seed=cfg.trainer.seed, num_workers=cfg.data.num_workers)


class LanguageTaskModule(TaskModule):
    """Trains an `EncoderClassifier` (LoRA + head); `class_weights` [K] or None."""

    def __init__(self, model: Any, cfg: TrainConfig, *, meta: dict[str, Any], class_weights: torch.Tensor | None) -> None:
        super().__init__(model, cfg, meta=meta)
        self.num_classes = int(model.head.out_features)
        self.register_buffer("class_weights", None if class_weights is None else class_weights.float(), persistent=False)
        self.strict_loading = False  # checkpoints hold the trainable tensors only

    # ---------------------------------------------------------------- checkpoints: trainable tensors only
    def _trainable_keys(self, prefix: str = "") -> set[str]:
        return {f"{prefix}model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:  # type: ignore[override]
        full = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        keep = self._trainable_keys(prefix)
        return OrderedDict((k, v) for k, v in full.items() if k in keep)

    def load_model_state(self, state: dict[str, Any]) -> None:
        own = {k.removeprefix("model.") for k in self._trainable_keys()}
        picked = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        if set(picked) != own:
            raise IntegrityError(f"the checkpoint's trainable tensors do not match the model ({len(picked)} vs {len(own)})")
        self.model.load_state_dict(picked, strict=False)

    # ---------------------------------------------------------------- training
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # dropout (encoder, LoRA, head) drawn from (seed, epoch, batch): exact on resume
        with seeded_rng(step_seed(self.cfg.trainer.seed, self.current_epoch, batch_idx)):
            logits = self.model(batch["input_ids"], batch["attention_mask"])
        o = self.cfg.model.language
        loss = F.cross_entropy(logits.float(), batch["labels"], weight=self.class_weights, label_smoothing=o.label_smoothing)
        mean = self._check_finite(loss, "training loss", batch_idx)
        self._record_step(mean, batch_idx, int(batch["labels"].shape[0]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._conf = torch.zeros(self.num_classes ** 2, dtype=torch.float64, device=self.device)
        self._loss = torch.zeros(2, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.model(batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        self._conf += torch.bincount(labels * self.num_classes + logits.argmax(-1), minlength=self.num_classes ** 2).double()
        self._loss += torch.stack([F.cross_entropy(logits.float(), labels, reduction="sum").double(),
                                   torch.tensor(float(labels.numel()), dtype=torch.float64, device=self.device)])

    def on_validation_epoch_end(self) -> None:
        from ...text.metrics import metrics_from_confusion

        conf, loss = self._conf, self._loss
        if self.trainer.world_size > 1:
            conf = self.trainer.strategy.reduce(conf, reduce_op="sum")
            loss = self.trainer.strategy.reduce(loss, reduce_op="sum")
        if self.trainer.sanity_checking:
            return
        m = metrics_from_confusion(conf.reshape(self.num_classes, self.num_classes).cpu().numpy())
        val_loss = self._check_finite(loss[0] / loss[1].clamp(min=1), "validation loss")
        self.log("val/loss", float(val_loss), sync_dist=True)
        self.log("val/acc", m["accuracy"], sync_dist=True)
        self.log("val/f1", m["macro_f1"], prog_bar=True, sync_dist=True)
        self._record_epoch(val_loss=float(val_loss), val_acc=m["accuracy"], val_f1=m["macro_f1"])

    def configure_optimizers(self) -> Any:
        """AdamW: LoRA matrices at optim.lr, the new head at model.language.head_lr (a fresh head
        needs a larger step than adapters starting at zero); warmup + cosine per optimizer step."""
        from functools import partial

        o, lang = self.cfg.optim, self.cfg.model.language
        lora = [p for p in self.model.encoder.parameters() if p.requires_grad]
        groups = [{"params": lora, "lr": o.lr, "weight_decay": o.weight_decay},
                  {"params": [self.model.head.weight], "lr": lang.head_lr, "weight_decay": o.weight_decay},
                  {"params": [self.model.head.bias], "lr": lang.head_lr, "weight_decay": 0.0}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]])
        if self.total_steps is None:
            raise RuntimeError("LanguageTaskModule.total_steps must be set before fit")
        total = max(1, int(self.total_steps))
        warmup = max(1, int(round(o.warmup_fraction * total)))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(warmup_cosine, warmup=warmup, total=total, floor=o.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


class LanguageTask:
    """Reaction name -> subsystem; baselines majority class and TF-IDF + logistic regression."""

    name = "language"
    monitor = "val/f1"
    mode = "max"

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        from ...models._optional import require

        for name in ("transformers", "peft", "sklearn"):  # any failure at import: one DependencyError line
            require(name)
        from ...models.language import check_llm_stack

        self.versions = check_llm_stack()  # versions, and the pair importing together
        from ...datasets.reactions import load_reaction_subsystems

        o = cfg.model.language
        path, manifest, _ = open_metabolic(cfg, list(o.networks or []))
        data = load_reaction_subsystems(path, models=o.networks, min_count=o.min_count, rare=o.rare,  # type: ignore[arg-type]
                                        val=o.val_fraction, test=o.test_fraction, seed=o.split_seed)
        if o.subset:
            data = data.subset(dict(zip(("train", "val", "test"), o.subset)))
        self.data = data
        self.identity = {"path": str(path), "content_digest": manifest.get("content_digest"),
                         "examples": {s: int(len(data.indices(s))) for s in ("train", "val", "test")}}
        return self.identity

    def _settings(self, cfg: TrainConfig) -> Any:
        from ...models.language import LoraSettings

        o = cfg.model.language
        return LoraSettings(r=o.r, alpha=o.alpha, dropout=o.dropout, target_modules=list(o.target_modules),
                            head_dropout=o.head_dropout, max_length=o.max_length)

    def build(self, cfg: TrainConfig, hardware: dict[str, str]) -> tuple[Any, Any, int]:
        from ...models.language import build_language_model, load_tokenizer

        data, o = self.data, cfg.model.language
        self.tokenizer = load_tokenizer()
        model = build_language_model(data.num_classes, self._settings(cfg))
        weights = None
        if o.class_weight == "balanced":
            counts = np.bincount(data.labels_of("train"), minlength=data.num_classes).astype(np.float64)
            weights = torch.tensor(counts.sum() / (data.num_classes * np.maximum(counts, 1.0)), dtype=torch.float32)
        meta = {"store": dict(self.identity), "classes": list(data.classes), "trainable": model.trainable_parameters(),
                "versions": {"transformers": self.versions[0], "peft": self.versions[1]}, **hardware}
        module = LanguageTaskModule(model, cfg, meta=meta, class_weights=weights)
        dm = _datamodule(data, self.tokenizer, cfg)
        per_rank = -(-len(data.indices("train")) // cfg.data.batch_size)
        return dm, module, per_rank

    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> dict[str, Any]:
        from ...models.language import load_adapter, save_adapter
        from ...text.fit import evaluate_language

        data, o = self.data, cfg.model.language
        model = module.model.eval()
        metrics = evaluate_language(model, data, self.tokenizer, max_length=o.max_length, device=module.device)
        preds = {s: metrics[s].pop("predictions") for s in ("val", "test")}
        adapter = save_adapter(model.cpu(), run_dir / "adapter", classes=list(data.classes), settings=self._settings(cfg),
                               extra={"config": cfg.to_dict(), "metrics": {s: metrics[s] for s in ("val", "test")}})
        reloaded, _ = load_adapter(adapter)
        again = evaluate_language(reloaded, data, self.tokenizer, max_length=o.max_length, baselines=False)
        if any(again[s]["predictions"]["model"] != preds[s]["model"] for s in ("val", "test")):
            raise IntegrityError("the reloaded adapter does not reproduce the trained model's predictions", path=str(adapter))
        adapter_bytes = sum(p.stat().st_size for p in adapter.iterdir())
        return {"held_out_split": "test", "metric": "accuracy, macro_f1", "baseline": "majority, tfidf_lr",
                "evaluation": {s: metrics[s] for s in ("val", "test")}, "tfidf_lr_info": metrics.get("tfidf_lr_info"),
                "classes": list(data.classes), "data": _plain(data.info),
                "adapter": {"path": str(adapter), "bytes": adapter_bytes, "reproduced_after_reload": True}}

    def table(self, summary: dict[str, Any]) -> str:
        from ..report import _fmt, rows_table

        rows = [("split", "metric", "LoRA MiniLM", "majority class", "TF-IDF + LR")]
        for split, res in summary["evaluation"].items():
            for i, (metric, key) in enumerate((("accuracy", "accuracy"), ("macro-F1", "macro_f1"))):
                rows.append((f"{split} ({res['n']})" if i == 0 else "", metric, _fmt(res["model"][key]),
                             _fmt(res["majority"][key]), _fmt(res["tfidf_lr"][key])))
        a = summary["adapter"]
        head = (f"run {summary['run_dir']}: LoRA MiniLM, reaction name -> subsystem ({len(summary['classes'])} classes); "
                f"best epoch {summary['best_epoch']} of {summary['epochs_run']} (val macro-F1 "
                f"{_fmt(summary['best_score'] or float('nan'))}); {summary['wall_time_s']:.0f} s; adapter {a['bytes'] / 1e6:.2f} MB, "
                "reloaded and reproduced")
        return rows_table(head, rows)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        from ..report import _fmt

        r = summary["evaluation"]["test"]
        return [(f"test {name}", _fmt(r["model"][key]), "TF-IDF + LR / majority",
                 f"{_fmt(r['tfidf_lr'][key])} / {_fmt(r['majority'][key])}") for name, key in
                (("macro-F1", "macro_f1"), ("accuracy", "accuracy"))]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], module: Any, run_dir: Path) -> dict[str, str]:
        from ..report import plot_metric_curves

        base = summary["evaluation"]["val"]["tfidf_lr"]["macro_f1"]
        return {"loss_curves": str(plot_metric_curves(module.history, run_dir / "loss_curves.png", metric="val_f1",
                                                      label="val macro-F1", baseline=base, baseline_label="TF-IDF + LR"))}


def _plain(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
