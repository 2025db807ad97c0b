"""Use a trained climate emulator: load a run (`load_emulator`), predict planets no one simulated
as CF xarray datasets (`Emulator.predict`), score it on any cube store (`evaluate_store`), export
it for use without astrobio (`export_emulator`); the GCM's noise floor and the ensemble's
calibration are measured in `noise` and `calibration`. docs/emulator.md is the guide.

The heavy modules load on first use: the trainer's datacube evaluation imports `noise` and
`calibration` (plain numpy) from here, and must not pull in the loader that imports the trainer.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Emulator", "load_emulator", "evaluate_store", "export_emulator", "ExtrapolationWarning"]

_LAZY = {"Emulator": "load", "load_emulator": "load", "ExtrapolationWarning": "load", "evaluate_store": "evaluate",
         "export_emulator": "export"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
