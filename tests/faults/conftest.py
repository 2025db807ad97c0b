from __future__ import annotations

import pytest

from ._util import build_template


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """The intact tiny climate store; tests corrupt copies of it (`fresh_copy`)."""
    return build_template(tmp_path_factory.mktemp("template") / "climate.zarr")
