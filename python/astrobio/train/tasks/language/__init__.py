"""`--model language`: the LoRA MiniLM, reaction name -> subsystem (options, data, baselines,
LightningModule, evaluation, task). transformers, peft and scikit-learn are imported only when
the task runs (`require` in `LanguageTask.open`)."""

from .. import lazy_exports

#: public name -> its module here; loaded on first use, so the options module imports alone
_WHERE = {"DEFAULTS": "options", "EpochShuffle": "data", "LanguageModule": "module", "LanguageOptions": "options",
          "LanguageTask": "task", "PadCollate": "data", "ReactionDataModule": "data", "TFIDF_GRID": "baselines",
          "TokenizedTexts": "data", "class_weights": "data", "evaluate_language": "evaluate", "majority_baseline":
          "baselines", "predict_language": "evaluate", "save_reproducible_adapter": "evaluate", "tfidf_baseline":
          "baselines", "tokenize": "data"}
__all__ = sorted(_WHERE)
__getattr__ = lazy_exports(__name__, _WHERE)
