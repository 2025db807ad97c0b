"""`--model detector`: the observation store (`data.location`, else the default dataset's
observations part, collected from the real ZTF sources on first use), its split by sky cell and
object (fixed by the store, never by the run), the CNN of `astrobio.models.detector`, and the
held-out evaluation beside the baselines (`evaluate`, `baselines`) with bootstrap intervals.

Labels: alerts from ZTF's drb score, image detections from the ZTF pipeline mask and VSX (see
`astrobio.ingest._ztf_alerts` and `_ztf_image` for their weaknesses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...._optional import require
from ....datasets import default_part
from ....models.detector import Detector
from ....stores.observation import open_observations
from ...config import TrainConfig
from ...evaluation import Evaluation
from ...optim import optimizer_steps
from ...report import fmt, plot_metric_curves, rows_table
from .. import BuildContext, Built, Phase
from .data import PatchDataModule
from .evaluate import evaluate_detector
from .module import DetectorModule
from .options import DEFAULTS, DetectorOptions

__all__ = ["DetectorTask"]

METHODS = (("model", "CNN"), ("snr", "central SNR threshold"), ("logistic", "logistic regression"))


class DetectorTask:
    """Observation patch -> source at the centre or not; baselines SNR threshold and logistic regression."""

    name = "detector"
    data_kind = "observation"
    phases = (Phase("detector", "detector"),)  # its --mode full phase
    # val loss, not val AUC: AUC saturates at 1 on a small val split and stops training early
    monitor = "val/loss"
    mode = "min"
    options_type = DetectorOptions
    defaults = DEFAULTS

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        for lib in ("astropy", "sep", "pyarrow", "astropy_healpix"):
            require(lib)
        path = Path(cfg.data.location) if cfg.data.location else default_part("observations")
        self.store = open_observations(path, verify=cfg.data.verify)
        cfg.data.location = str(path.resolve())
        m = self.store.manifest
        cols = self.store.columns
        surveys = {f"{s} {p}": int(n) for (s, p), n in cols.groupby(["survey", "product"]).size().items()}
        self.identity = {"counts": m["counts"], "surveys": surveys, "split_rule": m["split_rule"]}
        return self.identity

    def build(self, cfg: TrainConfig, ctx: BuildContext) -> Built:
        o = cfg.model.options
        model = Detector(in_channels=self.store.cube().sample_shape[0], width=o.width, dropout=o.dropout)
        train = self.store.samples("train")
        y = self.store.columns["label"].to_numpy()[train]
        pos_weight = float((y == 0).sum() / max(1, (y == 1).sum()))
        per_rank = -(-len(train) // cfg.data.batch_size)
        module = DetectorModule(model, cfg, history=ctx.history, total_steps=optimizer_steps(cfg, per_rank), pos_weight=pos_weight)
        dm = PatchDataModule(self.store, batch_size=cfg.data.batch_size, seed=cfg.trainer.seed, num_workers=cfg.data.num_workers)
        meta = {"store": dict(self.identity), **ctx.hardware}
        return Built(dm, module, per_rank, meta)

    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> Evaluation:
        o = cfg.model.options
        ev = evaluate_detector(module.model, self.store, fpr=o.operating_fpr, n_boot=o.bootstrap, seed=cfg.trainer.seed,
                               device=module.device)
        test = ev["test"]
        return Evaluation(
            held_out_split="test", metric="auc", direction="max", model=test["model"]["auc"],
            baselines={"snr": test["snr"]["auc"], "logistic": test["logistic"]["auc"]}, evaluation=ev,
            details={"baseline_methods": {"snr": "central 5x5 peak SNR threshold (as sep/photutils detect)",
                                          "logistic": "logistic regression on 15 simple per-channel features"},
                     "operating_point": f"each method's threshold at {o.operating_fpr:.0%} false-positive rate on the split",
                     "dataset": self.identity})

    def table(self, summary: dict[str, Any]) -> str:
        rows = [("split / rows", "method", "ROC AUC [95% CI]", "precision", "recall", "F1")]
        for split, res in summary["evaluation"].items():
            groups = {"all": res, **res.get("per_survey", {})}
            for gname, g in groups.items():
                for i, (key, label) in enumerate(METHODS):
                    r = g[key]
                    ci = r["ci95"]["auc"]
                    rows.append((f"{split} {gname} ({g['positives']}+/{g['negatives']}-)" if i == 0 else "", label,
                                 f"{fmt(r['auc'])} [{fmt(ci[0])}, {fmt(ci[1])}]", fmt(r["precision"]), fmt(r["recall"]),
                                 fmt(r["f1"])))
        head = (f"run {summary['run_dir']}: detector CNN on observation patches; best epoch {summary['best_epoch']} of "
                f"{summary['epochs_run']} (val loss {fmt(summary['best_score'] or float('nan'))}); {summary['operating_point']}")
        return rows_table(head, rows)

    def headline(self, summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        r = summary["evaluation"]["test"]
        return [("test ROC AUC", fmt(r["model"]["auc"]), "SNR threshold / logistic",
                 f"{fmt(r['snr']['auc'])} / {fmt(r['logistic']['auc'])}"),
                ("test F1 @ FPR", fmt(r["model"]["f1"]), "SNR threshold / logistic",
                 f"{fmt(r['snr']['f1'])} / {fmt(r['logistic']['f1'])}")]

    def plots(self, cfg: TrainConfig, summary: dict[str, Any], history: dict[str, Any], run_dir: Path) -> dict[str, str]:
        base = summary["evaluation"]["val"]["logistic"]["auc"] if "val" in summary["evaluation"] else None
        return {"auc_curves": str(plot_metric_curves(history, run_dir / "auc_curves.png", metric="val_auc", label="val ROC AUC",
                                                     baseline=base, baseline_label="logistic regression"))}
