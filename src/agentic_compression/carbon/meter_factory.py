"""Choose the best energy meter this machine offers.

``auto`` prefers hardware over models: on a machine with an NVIDIA driver, a blend of NVML for the GPU
with RAPL (where readable) or else CodeCarbon's estimate for CPU and RAM; without a GPU, RAPL where
readable; otherwise CodeCarbon, whose CPU and RAM figures are then models, labelled ``estimated``.
Nothing is printed: the chosen meter's ``name`` and ``label`` say what it is, and travel with every
reading. Why a better meter was unavailable is logged at INFO level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import (
    EnergyMeter,
    MeterUnavailableError,
    country_average,
    resolve_country,
)
from agentic_compression.carbon.rapl import DEFAULT_POWERCAP_ROOT
from agentic_compression.errors import UserInputError

logger = logging.getLogger(__name__)

MeterPreference = Literal["auto", "blended", "nvml", "rapl", "codecarbon", "zeus"]
METER_PREFERENCES: tuple[str, ...] = get_args(MeterPreference)


def make_energy_meter(
    country_iso_code: str,
    *,
    intensity: IntensityReading | None = None,
    prefer: str = "auto",
    powercap_root: Path | str = DEFAULT_POWERCAP_ROOT,
) -> EnergyMeter:
    """The meter named by ``prefer``, or with ``auto`` the best one available here.

    ``intensity`` (for example ``default_chain().latest(zone).reading``) sets the grid intensity for
    CO2; without it, the country's annual average from CodeCarbon's table. A meter named explicitly
    that cannot run here raises :class:`UserInputError` with the reason; ``auto`` never does.

    Example:
        >>> meter = make_energy_meter("FRA")   # doctest: +SKIP
        >>> meter.name, meter.label            # doctest: +SKIP
        ('cpu: codecarbon 3.3.2 TDP x load model (...) (estimated); ram: ...', 'estimated')
    """
    from agentic_compression.carbon.blended import BlendedMeter
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.carbon.nvml import NvmlMeter
    from agentic_compression.carbon.rapl import RaplMeter
    from agentic_compression.carbon.zeus import ZeusMeter

    if prefer not in METER_PREFERENCES:
        raise UserInputError(
            f"unknown energy meter {prefer!r}; use one of {', '.join(METER_PREFERENCES)}"
        )
    country = resolve_country(country_iso_code)
    # Resolved once, so every sub-meter of a blend agrees on it.
    intensity = intensity if intensity is not None else country_average(country)

    def codecarbon() -> EnergyMeter:
        return CodeCarbonMeter(country, intensity=intensity)

    def nvml() -> EnergyMeter:
        return NvmlMeter(country, intensity=intensity)

    def rapl() -> EnergyMeter:
        return RaplMeter(country, intensity=intensity, root=powercap_root)

    def blend(gpu: EnergyMeter) -> EnergyMeter:
        cpu = _available("rapl", rapl) or codecarbon()
        return BlendedMeter(gpu, cpu, country, intensity=intensity)

    if prefer == "auto":
        gpu = _available("nvml", nvml)
        if gpu is not None:
            return blend(gpu)
        return _available("rapl", rapl) or codecarbon()
    explicit: dict[str, Callable[[], EnergyMeter]] = {
        "blended": lambda: blend(nvml()),
        "nvml": nvml,
        "rapl": rapl,
        "codecarbon": codecarbon,
        "zeus": lambda: ZeusMeter(country, intensity=intensity),
    }
    try:
        return explicit[prefer]()
    except MeterUnavailableError as exc:
        raise UserInputError(
            f"energy meter {prefer!r} is not available here: {exc}; use 'auto' to pick the best available"
        ) from exc


def _available(kind: str, build: Callable[[], EnergyMeter]) -> EnergyMeter | None:
    try:
        return build()
    except MeterUnavailableError as exc:
        logger.info("energy meter %s unavailable: %s", kind, exc)
        return None
