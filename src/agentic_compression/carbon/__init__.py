"""Carbon telemetry: grid-intensity providers (cached, with fallbacks) and energy meters.

Nothing here touches the network or builds a client at import; providers read their credentials from
the environment when constructed.

Example:
    >>> from agentic_compression.carbon import default_chain
    >>> result = default_chain().latest("FR")  # doctest: +SKIP
    >>> result.reading.source, result.reading.observed_at, result.failures  # doctest: +SKIP
"""

from agentic_compression.carbon.cache import DEFAULT_TTL_S, ReadingCache, ReadingKind
from agentic_compression.carbon.chain import (
    ChainForecast,
    ChainResult,
    FailedAttempt,
    FallbackChain,
    default_chain,
)
from agentic_compression.carbon.electricitymaps import ElectricityMapsProvider
from agentic_compression.carbon.http import HttpStatusError, RetryPolicy
from agentic_compression.carbon.intensity import (
    CarbonIntensityProvider,
    IntensityReading,
    IntensitySignal,
    ProviderError,
)
from agentic_compression.carbon.meter import EnergyMeter, MeterUnavailableError, PhaseBox
from agentic_compression.carbon.meter_factory import METER_PREFERENCES, make_energy_meter
from agentic_compression.carbon.static_table import StaticTableProvider
from agentic_compression.carbon.watttime import WattTimeProvider

__all__ = [
    "DEFAULT_TTL_S",
    "METER_PREFERENCES",
    "CarbonIntensityProvider",
    "ChainForecast",
    "ChainResult",
    "ElectricityMapsProvider",
    "EnergyMeter",
    "FailedAttempt",
    "FallbackChain",
    "HttpStatusError",
    "IntensityReading",
    "IntensitySignal",
    "MeterUnavailableError",
    "PhaseBox",
    "ProviderError",
    "ReadingCache",
    "ReadingKind",
    "RetryPolicy",
    "StaticTableProvider",
    "WattTimeProvider",
    "default_chain",
    "make_energy_meter",
]
