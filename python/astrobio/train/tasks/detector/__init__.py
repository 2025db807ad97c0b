"""`--model detector`: a small CNN on survey observation patches (is a real source at the
centre?), against thresholding and logistic-regression baselines on the held-out sky cells.
See docs/observations.md."""

from .task import DetectorTask

__all__ = ["DetectorTask"]
