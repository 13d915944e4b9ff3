"""Energy meters: one interface over CodeCarbon, RAPL, NVML and their blend.

A meter measures *phases* of work. ``with meter.phase("latency") as box: ...`` leaves an
:class:`~agentic_compression.core.metrics.EnergyReading` in ``box.reading`` when the block ends (also
when it raises: energy spent is energy spent). Each reading names the meter and says, in ``label``,
whether every component (cpu, gpu, ram) came from a hardware counter or power sensor ("measured") or
whether at least one came from a model ("estimated").

CO2 is always energy x one grid intensity: the :class:`IntensityReading` the meter was given (for
example from :func:`~agentic_compression.carbon.default_chain`), else the annual average of the
meter's country from CodeCarbon's table (:class:`~agentic_compression.carbon.StaticTableProvider`,
the same figures CodeCarbon's offline tracker applies). The reading's ``intensity_source`` records the
source, the signal (average or marginal) and the time the figure refers to.

Implementations: :class:`~agentic_compression.carbon.energy_meter.CodeCarbonMeter`,
:class:`~agentic_compression.carbon.rapl.RaplMeter`, :class:`~agentic_compression.carbon.nvml.NvmlMeter`,
:class:`~agentic_compression.carbon.blended.BlendedMeter`, :class:`~agentic_compression.carbon.zeus.ZeusMeter`;
:func:`~agentic_compression.carbon.meter_factory.make_energy_meter` picks the best one available.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from agentic_compression.carbon.intensity import IntensityReading, ProviderError
from agentic_compression.core.metrics import EnergyLabel, EnergyReading
from agentic_compression.errors import AgenticCompressionError, UserInputError

Component = Literal["cpu", "gpu", "ram"]
#: The order in which names list components: the GPU, usually the largest, first.
_COMPONENT_ORDER: tuple[Component, ...] = ("gpu", "cpu", "ram")

#: Joules in one kilowatt-hour.
JOULES_PER_KWH = 3.6e6


class MeterUnavailableError(AgenticCompressionError):
    """This meter cannot run here (no driver, no counter, not readable, not installed); says why."""


@dataclass
class PhaseBox:
    """Filled with the phase's reading when the ``with`` block ends."""

    reading: EnergyReading | None = None


@dataclass(frozen=True)
class ComponentSource:
    """How a meter obtains one component's energy: the method in words, and its label."""

    method: str
    label: EnergyLabel


@dataclass(frozen=True)
class ComponentEnergy:
    """Energy of one phase per component, in kWh (a component a meter does not cover is 0)."""

    cpu_kwh: float = 0.0
    gpu_kwh: float = 0.0
    ram_kwh: float = 0.0

    @property
    def total_kwh(self) -> float:
        return self.cpu_kwh + self.gpu_kwh + self.ram_kwh


