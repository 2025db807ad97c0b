"""`--model detector`: the observation store (`data.store`, else the default dataset's
observations, collected from the real ZTF sources on first use), its split by sky cell and
object (fixed by the store, never by the run), the CNN of `astrobio.models.detector`, and the
held-out evaluation beside the baselines (`evaluate`, `baselines`) with bootstrap intervals.

Labels: alerts from ZTF's drb score, image detections from the ZTF pipeline mask and VSX (see
`astrobio.ingest._ztf_alerts` and `_ztf_image` for their weaknesses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...._home import data_home
from ....models._optional import require
from ....models.detector import Detector
from ....stores.observation import open_observations
from ...config import TrainConfig
from ...optim import optimizer_steps
from ...report import fmt, plot_metric_curves, rows_table
from .. import BuildContext, Built
from .data import PatchDataModule
from .evaluate import evaluate_detector
from .module import DetectorModule
from .options import DEFAULTS, DetectorOptions

__all__ = ["DetectorTask", "default_observations"]

METHODS = (("model", "CNN"), ("snr", "central SNR threshold"), ("logistic", "logistic regression"))


def default_observations() -> Path:
    """The default dataset's observation store, collected on first use."""
    path = data_home() / "default" / "observations.zarr"
    if not (path / "zarr.json").exists():
        from ....ingest.observations import DEFAULT_PART, ingest_observations

        ingest_observations(path, DEFAULT_PART, name="default-observations")
    return path


class DetectorTask:
    """Observation patch -> source at the centre or not; baselines SNR threshold and logistic regression."""

    name = "detector"
    # val loss, not val AUC: AUC saturates at 1 on a small val split and stops training early
    monitor = "val/loss"
    mode = "min"
    options_type = DetectorOptions
    defaults = DEFAULTS

    def open(self, cfg: TrainConfig) -> dict[str, Any]:
        for lib in ("astropy", "sep", "pyarrow", "astropy_healpix"):
            require(lib)
        path = Path(cfg.data.store) if cfg.data.store else default_observations()
        self.store = open_observations(path, verify=cfg.data.verify)
        m = self.store.manifest
        self.identity = {"path": str(path), "content_digest": m["content_digest"], "counts": m["counts"],
                         "surveys": sorted(set(self.store.columns["survey"])), "split_rule": m["split_rule"]}
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

    def evaluate(self, cfg: TrainConfig, module: Any, run_dir: Path) -> dict[str, Any]:
        o = cfg.model.options
        ev = evaluate_detector(module.model, self.store, fpr=o.operating_fpr, n_boot=o.bootstrap, seed=cfg.trainer.seed,
                               device=module.device)
        return {"held_out_split": "test", "metric": "auc", "baseline": "snr, logistic",
                "baselines": {"snr": "central 5x5 peak SNR threshold (as sep/photutils detect)",
                              "logistic": "logistic regression on 15 simple per-channel features"},
                "operating_point": f"each method's threshold at {o.operating_fpr:.0%} false-positive rate on the split",
                "evaluation": ev, "data": {"counts": self.identity["counts"], "surveys": self.identity["surveys"],
                                           "split_rule": self.identity["split_rule"]}}

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
