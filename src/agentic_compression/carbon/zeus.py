"""GPU, CPU and DRAM energy through Zeus's ``ZeusMonitor`` (optional; not installed by default).

Zeus reads the same NVML and RAPL counters as :mod:`~agentic_compression.carbon.nvml` and
:mod:`~agentic_compression.carbon.rapl`. It is not a dependency: its ``amdsmi`` requirement makes
``import ray`` fail, and this project runs candidates on Ray. Install it (``pip install zeus``) only
in an environment without Ray; without it this meter raises
:class:`~agentic_compression.carbon.meter.MeterUnavailableError` saying so.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import (
    JOULES_PER_KWH,
    Component,
    ComponentEnergy,
    ComponentSource,
    EnergyMeter,
    MeterUnavailableError,
)

NOT_INSTALLED = (
    "Zeus is not installed: pip install zeus (in an environment without Ray: Zeus's amdsmi "
    "dependency makes `import ray` fail); the default meters (NVML, RAPL, CodeCarbon) need no Zeus"
)


class ZeusMeter(EnergyMeter):
    """Energy per phase from one ``ZeusMonitor`` window per phase (windows may overlap).

    Example:
        >>> meter = ZeusMeter("USA")                 # doctest: +SKIP
        >>> with meter.phase("decode") as box:       # doctest: +SKIP
        ...     generate()
        >>> box.reading.gpu_energy_kwh               # doctest: +SKIP
    """

    def __init__(
        self, country_iso_code: str = "USA", *, intensity: IntensityReading | None = None
    ) -> None:
        super().__init__(country_iso_code, intensity)
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError as exc:
            raise MeterUnavailableError(NOT_INSTALLED) from exc
        try:
            self._monitor: Any = ZeusMonitor()
        except Exception as exc:  # Zeus raises its own types for "no GPU", "no RAPL"
            raise MeterUnavailableError(f"Zeus: cannot start a monitor ({exc})") from exc
        self._windows = itertools.count(1)

    @property
    def components(self) -> Mapping[Component, ComponentSource]:
        found: dict[Component, ComponentSource] = {}
        if list(getattr(self._monitor, "gpu_indices", [])):
            found["gpu"] = ComponentSource("zeus nvml", "measured")
        if list(getattr(self._monitor, "cpu_indices", [])):
            found["cpu"] = ComponentSource("zeus rapl package", "measured")
            found["ram"] = ComponentSource("zeus rapl dram (0 where not exposed)", "measured")
        return found

    def start(self) -> object:
        key = f"agentic-compression-phase-{next(self._windows)}"
        self._monitor.begin_window(key)
        return key

    def stop(self, token: object) -> ComponentEnergy:
        measurement = self._monitor.end_window(str(token))

        def kwh(joules_by_device: dict[int, float] | None) -> float:
            return sum((joules_by_device or {}).values()) / JOULES_PER_KWH

        return ComponentEnergy(
            cpu_kwh=kwh(measurement.cpu_energy),
            gpu_kwh=kwh(measurement.gpu_energy),
            ram_kwh=kwh(measurement.dram_energy),
        )
