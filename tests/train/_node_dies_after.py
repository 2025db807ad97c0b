"""torchrun entry for the two-node test: `python -m astrobio.train ARGS`, except that the
process SIGKILLs itself right after the checkpoint named by $ASTROBIO_TEST_DIE_AFTER is renamed
into place: a node lost at a known point (only rank 0 writes checkpoints, so only it dies; its
peer's next collective then fails). Patches os.replace only, as tests/faults/_crash_child.py does."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from astrobio.train.cli import main

_real_replace = os.replace


def _replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
    _real_replace(src, dst, *args, **kwargs)
    if os.path.basename(str(dst)) == os.environ["ASTROBIO_TEST_DIE_AFTER"]:
        os.kill(os.getpid(), signal.SIGKILL)


os.replace = _replace
raise SystemExit(main(sys.argv[1:]))
