"""RQ4, resource-constrained environments: the candidate each deployment profile gets, by a search
under that profile's limits, against the older codebase's rule.

Profiles (memory GB, power W, grid kgCO2/kWh, latency ms per generated token), from the paper:
edge device (4, 10, 0.2, 50), mobile (8, 5, 0.3, 100), cloud server (128, 400, 0.5, 20),
carbon-intensive data centre (256, 800, 0.8, 30).

Per profile, the product's planner searches the joint (recipe x runtime) space with the profile's
memory and latency limits as constraints and the accuracy threshold (RQ1's rule: ``--accuracy-
threshold`` or retention x the baseline's accuracy). The chosen candidate is the one, among the
measured candidates meeting every limit (memory, latency, power, accuracy), with the least daily
CO2; if none meets them all, none is chosen and the closest (fewest limits broken, then least CO2)
is shown as infeasible. The baseline is the older rule's ``(bits, sparsity)`` in PyTorch.

What is measured and what is not: every candidate is measured on this machine. Power is the mean
power over the decode loop (measured energy per token / decode time per token; CodeCarbon's label
says whether the energy was sensed or estimated). Daily CO2 = measured energy per 1k tokens x the
stated request volume x the profile's grid intensity. The profiles' own hardware (an edge board, a
phone, a cloud GPU server) is not this machine: the figures are this machine's, labelled so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from agentic_compression.experiments.arms import fixed_arm, run_arm
from agentic_compression.experiments.session import Experiment, grid_recipe
from agentic_compression.planning.base import PlanningGoal


@dataclass(frozen=True)
class Profile:
    name: str
    memory_gb: float
    power_w: float
    intensity_kg_per_kwh: float
    latency_ms: float
    hardware: str


PROFILES = (
    Profile("edge", 4, 10, 0.2, 50, "an edge board (ARM SoC, ~10 W)"),
    Profile("mobile", 8, 5, 0.3, 100, "a phone SoC (~5 W)"),
    Profile("cloud", 128, 400, 0.5, 20, "a cloud GPU server"),
    Profile("datacentre", 256, 800, 0.8, 30, "a carbon-intensive data-centre GPU node"),
)


def older_rule(profile: Profile) -> tuple[int, float]:
    """The older codebase's RQ4 rule: ``(bits, sparsity)`` from the profile's limits.

    >>> [older_rule(p) for p in PROFILES]
    [(4, 0.7), (8, 0.5), (8, 0.4), (8, 0.4)]
    """
    if profile.memory_gb <= 4:
        bits, sparsity = 4, 0.7
    elif profile.memory_gb <= 8:
        bits, sparsity = 8, 0.5
    elif profile.memory_gb <= 32:
        bits, sparsity = 8, 0.3
    elif profile.intensity_kg_per_kwh > 0.6:
        bits, sparsity = 8, 0.4
    else:
        bits, sparsity = 16, 0.2
    if profile.latency_ms < 30:
        bits, sparsity = min(bits, 8), max(sparsity, 0.4)
    return bits, sparsity


def run(experiment: Experiment) -> dict[str, Any]:
    log = experiment.log
    options = experiment.options
    threshold, how = experiment.threshold()
    seed = options.seeds[0]
    profiles: dict[str, Any] = {}
    for profile in PROFILES:
        goal = PlanningGoal(
            objective=f"{profile.name} deployment: low carbon within the limits",
            accuracy_threshold=threshold,
            max_memory_bytes=profile.memory_gb * 1e9,
            max_latency_ms=profile.latency_ms,
        )
        planner = experiment.make_planner(seed, experiment.space)
        trials = run_arm(planner, log, goal, options.search_trials)
        bits, sparsity = older_rule(profile)
        rule_recipe = grid_recipe(bits, sparsity)
        assert rule_recipe is not None
        (rule,) = fixed_arm([rule_recipe], log)
        profiles[profile.name] = {
            "profile": asdict(profile),
            "trials": [m.to_dict() for m in trials],
            "rule": {"bits": bits, "sparsity": sparsity, "trial": rule.to_dict()},
        }
    return {
        "rq": "rq4",
        "title": "RQ4: deployment profiles, searched under their limits vs the older rule",
        "options": options.to_dict(),
        "provenance": experiment.provenance,
        "accuracy_threshold": threshold,
        "threshold_rule": how,
        "seed": seed,
        "profiles": profiles,
    }


def assess(
    trial: dict[str, Any], profile: dict[str, Any], threshold: float, tokens_per_day: float
) -> dict[str, Any]:
    """Limits met or broken, and daily energy and CO2 of one measured candidate under a profile."""
    if trial["status"] != "ok" or not trial["objectives"]:
        return {"ok": False, "error": trial.get("error")}
    o = trial["objectives"]
    checks = {
        "memory": o["memory_bytes"] <= profile["memory_gb"] * 1e9,
        "latency": o["latency_ms"] <= profile["latency_ms"],
        "power": trial["power_w"] is not None and trial["power_w"] <= profile["power_w"],
        "accuracy": o["accuracy"] >= threshold,
    }
    kwh_per_day = o["energy_kwh_per_1k_tokens"] * tokens_per_day / 1000
    return {
        "ok": True,
        "checks": checks,
        "broken": [k for k, met in checks.items() if not met],
        "kwh_per_day": kwh_per_day,
        "co2_kg_per_day": kwh_per_day * profile["intensity_kg_per_kwh"],
    }


def summary(data: dict[str, Any]) -> dict[str, Any]:
    options = data["options"]
    tokens_per_day = options["requests_per_day"] * options["tokens_per_request"]
    out: dict[str, Any] = {}
    for name in _order(data):
        entry = data["profiles"][name]
        profile = entry["profile"]
        assessed = [
            (t, assess(t, profile, data["accuracy_threshold"], tokens_per_day))
            for t in entry["trials"]
        ]
        measured = [(t, a) for t, a in assessed if a["ok"]]
        feasible = [(t, a) for t, a in measured if not a["broken"]]
        ranked = sorted(
            feasible or measured,
            key=lambda ta: (len(ta[1]["broken"]), ta[1]["co2_kg_per_day"], ta[0]["label"]),
        )
        choice = ranked[0] if ranked else None
        rule = entry["rule"]["trial"]
        out[name] = {
            "chosen": None if choice is None else {"trial": choice[0], **choice[1]},
            "chosen_feasible": bool(feasible),
            "feasible_count": len(feasible),
            "measured_count": len(measured),
            "rule": {
                "trial": rule,
                **assess(rule, profile, data["accuracy_threshold"], tokens_per_day),
            },
            "rule_bits_sparsity": (entry["rule"]["bits"], entry["rule"]["sparsity"]),
        }
    return out


def _order(data: dict[str, Any]) -> list[str]:
    """Profile names in the paper's order (JSON objects are stored with sorted keys)."""
    known = [p.name for p in PROFILES if p.name in data["profiles"]]
    return known + sorted(set(data["profiles"]) - set(known))


