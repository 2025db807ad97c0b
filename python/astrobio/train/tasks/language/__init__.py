"""`--model language`: the LoRA MiniLM, reaction name -> subsystem (options, data, baselines,
LightningModule, evaluation, task). transformers, peft and scikit-learn are imported only when
the task runs (`require` in `LanguageTask.open`)."""

from .baselines import TFIDF_GRID, majority_baseline, tfidf_baseline
from .data import EpochShuffle, PadCollate, ReactionDataModule, TokenizedTexts, class_weights, tokenize
from .evaluate import evaluate_language, predict_language, save_reproducible_adapter
from .module import LanguageModule
from .options import DEFAULTS, LanguageOptions
from .task import LanguageTask

__all__ = ["DEFAULTS", "EpochShuffle", "LanguageModule", "LanguageOptions", "LanguageTask", "PadCollate",
           "ReactionDataModule", "TFIDF_GRID", "TokenizedTexts", "class_weights", "evaluate_language", "majority_baseline",
           "predict_language", "save_reproducible_adapter", "tfidf_baseline", "tokenize"]
