"""CPU package and DRAM energy from Linux powercap RAPL counters (measured, machine-wide).

Each RAPL zone under ``/sys/class/powercap`` (``intel-rapl:0``, ``intel-rapl:0:2``, ...; AMD CPUs use
the same driver) has a ``name`` (``package-0``, ``dram``, ``core``, ``uncore``, ``psys``), a cumulative
``energy_uj`` counter and the ``max_energy_range_uj`` at which the counter wraps back to zero. The
meter sums the ``package-*`` zones as ``cpu`` and the ``dram`` zones as ``ram``; ``core`` and
``uncore`` are parts of a package and ``psys`` overlaps all of them, so they are skipped, as are the
``intel-rapl-mmio`` zones that duplicate a package. The counters cover the whole machine (every
process), not just this one: run measurements on an otherwise idle machine.

A counter wraps after ``max_energy_range_uj`` (about 262 kJ: some 40 minutes at 100 W). A single
wrap between two reads is undone; a background thread reads every ``poll_interval_s`` while a
phase is open so that long phases never see two wraps between reads.

Since Linux 5.10 ``energy_uj`` is readable only by root by default; grant access with, e.g.,
``sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import (
    JOULES_PER_KWH,
    Component,
    ComponentEnergy,
    ComponentSource,
    EnergyMeter,
    MeterUnavailableError,
)

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
#: Zones of the RAPL powercap driver; ``intel-rapl-mmio:N`` repeats a package and is left out.
_ZONE_DIR = re.compile(r"^intel-rapl(:\d+)+$")
_MICROJOULES_PER_KWH = JOULES_PER_KWH * 1e6


@dataclass
class _Counter:
    """One zone's counter, accumulated across wraps into a monotonic total."""

    path: Path
    name: str
    range_uj: int
    last_uj: int
    total_uj: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self) -> int:
        """Read the counter, add the increase since the last read (undoing one wrap), return total."""
        with self.lock:
            now = _read_int(self.path / "energy_uj")
            increase = now - self.last_uj
            if increase < 0:
                increase += self.range_uj
            self.total_uj += increase
            self.last_uj = now
            return self.total_uj


class RaplMeter(EnergyMeter):
    """CPU package (and DRAM, where exposed) energy from RAPL counters, labelled measured.

    Example:
        >>> meter = RaplMeter("DEU")                 # doctest: +SKIP
        >>> meter.name                               # doctest: +SKIP
        'cpu: rapl package-0 counter (measured); ram: rapl dram counter (measured)'
        >>> with meter.phase("latency") as box:      # doctest: +SKIP
        ...     run_benchmark()
        >>> box.reading.cpu_energy_kwh               # doctest: +SKIP
    """

    def __init__(
        self,
        country_iso_code: str = "USA",
        *,
        intensity: IntensityReading | None = None,
        root: Path | str = DEFAULT_POWERCAP_ROOT,
        poll_interval_s: float | None = 60.0,
    ) -> None:
        super().__init__(country_iso_code, intensity)
        self.root = Path(root)
        self.poll_interval_s = poll_interval_s
        self._packages, self._drams = _discover(self.root)
        self._open_phases = 0
        self._phases_lock = threading.Lock()
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def components(self) -> Mapping[Component, ComponentSource]:
        packages = ", ".join(counter.name for counter in self._packages)
        found: dict[Component, ComponentSource] = {}
        if self._drams:
            found["cpu"] = ComponentSource(f"rapl {packages} counter", "measured")
            found["ram"] = ComponentSource("rapl dram counter", "measured")
        else:
            found["cpu"] = ComponentSource(
                f"rapl {packages} counter (no dram zone: RAM not counted)", "measured"
            )
        return found

    def start(self) -> object:
        with self._phases_lock:
            self._open_phases += 1
            if self.poll_interval_s is not None and self._poller is None:
                self._stop_polling.clear()
                self._poller = threading.Thread(
                    target=self._poll, args=(self.poll_interval_s,), name="rapl-poll", daemon=True
                )
                self._poller.start()
        return self._totals()

    def stop(self, token: object) -> ComponentEnergy:
        cpu_uj, ram_uj = self._totals()
        start_cpu_uj, start_ram_uj = cast(tuple[int, int], token)
        with self._phases_lock:
            self._open_phases -= 1
            poller = self._poller if self._open_phases == 0 else None
            if poller is not None:
                self._poller = None
                self._stop_polling.set()
        if poller is not None:
            poller.join()
        return ComponentEnergy(
            cpu_kwh=(cpu_uj - start_cpu_uj) / _MICROJOULES_PER_KWH,
            ram_kwh=(ram_uj - start_ram_uj) / _MICROJOULES_PER_KWH,
        )

    def close(self) -> None:
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None

    def _totals(self) -> tuple[int, int]:
        return (
            sum(counter.read() for counter in self._packages),
            sum(counter.read() for counter in self._drams),
        )

    def _poll(self, interval_s: float) -> None:
        while not self._stop_polling.wait(interval_s):
            try:
                self._totals()
            except (OSError, ValueError):  # a failed read is skipped; stop() reads again and raises
                continue


def _discover(root: Path) -> tuple[list[_Counter], list[_Counter]]:
    """The package and DRAM counters under ``root``; :class:`MeterUnavailableError` if none is usable."""
    if not root.is_dir():
        raise MeterUnavailableError(
            f"RAPL: {root} does not exist (no powercap driver on this machine)"
        )
    zones: dict[Path, Path] = {}
    for top in sorted(root.iterdir()):
        # /sys/class/powercap lists every zone as a link; a plain tree nests sub-zones in their package.
        for zone in (top, *sorted(top.iterdir() if top.is_dir() else ())):
            if _ZONE_DIR.match(zone.name) and (zone / "energy_uj").exists():
                zones.setdefault(zone.resolve(), zone)
    packages: list[_Counter] = []
    drams: list[_Counter] = []
    for zone in sorted(zones.values(), key=lambda path: path.name):
        name = (zone / "name").read_text(encoding="utf-8").strip()
        if not (name.startswith("package") or name == "dram"):
            continue  # core/uncore are inside a package; psys overlaps everything
        try:
            counter = _Counter(
                zone, name, _read_int(zone / "max_energy_range_uj"), _read_int(zone / "energy_uj")
            )
        except PermissionError as exc:
            raise MeterUnavailableError(
                f"RAPL: {zone / 'energy_uj'} is not readable by this user (Linux >= 5.10 restricts it "
                f"to root; grant it with: sudo chmod a+r {root}/intel-rapl:*/energy_uj)"
            ) from exc
        (packages if name.startswith("package") else drams).append(counter)
    if not packages:
        raise MeterUnavailableError(f"RAPL: no package-* zone under {root}")
    return packages, drams


def _read_int(path: Path) -> int:
    return int(path.read_text(encoding="utf-8").strip())
