"""A portable emulator: one `torch.export` program (`.pt2`) that maps physical planet-parameter
rows to the physical climate cube (mean and, for an ensemble, spread), runnable with torch alone
(`torch.export.load(path).module()(rows)`), plus a JSON card naming the inputs, outputs, units,
grid and training ranges.

Everything `Emulator.predict_physical` does is inside the program: the parameter normalization,
each member's network, linear stage and physics baseline, the return to physical units and the
members' mean and spread. The physics baseline's planet terms (T_eq, Clausius-Clapeyron,
surface pressure; `climate_scaling`, `models.baseline`) are computed with numpy in training, so
the program carries the same formulas in torch (`_TorchBaseline`, same constants, float64); the
tests check the program reproduces `predict` to float tolerance in a process that cannot
import astrobio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._fsutil import atomic_write
from .._version import __version__
from ..climate_scaling import BOND_ALBEDO, L_VAPOR, R_VAPOR, SOLAR_CONSTANT_WM2, STEFAN_BOLTZMANN, T_REF_K
from ..errors import ConfigError
from ..models.baseline import RELATIVE_VARIABLES, PhysicsBaseline

if TYPE_CHECKING:
    from .load import Emulator

__all__ = ["export_emulator", "PortableEmulator"]


class _TorchBaseline(nn.Module):
    """`PhysicsBaseline.terms` in torch (float64): what the export needs traced, from the same buffers."""

    def __init__(self, baseline: PhysicsBaseline) -> None:
        super().__init__()
        for name in ("regime_mean", "exponent", "cube_mean", "cube_scale", "param_mean", "param_scale"):
            self.register_buffer(name, getattr(baseline, name).detach().double().cpu().clone())
        names = list(baseline.param_names)
        self.col = {k: names.index(k) if k in names else -1
                    for k in ("equilibrium_temperature", "instellation", "surface_pressure", "synchronous")}
        self.variables = list(baseline.variables)

    def forward(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = params.double() * self.param_scale + self.param_mean
        n = raw.shape[0]
        if self.col["equilibrium_temperature"] >= 0:
            t_eq = raw[:, self.col["equilibrium_temperature"]]
        elif self.col["instellation"] >= 0:
            s = raw[:, self.col["instellation"]].clamp(min=0.0) * SOLAR_CONSTANT_WM2
            t_eq = (s * (1.0 - BOND_ALBEDO) / (4.0 * STEFAN_BOLTZMANN)) ** 0.25
        else:
            t_eq = raw.new_full((n,), 255.0)
        ps = raw[:, self.col["surface_pressure"]] if self.col["surface_pressure"] >= 0 else raw.new_ones(n)
        sync = (raw[:, self.col["synchronous"]] > 0.5).long() if self.col["synchronous"] >= 0 else torch.zeros_like(ps).long()
        t_eq, ps = t_eq.clamp(min=1.0), ps.clamp(min=1e-6)
        scales = []
        for i, v in enumerate(self.variables):
            if v == "ta":
                s_v = t_eq
            elif v == "hus":
                s_v = torch.exp(L_VAPOR / R_VAPOR * (1.0 / T_REF_K - 1.0 / t_eq))
            elif v == "wap":
                s_v = ps
            else:
                s_v = torch.ones_like(t_eq)
            scales.append(s_v ** self.exponent[i])
        scale = torch.stack(scales, dim=1)
        physical = self.regime_mean[sync] * scale[:, :, None, None, None]
        std = self.cube_scale[None, :, :, None, None]
        normalized = (physical - self.cube_mean[None, :, :, None, None]) / std
        departure = [physical[:, i].abs() / std[:, i] if v in RELATIVE_VARIABLES else torch.ones_like(physical[:, i])
                     for i, v in enumerate(self.variables)]
        return normalized.float(), torch.stack(departure, dim=1).float()


class _Member(nn.Module):
    """One trained module's prediction (`EmulatorModule.predict`) with the traceable baseline."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.model = module.model
        self.linear = module.linear
        self.baseline = _TorchBaseline(module.baseline) if module.baseline is not None else None
        index = module.param_index
        self.register_buffer("index", torch.as_tensor(index if index is not None else [], dtype=torch.long))
        self.select = index is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = x.index_select(1, self.index) if self.select else x
        out = self.model(inputs)
        if self.linear is not None:
            out = out + self.linear(inputs).to(out.dtype)
        if self.baseline is None:
            return out
        base, departure = self.baseline(x)
        return base + departure * out


class PortableEmulator(nn.Module):
    """Physical parameter rows [B, P] -> (mean [B, V, L, H, W], spread [B, V, L, H, W]) in
    physical units (float32); the spread is zero for a single run."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__()
        self.members = nn.ModuleList(_Member(m) for m in emulator.members)
        for name, norm in (("param", emulator.param_norm), ("cube", emulator.norm)):
            self.register_buffer(f"{name}_mean", torch.as_tensor(norm.mean, dtype=torch.float64))
            self.register_buffer(f"{name}_scale", torch.as_tensor(norm.scale, dtype=torch.float64))

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = ((rows.double() - self.param_mean) / self.param_scale).float()
        preds = torch.stack([m(x).float() for m in self.members])
        physical = preds.double() * self.cube_scale[None, None, :, :, None, None] + self.cube_mean[None, None, :, :, None, None]
        spread = physical.std(dim=0, unbiased=False) if len(self.members) > 1 else torch.zeros_like(physical[0])
        return physical.mean(dim=0).float(), spread.float()


def export_emulator(emulator: Emulator, out: str | Path) -> tuple[Path, Path]:
    """Write the portable program `out` (.pt2) and its card (`out` with .json); returns both."""
    out = Path(out)
    if out.suffix != ".pt2":
        raise ConfigError(f"the exported program is a .pt2 file (torch.export), got {out.name!r}")
    portable = PortableEmulator(emulator).cpu().eval()
    example = torch.as_tensor(np.stack([np.mean(r) for r in emulator.training_range.values()])[None].repeat(2, 0),
                              dtype=torch.float64)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad():
        program = torch.export.export(portable, (example,), dynamic_shapes=({0: batch},), strict=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as f:
        torch.export.save(program, f)
    card = {
        "format": "astrobio.emulator-export", "format_version": 1, "astrobio": __version__, "torch": torch.__version__,
        "usage": "program = torch.export.load(PATH).module(); mean, spread = program(rows)  # rows: float64 [B, P]",
        "inputs": [{"name": p.name, "units": p.units, "long_name": p.long_name,
                    "training_range": list(emulator.training_range[p.name])} for p in emulator.params],
        "outputs": {"mean": "[B, V, L, H, W] float32, physical units", "spread": "[B, V, L, H, W] members' standard deviation "
                    "(zeros for a single run)"},
        "variables": [{"name": v.name, "units": v.units, "long_name": v.long_name} for v in emulator.variables],
        "grid": emulator.coords, "members": len(emulator.members), "run": str(emulator.run_dir),
        "lineage": emulator.lineage,
    }
    card_path = out.with_suffix(".json")
    with atomic_write(card_path, "w") as f:
        f.write(json.dumps(card, indent=1, default=str))
    return out, card_path
