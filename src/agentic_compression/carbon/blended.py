"""One reading from two meters: the GPU from a GPU meter, CPU and RAM from a CPU meter.

On a GPU machine the best GPU figure (NVML) and the best CPU figure (RAPL where readable, otherwise
CodeCarbon's model) come from different meters. The blend starts and stops both around each phase and
takes from each only the components it is responsible for, so nothing is counted twice (CodeCarbon,
for instance, would also report the GPU). The reading is ``measured`` only if every component is, and
its ``meter`` names each component's method with its own label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import (
    Component,
    ComponentEnergy,
    ComponentSource,
    EnergyMeter,
)


class BlendedMeter(EnergyMeter):
    """GPU energy from ``gpu_meter`` plus CPU and RAM energy from ``cpu_meter``.

    CO2 uses this meter's own intensity (the sub-meters' are ignored); closing it closes both.

    Example:
        >>> meter = BlendedMeter(NvmlMeter("FRA"), CodeCarbonMeter("FRA"), "FRA")  # doctest: +SKIP
        >>> meter.name                                                             # doctest: +SKIP
        'gpu: nvml total-energy counter (...) (measured); cpu: codecarbon ... (estimated); ram: ...'
        >>> meter.label                                                            # doctest: +SKIP
        'estimated'
    """

    def __init__(
        self,
        gpu_meter: EnergyMeter,
        cpu_meter: EnergyMeter,
        country_iso_code: str = "USA",
        *,
        intensity: IntensityReading | None = None,
    ) -> None:
        super().__init__(country_iso_code, intensity)
        if "gpu" not in gpu_meter.components:
            raise ValueError(f"the GPU meter of a blend reports no GPU: {gpu_meter.name}")
        self.gpu_meter = gpu_meter
        self.cpu_meter = cpu_meter

    @property
    def components(self) -> Mapping[Component, ComponentSource]:
        cpu_side = self.cpu_meter.components
        found: dict[Component, ComponentSource] = {"gpu": self.gpu_meter.components["gpu"]}
        found.update({part: cpu_side[part] for part in ("cpu", "ram") if part in cpu_side})
        return found

    def start(self) -> object:
        return self.gpu_meter.start(), self.cpu_meter.start()

    def stop(self, token: object) -> ComponentEnergy:
        gpu_token, cpu_token = cast(tuple[object, object], token)
        try:
            gpu = self.gpu_meter.stop(gpu_token)
        finally:  # stop the CPU meter's phase even if the GPU read failed
            cpu = self.cpu_meter.stop(cpu_token)
        return ComponentEnergy(cpu_kwh=cpu.cpu_kwh, gpu_kwh=gpu.gpu_kwh, ram_kwh=cpu.ram_kwh)

    def close(self) -> None:
        self.gpu_meter.close()
        self.cpu_meter.close()
