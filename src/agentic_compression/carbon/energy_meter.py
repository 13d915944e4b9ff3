"""Energy and CO2 of phases of work, through CodeCarbon's offline tracker.

One tracker per meter, used only through CodeCarbon *tasks* (one per phase, each with a unique name:
CodeCarbon renames a repeated task name internally, so reusing names would stop the wrong task). Where the
machine exposes no hardware counter (no RAPL, no NVIDIA GPU) CodeCarbon estimates CPU power from a
TDP-and-load model: such readings are labelled ``estimated`` and name that model as their meter.
CO2 uses CodeCarbon's bundled country energy-mix table for ``country_iso_code``.

Example:
    >>> meter = CodeCarbonMeter("FRA")           # doctest: +SKIP
    >>> with meter.phase("evaluation") as box:   # doctest: +SKIP
    ...     run_benchmark()
    >>> box.reading.energy_kwh                   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentic_compression.core.metrics import EnergyLabel, EnergyReading
from agentic_compression.errors import UserInputError

#: CodeCarbon CPU modes that read a hardware energy counter rather than a power model.
_MEASURED_CPU_MODES = ("intel_rapl", "windows_emi", "intel_power_gadget", "apple_powermetrics")


@dataclass
class PhaseBox:
    """Filled with the phase's reading when the ``with`` block ends."""

    reading: EnergyReading | None = None


class CodeCarbonMeter:
    """Measure (or estimate, labelled) the energy of named phases of work."""

    def __init__(self, country_iso_code: str = "USA") -> None:
        import pycountry

        code = country_iso_code.upper()
        country = pycountry.countries.get(alpha_3=code) or pycountry.countries.get(alpha_2=code)
        if country is None:
            raise UserInputError(
                f"unknown country code {country_iso_code!r}; use an ISO 3166 code such as USA or FRA"
            )
        self.country_iso_code = country.alpha_3
        self._tracker: Any = None
        self._phases = 0

    def _started(self) -> Any:
        if self._tracker is None:
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from codecarbon import OfflineEmissionsTracker

                self._tracker = OfflineEmissionsTracker(
                    country_iso_code=self.country_iso_code,
                    save_to_file=False,
                    log_level="error",
                    tracking_mode="process",
                )
        return self._tracker

    @property
    def label(self) -> EnergyLabel:
        modes = [getattr(h, "_mode", None) for h in self._started()._hardware]
        has_gpu = any(type(h).__name__ == "GPU" for h in self._started()._hardware)
        return (
            "measured" if has_gpu or any(m in _MEASURED_CPU_MODES for m in modes) else "estimated"
        )

    @property
    def name(self) -> str:
        import codecarbon

        parts = ", ".join(h.description() for h in self._started()._hardware)
        return f"codecarbon {codecarbon.__version__} [{parts}] (process tracking)"

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[PhaseBox]:
        tracker = self._started()
        box = PhaseBox()
        self._phases += 1
        task_name = f"{name}-{self._phases}"
        tracker.start_task(task_name)
        try:
            yield box
        finally:
            data = tracker.stop_task(task_name)
            energy = float(data.energy_consumed)
            box.reading = EnergyReading(
                phase=name,
                duration_s=float(data.duration),
                energy_kwh=energy,
                co2_kg=float(data.emissions),
                cpu_energy_kwh=float(data.cpu_energy),
                gpu_energy_kwh=float(data.gpu_energy),
                ram_energy_kwh=float(data.ram_energy),
                label=self.label,
                meter=self.name,
                country_iso_code=self.country_iso_code,
                carbon_intensity_g_per_kwh=(float(data.emissions) / energy * 1000)
                if energy
                else 0.0,
                intensity_source=f"codecarbon energy-mix table ({self.country_iso_code})",
            )

    def close(self) -> None:
        """Drop the tracker (it was never started as a whole: tasks need no stop)."""
        self._tracker = None