def _limits(a: dict[str, Any]) -> str:
    if not a.get("ok"):
        return "failed"
    return ", ".join(f"{k} {'ok' if met else 'BROKEN'}" for k, met in a["checks"].items())


def _candidate(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    t = entry["trial"]
    if not entry.get("ok"):
        return f"{t['label']} (failed)"
    o = t["objectives"]
    power = "-" if t["power_w"] is None else f"{t['power_w']:.1f} W"
    return (
        f"{t['label']}: acc {o['accuracy']:.4f}, {o['latency_ms']:.1f} ms/tok, "
        f"{o['memory_bytes'] / 1e6:.0f} MB, {power}"
    )


def render(data: dict[str, Any]) -> str:
    stats = summary(data)
    options = data["options"]
    lines = [
        f"# {data['title']}",
        "",
        f"Model {options['model']}, runtimes {', '.join(options['runtimes'])}, fidelity "
        f"{options['fidelity']}; accuracy threshold {data['accuracy_threshold']:.4f} "
        f"({data['threshold_rule']}); search: planner {options['planner']}, seed {data['seed']}, "
        f"{options['search_trials']} trials per profile. Daily figures at "
        f"{options['requests_per_day']:,} requests x {options['tokens_per_request']} generated "
        f"tokens. Every figure is measured on this machine (energy: {_energy_labels(data)}); "
        "power is the mean over the timed generations; daily CO2 uses the profile's grid intensity.",
        "",
        "| profile | limits (GB, W, kg/kWh, ms) | chosen by search | limits met | kWh/day | "
        "kg CO2/day | older rule | rule's limits | rule kg CO2/day |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in stats.items():
        p = data["profiles"][name]["profile"]
        chosen = s["chosen"]
        chosen_text = _candidate(chosen)
        if chosen is not None and not s["chosen_feasible"]:
            chosen_text = f"none feasible; closest: {chosen_text}"
        rule = s["rule"]
        bits, sparsity = s["rule_bits_sparsity"]
        lines.append(
            f"| {name} | {p['memory_gb']:g}, {p['power_w']:g}, {p['intensity_kg_per_kwh']:g}, "
            f"{p['latency_ms']:g} | {chosen_text} | {_limits(chosen) if chosen else '-'} | "
            f"{_num(chosen, 'kwh_per_day')} | {_num(chosen, 'co2_kg_per_day')} | "
            f"({bits}, {sparsity:g}) {_candidate(rule)} | {_limits(rule)} | "
            f"{_num(rule, 'co2_kg_per_day')} |"
        )
    lines += [
        "",
        "Hardware of each profile, not this machine's (figures above are this machine's):",
    ]
    for name in _order(data):
        entry, s = data["profiles"][name], stats[name]
        lines.append(
            f"- {name}: {entry['profile']['hardware']}; {s['feasible_count']} of "
            f"{s['measured_count']} measured candidates met every limit here."
        )
    return "\n".join([*lines, ""])


def _energy_labels(data: dict[str, Any]) -> str:
    """How the energy behind the figures was obtained, as the meter labelled it."""
    trials = [t for e in data["profiles"].values() for t in [*e["trials"], e["rule"]["trial"]]]
    labels = sorted({t["energy_label"] for t in trials if t.get("energy_label")})
    return ", ".join(labels) or "no measurement"


def _num(entry: dict[str, Any] | None, key: str) -> str:
    if entry is None or not entry.get("ok"):
        return "-"
    return f"{entry[key]:.4g}"
