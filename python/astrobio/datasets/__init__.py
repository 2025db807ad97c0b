"""The embedded default dataset, built from real sources shipped in packages (see default.py)."""

from .default import PARTS, build_default, data_home, default_part, part_path

__all__ = ["PARTS", "build_default", "data_home", "default_part", "part_path"]