class EnergyMeter(ABC):
    """Measures the energy of named phases of work and converts it to CO2 at one grid intensity.

    Callers use :meth:`phase`, :attr:`name`, :attr:`label` and :meth:`close`. An implementation
    provides :attr:`components` (what it covers and how), :meth:`start` and :meth:`stop`; the
    blended meter composes other meters through these same three.

    Example:
        >>> from agentic_compression.carbon.meter_factory import make_energy_meter
        >>> meter = make_energy_meter("FRA")           # doctest: +SKIP
        >>> with meter.phase("evaluation") as box:     # doctest: +SKIP
        ...     run_benchmark()
        >>> box.reading.energy_kwh, box.reading.label  # doctest: +SKIP
        (2.1e-05, 'estimated')
        >>> meter.close()                              # doctest: +SKIP
    """

    def __init__(self, country_iso_code: str, intensity: IntensityReading | None = None) -> None:
        self.country_iso_code = resolve_country(country_iso_code)
        self.intensity = (
            intensity if intensity is not None else country_average(self.country_iso_code)
        )

    @property
    @abstractmethod
    def components(self) -> Mapping[Component, ComponentSource]:
        """The components this meter reports, each with its method and label."""

    @abstractmethod
    def start(self) -> object:
        """Begin measuring; returns a token for :meth:`stop`."""

    @abstractmethod
    def stop(self, token: object) -> ComponentEnergy:
        """Energy since :meth:`start` returned ``token``."""

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release drivers or threads; the meter is not used afterwards."""

    @property
    def name(self) -> str:
        """Each component with its method and label, e.g. ``gpu: nvml ... (measured); cpu+ram: ...``."""
        return describe_components(self.components)

    @property
    def label(self) -> EnergyLabel:
        """``measured`` only when every component is measured."""
        labels = {source.label for source in self.components.values()}
        return "measured" if labels == {"measured"} else "estimated"

    @property
    def intensity_source(self) -> str:
        """Where the grid intensity used for CO2 comes from, with its signal and timestamps."""
        return describe_intensity(self.intensity)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[PhaseBox]:
        """Measure the ``with`` block; ``box.reading`` is set when it ends, even if it raised."""
        box = PhaseBox()
        token = self.start()
        started = time.perf_counter()
        try:
            yield box
        finally:
            energy = self.stop(token)
            box.reading = self.reading(name, time.perf_counter() - started, energy)

    def reading(self, phase: str, duration_s: float, energy: ComponentEnergy) -> EnergyReading:
        """The record of one phase: energy, CO2 at this meter's intensity, meter and label."""
        energy_kwh = energy.total_kwh
        g_per_kwh = self.intensity.g_co2_per_kwh
        return EnergyReading(
            phase=phase,
            duration_s=duration_s,
            energy_kwh=energy_kwh,
            co2_kg=energy_kwh * g_per_kwh / 1000.0,
            cpu_energy_kwh=energy.cpu_kwh,
            gpu_energy_kwh=energy.gpu_kwh,
            ram_energy_kwh=energy.ram_kwh,
            label=self.label,
            meter=self.name,
            country_iso_code=self.country_iso_code,
            carbon_intensity_g_per_kwh=g_per_kwh,
            intensity_source=self.intensity_source,
        )


def resolve_country(country_iso_code: str) -> str:
    """ISO 3166 alpha-3 code for an alpha-2 or alpha-3 code; :class:`UserInputError` if unknown."""
    import pycountry  # deferred: it loads its ISO database when first used

    code = country_iso_code.strip().upper()
    country = pycountry.countries.get(alpha_3=code) or pycountry.countries.get(alpha_2=code)
    if country is None:
        raise UserInputError(
            f"unknown country code {country_iso_code!r}; use an ISO 3166 code such as USA or FRA"
        )
    return str(country.alpha_3)


def country_average(country_iso_code: str) -> IntensityReading:
    """The country's annual average from CodeCarbon's table (the default intensity)."""
    from agentic_compression.carbon.static_table import StaticTableProvider

    try:
        return StaticTableProvider().latest(country_iso_code)
    except ProviderError as exc:
        raise UserInputError(
            f"no grid carbon intensity for {country_iso_code} in CodeCarbon's table ({exc}); "
            f"pass an intensity reading, e.g. default_chain().latest(zone).reading"
        ) from exc


def describe_intensity(reading: IntensityReading) -> str:
    """One line: source, signal, value, zone, the time the figure refers to and when it was fetched."""
    text = (
        f"{reading.source}: {reading.signal} {reading.g_co2_per_kwh:g} gCO2eq/kWh "
        f"for {reading.zone}, observed {reading.observed_at or 'unstated'}, "
        f"fetched {reading.fetched_at}"
    )
    if reading.is_estimated:
        text += ", estimated by the source"
    return f"{text} ({reading.note})" if reading.note else text


def describe_components(components: Mapping[Component, ComponentSource]) -> str:
    """``cpu+ram: <method> (<label>); gpu: ...``: components sharing a method are listed together."""
    groups: dict[ComponentSource, list[str]] = {}
    for component in sorted(components, key=_COMPONENT_ORDER.index):
        groups.setdefault(components[component], []).append(component)
    return "; ".join(
        f"{'+'.join(names)}: {source.method} ({source.label})" for source, names in groups.items()
    )
