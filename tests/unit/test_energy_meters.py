"""Energy meters: RAPL on a fake powercap tree, NVML through a fake driver module, blends, the factory, CO2.

The hardware is the boundary: RAPL is a directory of counter files this test writes, NVML a fake
``pynvml`` module put in ``sys.modules``. Everything above them is the real code.
"""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentic_compression.carbon import rapl as rapl_module
from agentic_compression.carbon.blended import BlendedMeter
from agentic_compression.carbon.energy_meter import CodeCarbonMeter
from agentic_compression.carbon.intensity import IntensityReading
from agentic_compression.carbon.meter import EnergyMeter, MeterUnavailableError
from agentic_compression.carbon.meter_factory import make_energy_meter
from agentic_compression.carbon.nvml import NvmlMeter
from agentic_compression.carbon.rapl import RaplMeter
from agentic_compression.carbon.zeus import ZeusMeter
from agentic_compression.errors import UserInputError

UJ_PER_KWH = 3.6e12
MJ_PER_KWH = 3.6e9
RANGE_UJ = 262_143_328_850  # a real max_energy_range_uj


# --- RAPL: a powercap tree whose counters the test moves ---------------------------------------


class FakePowercap:
    """Zones laid out as /sys/class/powercap lays them out (sub-zones nested in their package)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def zone(self, path: str, name: str, energy_uj: int, range_uj: int = RANGE_UJ) -> None:
        zone = self.root / path
        zone.mkdir(parents=True)
        (zone / "name").write_text(name + "\n")
        (zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
        self.set(path, energy_uj)

    def set(self, path: str, energy_uj: int) -> None:
        # Atomic, as a sysfs read is: the meter's polling thread may read at any moment.
        staged = self.root / path / "energy_uj.new"
        staged.write_text(f"{energy_uj}\n")
        os.replace(staged, self.root / path / "energy_uj")


@pytest.fixture()
def powercap(tmp_path: Path) -> FakePowercap:
    tree = FakePowercap(tmp_path / "powercap")
    tree.zone("intel-rapl:0", "package-0", 1_000_000)
    tree.zone("intel-rapl:0/intel-rapl:0:0", "core", 500_000)
    tree.zone("intel-rapl:0/intel-rapl:0:2", "dram", 2_000_000)
    tree.zone("intel-rapl:1", "package-1", RANGE_UJ - 1_000_000)  # about to wrap
    tree.zone("intel-rapl-mmio:0", "package-0", 7_000_000)  # a duplicate of package-0
    tree.zone("intel-rapl:2", "psys", 9_000_000)  # overlaps everything
    return tree


def test_rapl_sums_packages_and_dram_and_undoes_a_wrap(powercap: FakePowercap) -> None:
    meter = RaplMeter("DEU", root=powercap.root, poll_interval_s=None)
    with meter.phase("work") as box:
        powercap.set("intel-rapl:0", 1_000_000 + 3_600_000_000)  # 3600 J
        powercap.set("intel-rapl:1", 2_600_000)  # wrapped: 1 J before the wrap + 2.6 J after
        powercap.set("intel-rapl:0/intel-rapl:0:2", 2_000_000 + 360_000_000)  # 360 J
        for skipped in ("intel-rapl:0/intel-rapl:0:0", "intel-rapl-mmio:0", "intel-rapl:2"):
            powercap.set(skipped, 10**11)  # must not count
    reading = box.reading
    assert reading is not None
    assert reading.cpu_energy_kwh == pytest.approx(
        (3_600_000_000 + 3_600_000) / UJ_PER_KWH, rel=1e-12
    )
    assert reading.ram_energy_kwh == pytest.approx(360_000_000 / UJ_PER_KWH, rel=1e-12)
    assert reading.gpu_energy_kwh == 0.0
    assert reading.energy_kwh == pytest.approx(reading.cpu_energy_kwh + reading.ram_energy_kwh)
    assert reading.label == "measured"
    assert (
        reading.meter
        == "cpu: rapl package-0, package-1 counter (measured); ram: rapl dram counter (measured)"
    )


def test_rapl_without_dram_says_ram_is_not_counted(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.zone("intel-rapl:0", "package-0", 0)
    meter = RaplMeter("DEU", root=tmp_path, poll_interval_s=0.01)
    assert meter.label == "measured" and set(meter.components) == {"cpu"}
    assert "no dram zone: RAM not counted" in meter.name


def test_rapl_polling_catches_several_wraps_within_one_phase(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.zone("intel-rapl:0", "package-0", 900, range_uj=1000)
    meter = RaplMeter("DEU", root=tmp_path, poll_interval_s=0.01)
    with meter.phase("long") as box:
        for value in (100, 800):  # +200 (wrap), +700
            tree.set("intel-rapl:0", value)
            time.sleep(0.2)  # several polls
        tree.set("intel-rapl:0", 50)  # +250 (wrap)
    assert box.reading is not None
    # Reading only at start and stop would see one wrap: 50 + 1000 - 900 = 150 uJ.
    assert box.reading.cpu_energy_kwh * UJ_PER_KWH == pytest.approx(1150)
    meter.close()


def test_rapl_unavailable_paths(
    tmp_path: Path, powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(MeterUnavailableError, match="does not exist"):
        RaplMeter("DEU", root=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterUnavailableError, match="no package"):
        RaplMeter("DEU", root=tmp_path / "empty")

    real_read = rapl_module._read_int

    def root_only(path: Path) -> int:  # what Linux >= 5.10 does for a non-root user
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(rapl_module, "_read_int", root_only)
    with pytest.raises(MeterUnavailableError, match=r"not readable by this user.*chmod"):
        RaplMeter("DEU", root=powercap.root)


# --- NVML: a fake driver module ----------------------------------------------------------------


class FakeNvml(types.ModuleType):
    """The part of ``pynvml`` the meter uses, with counters and power the test sets."""

    class NVMLError(Exception):
        pass

    def __init__(
        self, names: tuple[str, ...], *, driver: bool = True, counter: bool = True
    ) -> None:
        super().__init__("pynvml")
        self.names = names
        self.driver = driver
        self.counter = counter
        self.energy_mj = [0] * len(names)
        self.power_mw = [0] * len(names)
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if not self.driver:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.names)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return self.names[handle].encode()  # older bindings return bytes

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        if not self.counter:
            raise self.NVMLError("Not Supported")
        return self.energy_mj[handle]

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self.power_mw[handle]


@pytest.fixture(scope="module", autouse=True)
def codecarbon_loaded_first() -> None:
    """Import CodeCarbon (and its own ``import pynvml``) before any test swaps in the fake driver."""
    CodeCarbonMeter("FRA").components  # noqa: B018 - detects the hardware once


@pytest.fixture()
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    fake = FakeNvml(("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    yield fake


def test_nvml_energy_counter(fake_nvml: FakeNvml) -> None:
    fake_nvml.energy_mj = [1_000_000, 5_000_000]
    meter = NvmlMeter("USA")
    with meter.phase("decode") as box:
        fake_nvml.energy_mj = [1_000_000 + 3_600_000, 5_000_000 + 7_200_000]
    assert box.reading is not None
    assert box.reading.gpu_energy_kwh == pytest.approx(10_800_000 / MJ_PER_KWH, rel=1e-12)
    assert box.reading.cpu_energy_kwh == box.reading.ram_energy_kwh == 0.0
    assert box.reading.label == "measured"
    assert box.reading.meter == (
        "gpu: nvml total-energy counter (2 x NVIDIA H100 80GB HBM3, whole device) (measured)"
    )
    meter.close()
    meter.close()
    assert fake_nvml.shutdowns == 1


def test_nvml_power_sampling_integrates_over_time(fake_nvml: FakeNvml) -> None:
    fake_nvml.counter = False  # a pre-Volta GPU
    fake_nvml.power_mw = [100_000, 100_000]
    meter = NvmlMeter("USA", sample_interval_s=0.005)
    assert meter.method == "sampling" and "power sampled every 5 ms, integrated" in meter.name
    with meter.phase("decode") as box:
        time.sleep(0.2)
        fake_nvml.power_mw = [500_000, 500_000]
        time.sleep(0.2)
        fake_nvml.power_mw = [100_000, 100_000]
        time.sleep(0.2)
    assert box.reading is not None and box.reading.label == "measured"
    joules = box.reading.gpu_energy_kwh * 3.6e6
    # 2 GPUs x (100 W x 0.4 s + 500 W x 0.2 s) = 280 J; sampling only the ends would give 120 J.
    assert joules == pytest.approx(280, rel=0.1)


def test_nvml_without_a_driver_is_unavailable(fake_nvml: FakeNvml) -> None:
    fake_nvml.driver = False
    with pytest.raises(MeterUnavailableError, match="no NVIDIA driver"):
        NvmlMeter("USA")


def test_real_nvml_on_a_machine_without_a_driver() -> None:
    try:
        NvmlMeter("USA").close()
    except MeterUnavailableError as exc:
        assert "NVML" in str(exc)


# --- Blends, CO2 and the factory ---------------------------------------------------------------


def test_blend_of_measured_meters_is_measured_and_sums_components(
    fake_nvml: FakeNvml, powercap: FakePowercap
) -> None:
    meter = BlendedMeter(
        NvmlMeter("FRA"), RaplMeter("FRA", root=powercap.root, poll_interval_s=None), "FRA"
    )
    with meter.phase("latency") as box:
        fake_nvml.energy_mj = [3_600_000, 0]
        powercap.set("intel-rapl:0", 1_000_000 + 360_000_000)
        powercap.set("intel-rapl:0/intel-rapl:0:2", 2_000_000 + 36_000_000)
        powercap.set("intel-rapl:1", RANGE_UJ - 1_000_000)
    reading = box.reading
    assert reading is not None and reading.label == "measured"
    assert reading.gpu_energy_kwh == pytest.approx(0.001, rel=1e-12)
    assert reading.cpu_energy_kwh == pytest.approx(0.0001, rel=1e-12)
    assert reading.ram_energy_kwh == pytest.approx(0.00001, rel=1e-12)
    assert reading.energy_kwh == pytest.approx(0.00111, rel=1e-12)
    assert reading.meter == (
        "gpu: nvml total-energy counter (2 x NVIDIA H100 80GB HBM3, whole device) (measured); "
        "cpu: rapl package-0, package-1 counter (measured); ram: rapl dram counter (measured)"
    )
    meter.close()
    assert fake_nvml.shutdowns == 1


def test_blend_with_an_estimate_is_estimated_and_labels_each_component(fake_nvml: FakeNvml) -> None:
    meter = BlendedMeter(NvmlMeter("FRA"), CodeCarbonMeter("FRA"), "FRA")
    with meter.phase("latency") as box:
        fake_nvml.energy_mj = [7_200_000, 0]
        sum(i * i for i in range(300_000))
    reading = box.reading
    assert reading is not None and reading.label == "estimated"
    assert reading.gpu_energy_kwh == pytest.approx(0.002, rel=1e-12)  # NVML's, not CodeCarbon's
    assert reading.cpu_energy_kwh > 0 and reading.ram_energy_kwh > 0
    assert reading.energy_kwh == pytest.approx(
        reading.cpu_energy_kwh + reading.gpu_energy_kwh + reading.ram_energy_kwh, rel=1e-12
    )
    gpu_part, cpu_part, ram_part = reading.meter.split("; ")
    assert gpu_part.startswith("gpu: nvml total-energy counter") and gpu_part.endswith("(measured)")
    assert cpu_part.startswith("cpu: codecarbon") and cpu_part.endswith("(estimated)")
    assert ram_part.startswith("ram: codecarbon") and ram_part.endswith("(estimated)")


def test_co2_uses_the_given_intensity_exactly(fake_nvml: FakeNvml) -> None:
    intensity = IntensityReading(
        zone="CAISO_NORTH", g_co2_per_kwh=412.5, signal="marginal", source="watttime",
        observed_at="2024-03-06T19:00:00+00:00", fetched_at="2024-03-06T19:02:00+00:00",
        is_estimated=True,
    )  # fmt: skip
    meter = NvmlMeter("USA", intensity=intensity)
    with meter.phase("decode") as box:
        fake_nvml.energy_mj = [3_600_000 * 8, 0]  # 0.008 kWh
    reading = box.reading
    assert reading is not None
    assert reading.co2_kg == pytest.approx(0.008 * 412.5 / 1000, rel=1e-12)  # 3.3 g
    assert reading.carbon_intensity_g_per_kwh == 412.5 and reading.country_iso_code == "USA"
    assert reading.intensity_source == (
        "watttime: marginal 412.5 gCO2eq/kWh for CAISO_NORTH, observed 2024-03-06T19:00:00+00:00, "
        "fetched 2024-03-06T19:02:00+00:00, estimated by the source"
    )


def test_co2_defaults_to_the_country_average_of_codecarbons_table() -> None:
    meter = CodeCarbonMeter("FR")
    assert meter.country_iso_code == "FRA"
    with meter.phase("work") as box:
        sum(i * i for i in range(300_000))
    reading = box.reading
    assert reading is not None and reading.energy_kwh > 0
    assert reading.carbon_intensity_g_per_kwh == 56.039  # France 2023 in CodeCarbon 3.3.2
    assert reading.co2_kg == pytest.approx(reading.energy_kwh * 56.039 / 1000, rel=1e-12)
    assert reading.intensity_source.startswith("codecarbon-static:")
    assert "average" in reading.intensity_source and "observed 2023" in reading.intensity_source


def test_factory_choice_on_this_machine() -> None:
    def available(build: type[EnergyMeter]) -> bool:
        try:
            build("FRA").close()
        except MeterUnavailableError:
            return False
        return True

    meter = make_energy_meter("FRA")
    if available(NvmlMeter):
        assert isinstance(meter, BlendedMeter)
    elif available(RaplMeter):
        assert isinstance(meter, RaplMeter) and meter.label == "measured"
    else:  # the usual CI machine and a cloud VM: no GPU, no readable RAPL
        assert isinstance(meter, CodeCarbonMeter) and meter.label == "estimated"
        assert meter.name.startswith("cpu: codecarbon")
    meter.close()


def test_factory_prefers_hardware_counters(fake_nvml: FakeNvml, powercap: FakePowercap) -> None:
    both = make_energy_meter("FRA", powercap_root=powercap.root)
    assert isinstance(both, BlendedMeter) and isinstance(both.cpu_meter, RaplMeter)
    assert both.label == "measured"
    fake_nvml.driver = False
    cpu_only = make_energy_meter("FRA", powercap_root=powercap.root)
    assert isinstance(cpu_only, RaplMeter)
    fake_nvml.driver = True
    gpu_only = make_energy_meter("FRA", powercap_root=powercap.root / "missing")
    assert isinstance(gpu_only, BlendedMeter) and isinstance(gpu_only.cpu_meter, CodeCarbonMeter)


def test_factory_explicit_choices_fail_loudly(fake_nvml: FakeNvml, tmp_path: Path) -> None:
    fake_nvml.driver = False
    with pytest.raises(
        UserInputError, match="'nvml' is not available here: NVML: cannot initialise"
    ):
        make_energy_meter("FRA", prefer="nvml")
    with pytest.raises(UserInputError, match="'rapl' is not available here"):
        make_energy_meter("FRA", prefer="rapl", powercap_root=tmp_path / "missing")
    with pytest.raises(UserInputError, match="unknown energy meter 'joulemeter'"):
        make_energy_meter("FRA", prefer="joulemeter")
    with pytest.raises(UserInputError, match="unknown country code 'XXX'"):
        make_energy_meter("XXX")
    assert isinstance(make_energy_meter("FRA", prefer="codecarbon"), CodeCarbonMeter)


def test_zeus_not_installed_says_how_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zeus", None)  # `import zeus` raises ImportError
    with pytest.raises(
        MeterUnavailableError, match=r"Zeus is not installed: pip install zeus.*Ray"
    ):
        ZeusMeter("USA")
    with pytest.raises(UserInputError, match="'zeus' is not available here"):
        make_energy_meter("USA", prefer="zeus")


def test_zeus_windows_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeZeusMonitor:  # zeus.monitor.ZeusMonitor: one window per key, energies in joules
        def __init__(self) -> None:
            self.gpu_indices = [0]
            self.cpu_indices = [0]

        def begin_window(self, key: str) -> None:
            self.key = key

        def end_window(self, key: str) -> types.SimpleNamespace:
            assert key == self.key
            return types.SimpleNamespace(
                time=1.0, gpu_energy={0: 3600.0}, cpu_energy={0: 360.0}, dram_energy=None
            )

    zeus = types.ModuleType("zeus")
    monitor = types.ModuleType("zeus.monitor")
    monitor.ZeusMonitor = FakeZeusMonitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeus", zeus)
    monkeypatch.setitem(sys.modules, "zeus.monitor", monitor)
    meter = ZeusMeter("USA")
    with meter.phase("decode") as box:
        pass
    assert box.reading is not None and box.reading.label == "measured"
    assert box.reading.gpu_energy_kwh == pytest.approx(0.001, rel=1e-12)
    assert box.reading.cpu_energy_kwh == pytest.approx(0.0001, rel=1e-12)
    assert box.reading.ram_energy_kwh == 0.0
