"""NVIDIA GPU energy through NVML (``nvidia-ml-py``), labelled measured.

Volta and newer GPUs keep a cumulative energy counter (``nvmlDeviceGetTotalEnergyConsumption``, in
millijoules since the driver loaded): a phase's energy is the counter's increase. Older GPUs have only
an instantaneous power sensor (``nvmlDeviceGetPowerUsage``, milliwatts): a thread samples it every
``sample_interval_s`` and integrates with the trapezoid rule. The meter's name says which method runs.
Both count the whole device, including any other process that uses the same GPU.

Without an NVIDIA driver ``nvmlInit()`` raises; the meter then raises
:class:`~agentic_compression.carbon.meter.MeterUnavailableError` with the reason.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, cast

from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import (
    JOULES_PER_KWH,
    Component,
    ComponentEnergy,
    ComponentSource,
    EnergyMeter,
    MeterUnavailableError,
)

NvmlMethod = Literal["counter", "sampling"]
_MILLIJOULES_PER_KWH = JOULES_PER_KWH * 1000


class NvmlMeter(EnergyMeter):
    """Energy of NVIDIA GPUs (all visible to NVML, or ``device_indices``) per phase.

    Example:
        >>> meter = NvmlMeter("USA")                 # doctest: +SKIP
        >>> meter.name                               # doctest: +SKIP
        'gpu: nvml total-energy counter (1 x NVIDIA H100 80GB HBM3, whole device) (measured)'
        >>> with meter.phase("decode") as box:       # doctest: +SKIP
        ...     generate()
        >>> box.reading.gpu_energy_kwh               # doctest: +SKIP
        >>> meter.close()                            # doctest: +SKIP
    """

    def __init__(
        self,
        country_iso_code: str = "USA",
        *,
        intensity: IntensityReading | None = None,
        device_indices: Sequence[int] | None = None,
        sample_interval_s: float = 0.1,
    ) -> None:
        super().__init__(country_iso_code, intensity)
        self.sample_interval_s = sample_interval_s
        self._initialised = False
        self._nvml = _import_pynvml()
        try:
            self._nvml.nvmlInit()
        except (self._nvml.NVMLError, OSError) as exc:
            raise MeterUnavailableError(
                f"NVML: cannot initialise ({exc}); no NVIDIA driver on this machine"
            ) from exc
        self._initialised = True
        try:
            indices = (
                range(self._nvml.nvmlDeviceGetCount()) if device_indices is None else device_indices
            )
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            if not self._handles:
                raise MeterUnavailableError("NVML: no NVIDIA GPU found")
            self._devices = _describe_devices(
                [_text(self._nvml.nvmlDeviceGetName(h)) for h in self._handles]
            )
            self.method: NvmlMethod = (
                "counter" if all(map(self._has_counter, self._handles)) else "sampling"
            )
            if self.method == "sampling":
                self._power_w()  # fails here, not in a phase, if there is no power sensor either
        except self._nvml.NVMLError as exc:
            self.close()
            raise MeterUnavailableError(f"NVML: cannot read the GPUs ({exc})") from exc
        except MeterUnavailableError:
            self.close()
            raise

    @property
    def components(self) -> Mapping[Component, ComponentSource]:
        if self.method == "counter":
            method = f"nvml total-energy counter ({self._devices})"
        else:
            interval_ms = self.sample_interval_s * 1000
            method = f"nvml power sampled every {interval_ms:g} ms, integrated ({self._devices})"
        return {"gpu": ComponentSource(method, "measured")}

    def start(self) -> object:
        if self.method == "counter":
            return self._energy_mj()
        return _PowerIntegrator(self._power_w, self.sample_interval_s)

    def stop(self, token: object) -> ComponentEnergy:
        if self.method == "counter":
            start_mj = cast(list[int], token)
            used_mj = sum(
                end - begin for end, begin in zip(self._energy_mj(), start_mj, strict=True)
            )
            return ComponentEnergy(gpu_kwh=used_mj / _MILLIJOULES_PER_KWH)
        joules = cast(_PowerIntegrator, token).finish()
        return ComponentEnergy(gpu_kwh=joules / JOULES_PER_KWH)

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            # A driver that went away while we held it leaves nothing to release.
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()

    def _has_counter(self, handle: Any) -> bool:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self._nvml.NVMLError:  # NOT_SUPPORTED before Volta
            return False
        return True

    def _energy_mj(self) -> list[int]:
        return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]

    def _power_w(self) -> float:
        return sum(float(self._nvml.nvmlDeviceGetPowerUsage(h)) for h in self._handles) / 1000.0


class _PowerIntegrator:
    """Samples ``read_power_w`` on a thread from construction until :meth:`finish`; trapezoid rule."""

    def __init__(self, read_power_w: Callable[[], float], interval_s: float) -> None:
        self._read = read_power_w
        self._joules = 0.0
        self._error: Exception | None = None
        self._last = (time.perf_counter(), read_power_w())
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="nvml-power", daemon=True
        )
        self._thread.start()

    def _sample(self) -> None:
        now, watts = time.perf_counter(), self._read()
        last_time, last_watts = self._last
        self._joules += (watts + last_watts) / 2 * (now - last_time)
        self._last = (now, watts)

    def _run(self, interval_s: float) -> None:
        while not self._done.wait(interval_s):
            try:
                self._sample()
            except Exception as exc:  # reported by finish(), in the caller's thread
                self._error = exc
                return

    def finish(self) -> float:
        """Stop sampling; the energy in joules since construction."""
        self._done.set()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"NVML power sampling failed: {self._error}") from self._error
        self._sample()
        return self._joules


def _import_pynvml() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the old `pynvml` shim warns that it is deprecated
            import pynvml
    except ImportError as exc:
        raise MeterUnavailableError(
            "NVML: nvidia-ml-py is not installed: pip install 'agentic-compression[gpu]'"
        ) from exc
    return pynvml


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _describe_devices(names: Sequence[str]) -> str:
    counts = ", ".join(f"{n} x {name}" for name, n in Counter(names).items())
    return f"{counts}, whole device"
