"""Energy of phases of work through CodeCarbon's offline tracker (works everywhere, often a model).

One tracker per meter, used only through CodeCarbon *tasks* (one per phase, each with a unique name:
CodeCarbon renames a repeated task name internally, so reusing names would stop the wrong task); tasks
cannot overlap. The tracker runs in *process* mode: CPU power is scaled by this process's share of CPU
time and RAM power by its resident memory. Where the machine exposes no hardware counter (no RAPL, as
on most cloud VMs) CodeCarbon estimates CPU power as TDP x load, and it always models RAM power from
memory size; such components are labelled ``estimated`` and the meter's name says which model.
CO2 uses the meter's intensity (see :mod:`agentic_compression.carbon.meter`), by default the
country's average from CodeCarbon's own table, so the figure matches CodeCarbon's offline tracker.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import (
    Component,
    ComponentEnergy,
    ComponentSource,
    EnergyMeter,
    PhaseBox,
)

__all__ = ["CodeCarbonMeter", "PhaseBox"]

#: CodeCarbon CPU modes that read a hardware energy counter rather than a power model.
_MEASURED_CPU_MODES = ("intel_rapl", "windows_emi", "intel_power_gadget", "apple_powermetrics")


class CodeCarbonMeter(EnergyMeter):
    """Measure (or estimate, labelled) the energy of named phases with CodeCarbon.

    Example:
        >>> meter = CodeCarbonMeter("FRA")           # doctest: +SKIP
        >>> with meter.phase("evaluation") as box:   # doctest: +SKIP
        ...     run_benchmark()
        >>> box.reading.label, box.reading.meter     # doctest: +SKIP
        ('estimated', 'cpu: codecarbon 3.3.2 TDP x load model (...) (estimated); ram: ...')
    """

    def __init__(
        self, country_iso_code: str = "USA", *, intensity: IntensityReading | None = None
    ) -> None:
        super().__init__(country_iso_code, intensity)
        self._tracker: Any = None
        self._components: dict[Component, ComponentSource] | None = None
        self._phases = 0

    def _started(self) -> Any:
        if self._tracker is None:
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from codecarbon import OfflineEmissionsTracker
                from codecarbon.external.logger import set_logger_level

                set_logger_level("error")  # its INFO/WARNING lines would break the CLI's table

                tracker = OfflineEmissionsTracker(
                    country_iso_code=self.country_iso_code,
                    save_to_file=False,
                    log_level="error",
                    tracking_mode="process",
                )
                # Hardware is otherwise detected at the first task; name and label need it now.
                ready = getattr(tracker, "_ensure_hardware_ready", None)
                if callable(ready):
                    ready()
            self._tracker = tracker
        return self._tracker

    @property
    def components(self) -> Mapping[Component, ComponentSource]:
        if self._components is None:  # kept after close(): the hardware does not change
            self._components = _describe_hardware(self._started()._hardware)
        return self._components

    def start(self) -> object:
        self._phases += 1
        task_name = f"phase-{self._phases}"
        self._started().start_task(task_name)
        return task_name

    def stop(self, token: object) -> ComponentEnergy:
        data = self._started().stop_task(str(token))
        if data is None:
            raise RuntimeError(f"CodeCarbon had no running task {token!r} (phases cannot overlap)")
        return ComponentEnergy(
            cpu_kwh=float(data.cpu_energy),
            gpu_kwh=float(data.gpu_energy),
            ram_kwh=float(data.ram_energy),
        )

    def close(self) -> None:
        """Drop the tracker (it was never started as a whole: tasks need no stop)."""
        self._tracker = None


def _cpu_source(prefix: str, cpu: Any) -> ComponentSource:
    mode = str(getattr(cpu, "_mode", ""))
    if mode in _MEASURED_CPU_MODES:
        return ComponentSource(f"{prefix} {mode} counter", "measured")
    model = getattr(cpu, "_model", "unknown CPU")
    tdp = getattr(cpu, "_tdp", "?")
    generic = ", generic TDP" if getattr(cpu, "_is_generic_tdp", False) else ""
    if mode == "cpu_load":
        method = f"TDP x load model ({model}, {tdp} W TDP{generic}, process share)"
    else:
        method = f"{mode or 'constant'} TDP model ({model}, {tdp} W TDP{generic})"
    return ComponentSource(f"{prefix} {method}", "estimated")


def _describe_hardware(hardware_list: list[Any]) -> dict[Component, ComponentSource]:
    import codecarbon

    prefix = f"codecarbon {codecarbon.__version__}"
    found: dict[Component, ComponentSource] = {}
    for hardware in hardware_list:
        kind = type(hardware).__name__
        if kind == "CPU":
            found["cpu"] = _cpu_source(prefix, hardware)
        elif kind == "RAM":
            found["ram"] = ComponentSource(
                f"{prefix} RAM power model (process memory)", "estimated"
            )
        elif kind == "GPU":
            found["gpu"] = ComponentSource(f"{prefix} nvml {hardware.description()}", "measured")
        elif kind == "AppleSiliconChip":
            part: Component = "gpu" if "gpu" in repr(hardware).lower() else "cpu"
            found[part] = ComponentSource(f"{prefix} powermetrics {hardware!r}", "measured")
        else:  # an unknown kind of hardware: say what it is, and do not claim a measurement
            found["cpu"] = ComponentSource(f"{prefix} {hardware!r}", "estimated")
    return found
