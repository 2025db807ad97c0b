"""`--model language`: LoRA fine-tuning of the packaged all-MiniLM-L6-v2 encoder to predict a
reaction's subsystem (pathway) from its name, through the shared trainer (checkpoints, exact
resume, early stopping on validation macro-F1, logging, summary).

The model is astrobio.models.language's, the examples and split astrobio.datasets.reactions'
(see docs/language.md for the task's rules); this package holds the rest:

- data (`data`): `load_reaction_subsystems` on the metabolic store (`data.location`, else the
  default dataset's), the data rules and split from `model.options`; `ReactionDataModule`
  tokenizes and shuffles by (seed, epoch).
- module (`module`): `LanguageModule` (cross-entropy with class weights, validation accuracy
  and macro-F1 from a confusion matrix summed exactly over ranks; trainable-only checkpoints).
- evaluation (`evaluate`, `baselines`): the model beside the majority class and TF-IDF +
  logistic regression, on the same val/test names; then the adapter alone is saved to
  `<run>/adapter`, reloaded, and must predict exactly the same classes (IntegrityError otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ....datasets.reactions import load_reaction_subsystems
from ...._optional import require
from ....models.language import LoraSettings, build_language_model, check_llm_stack, load_tokenizer
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...optim import optimizer_steps
from ...report import fmt, jsonable, plot_metric_curves, rows_table
from .. import BuildContext, Built, Phase
from ..graph.store import open_metabolic
from .data import ReactionDataModule, class_weights
from .evaluate import evaluate_language, save_reproducible_adapter
from .module import LanguageModule
from .options import DEFAULTS, LanguageOptions, search_space

__all__ = ["LanguageTask"]


class LanguageTask:
    """Reaction name -> subsystem; baselines majority class and TF-IDF + logistic regression."""

    name = "language"
    data_kind = "graph"
    monitor = "val/f1"
    mode = "max"
    options_type = LanguageOptions
    phases = (Phase("language", "language"),)  # its --mode full phase
    defaults = DEFAULTS
    search_space = staticmethod(search_space)  # astrobio tune's default space

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        for name in ("transformers", "peft", "sklearn"):  # any failure at import: one DependencyError line
            require(name)
        self.versions = check_llm_stack()  # versions, and the pair importing together
        o = cfg.model.options
        path, _, _ = open_metabolic(cfg, list(o.networks or []))
        data = load_reaction_subsystems(path, models=o.networks, min_count=o.min_count, rare=o.rare,  # type: ignore[arg-type]
                                        val=o.val_fraction, test=o.test_fraction, seed=o.split_seed)
        if o.subset:
            data = data.subset(dict(zip(("train", "val", "test"), o.subset)))
        self.data = data
        self.identity = {"examples": {s: int(len(data.indices(s))) for s in ("train", "val", "test")}}
        return self.identity

    def _settings(self, cfg: TrainConfig) -> LoraSettings:
        o = cfg.model.options
        return LoraSettings(r=o.r, alpha=o.alpha, dropout=o.dropout, target_modules=list(o.target_modules),
                            head_dropout=o.head_dropout, max_length=o.max_length)

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        data, o = self.data, cfg.model.options
        self.tokenizer = load_tokenizer()
        model = build_language_model(data.num_classes, self._settings(cfg))
        weights = class_weights(data) if o.class_weight == "balanced" else None
        meta = {"store": dict(self.identity), "classes": list(data.classes), "trainable": model.trainable_parameters(),
                "versions": {"transformers": self.versions[0], "peft": self.versions[1]}, **ctx.hardware}
        per_rank = -(-len(data.indices("train")) // cfg.data.batch_size)
        module = LanguageModule(model, cfg, history=ctx.history, total_steps=optimizer_steps(cfg, per_rank),
                                class_weights=weights)
        dm = ReactionDataModule(data, self.tokenizer, batch_size=cfg.data.batch_size, max_length=o.max_length,
                                seed=cfg.trainer.seed, num_workers=cfg.data.num_workers)
        return Built(dm, module, per_rank, meta)

    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        data, o = self.data, cfg.model.options
        model = module.model.eval()
        device = module.device
        metrics = evaluate_language(model, data, self.tokenizer, max_length=o.max_length, device=device)
        preds = {s: metrics[s].pop("predictions") for s in ("val", "test")}
        adapter = save_reproducible_adapter(
            model, run_dir / "adapter", data, self.tokenizer, settings=self._settings(cfg), device=device,
            predictions={s: preds[s]["model"] for s in ("val", "test")},
            extra={"config": cfg.to_dict(), "metrics": {s: metrics[s] for s in ("val", "test")}})
        adapter_bytes = sum(p.stat().st_size for p in adapter.iterdir())
        test = metrics["test"]
        return Evaluation(
            held_out_split="test", metric="macro_f1", direction="max", model=test["model"]["macro_f1"],
            baselines={b: test[b]["macro_f1"] for b in ("tfidf_lr", "majority")},
            evaluation={s: metrics[s] for s in ("val", "test")},
            details={"tfidf_lr_info": metrics.get("tfidf_lr_info"), "classes": list(data.classes), "data": jsonable(data.info),
                     "adapter": {"path": str(adapter), "bytes": adapter_bytes, "reproduced_after_reload": True}})

    def table(self, summary: dict[str, Any]) -> str:
        rows = [("split", "metric", "LoRA MiniLM", "majority class", "TF-IDF + LR")]
        for split, res in summary["evaluation"].items():
            for i, (metric, key) in enumerate((("accuracy", "accuracy"), ("macro-F1", "macro_f1"))):
                rows.append((f"{split} ({res['n']})" if i == 0 else "", metric, fmt(res["model"][key]),
                             fmt(res["majority"][key]), fmt(res["tfidf_lr"][key])))
        a = summary["adapter"]
        head = (f"run {summary['run_dir']}: LoRA MiniLM, reaction name -> subsystem ({len(summary['classes'])} classes); "
                f"best epoch {summary['best_epoch']} of {summary['epochs_run']} (val macro-F1 "
                f"{fmt(summary['best_score'] or float('nan'))}); {summary['wall_time_s']:.0f} s; adapter {a['bytes'] / 1e6:.2f} MB, "
                "reloaded and reproduced")
        return rows_table(head, rows)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        r = summary["evaluation"]["test"]
        return [(f"test {name}", fmt(r["model"][key]), "TF-IDF + LR / majority",
                 f"{fmt(r['tfidf_lr'][key])} / {fmt(r['majority'][key])}") for name, key in
                (("macro-F1", "macro_f1"), ("accuracy", "accuracy"))]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        base = summary["evaluation"]["val"]["tfidf_lr"]["macro_f1"]
        return {"loss_curves": str(plot_metric_curves(history, run_dir / "loss_curves.png", metric="val_f1",
                                                      label="val macro-F1", baseline=base, baseline_label="TF-IDF + LR"))}

