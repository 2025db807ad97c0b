"""Sources pinned to a source distribution: only the listed members of the package unpacked,
confined to the folder, a missing member refused (tests build their own small tar.gz; the real
fink-science and ztfimg sdists are fetched by the observation tests through the same code)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from astrobio.datasets import sources
from astrobio.errors import IntegrityError


def _sdist(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sdist_unpacks_only_the_listed_members(tmp_path: Path) -> None:
    sdist = tmp_path / "pkg-1.0.tar.gz"
    sha = _sdist(sdist, {"pkg-1.0/pkg/data/a.parquet": b"a", "pkg-1.0/pkg/data/sim.parquet": b"s",
                         "pkg-1.0/setup.py": b"", "pkg-1.0/pkg/__init__.py": b""})
    src = sources.Source("pkg", "1.0", "pkg", sdist.name, sha, members=("data/a.parquet",))
    assert src.sdist
    target = tmp_path / "cache" / "pkg-1.0" / "pkg"
    sources._unpack(src, sdist, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == ["data/a.parquet"]


def test_sdist_missing_member_is_refused_and_nothing_left(tmp_path: Path) -> None:
    sdist = tmp_path / "pkg-1.0.tar.gz"
    sha = _sdist(sdist, {"pkg-1.0/pkg/data/a.parquet": b"a"})
    src = sources.Source("pkg", "1.0", "pkg", sdist.name, sha, members=("data/a.parquet", "data/b.fits"))
    target = tmp_path / "cache" / "pkg-1.0" / "pkg"
    with pytest.raises(IntegrityError, match="lacks data/b.fits"):
        sources._unpack(src, sdist, target)
    assert not target.exists()


def test_sdist_member_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    sdist = tmp_path / "pkg-1.0.tar.gz"
    sha = _sdist(sdist, {"pkg-1.0/pkg/../../../escaped.txt": b"no"})
    src = sources.Source("pkg", "1.0", "pkg", sdist.name, sha)
    with pytest.raises(IntegrityError, match="unsafe member path"):
        sources._unpack(src, sdist, tmp_path / "cache" / "pkg-1.0" / "pkg")
    assert not (tmp_path / "escaped.txt").exists()
