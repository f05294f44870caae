"""AC@k and Avg@k of ranked root causes against ground truth incidents.

An incident is matched to the window overlapping it most; an incident no window
covers counts as a miss for every method. A ranking names services through its
candidates: the service's rank is where it first appears (a service with three
anomalous signals is one guess, not three). AC@k is the share of incidents whose true
root service is among the first k; Avg@5 is the mean of AC@1..AC@5 (RCAEval's metrics).
Candidates with equal scores share a `rank` (competition ranking) and are a tie: a root
tied with g services from position r counts as the expected hit of a random order of
them, min(1, max(0, (k - r + 1) / g)) at k, never as won or lost by name.
"""

from __future__ import annotations

import numpy as np

METHODS = ("method", "robust_deviation", "earliest_onset", "random")
INCIDENT_FIELDS = ("id", "type", "start", "end", "root_service")  # what RCA ground truth must say


def with_ranks(candidates: list[dict], key: str = "score", descending: bool = True) -> list[dict]:
    """The candidates (sorted best first) each with its competition `rank`: 1 + the
    number of candidates strictly better, so equal `key` values share a rank."""
    ranked, rank = [], 1
    for i, c in enumerate(candidates):
        if i and c[key] != candidates[i - 1][key]:
            rank = i + 1
        ranked.append(c | {"rank": rank})
    return ranked


def service_order(candidates: list[dict]) -> list[tuple[str, int]]:
    """(service, tie group) in order of first appearance; services whose first candidates
    share a rank share a group."""
    seen: dict[str, int] = {}
    for i, c in enumerate(candidates):
        seen.setdefault(c["service"], c.get("rank", i + 1))
    return list(seen.items())


def hits(order: list[str] | list[tuple[str, int]], root: str, k_max: int = 5) -> np.ndarray:
    """[AC@1 .. AC@k_max] of one ranking (services, or `service_order`'s pairs; a service
    counts where it first appears): 0/1, or a tie's expected hit (module docstring)."""
    groups: dict[str, int] = {}
    for i, o in enumerate(order):
        service, group = o if isinstance(o, tuple) else (o, i)
        groups.setdefault(service, group)
    if root not in groups:
        return np.zeros(k_max)
    before = sum(1 for g in groups.values() if g < groups[root])
    tied = sum(1 for g in groups.values() if g == groups[root])
    k = np.arange(1, k_max + 1)
    return np.clip((k - before) / tied, 0.0, 1.0)


def match_windows(windows: list, incidents: list[dict]) -> dict[str, str | None]:
    """Incident id → id of the window overlapping it most (None when none does)."""
    matched = {}
    for incident in incidents:
        overlaps = [(w.overlap(incident["start"], incident["end"]), w.id) for w in windows]
        best = max(overlaps, default=(0, None))
        matched[incident["id"]] = best[1] if best[0] > 0 else None
    return matched


def _summary(rows: np.ndarray) -> dict:
    mean = rows.mean(axis=0) if len(rows) else np.zeros(5)
    return {"ac@1": round(float(mean[0]), 4), "ac@3": round(float(mean[2]), 4),
            "avg@5": round(float(mean.mean()), 4), "incidents": len(rows)}


def evaluate_rca(results: dict[str, dict], windows: list, incidents: list[dict]) -> dict:
    """results: window id → {"method": [...], "robust_deviation": [...], "earliest_onset": [...],
    "random": [[service, ...], ...]}. Output as in `<out>/rca/evaluation.json`.

    Incidents without all of INCIDENT_FIELDS (ground truth made for detection, which names
    no root service) are not RCA's to score: they are counted as `skipped_incidents`."""
    given = len(incidents)
    incidents = [i for i in incidents if all(field in i for field in INCIDENT_FIELDS)]
    matched = match_windows(windows, incidents)
    per_incident, table = [], {m: [] for m in METHODS}
    for incident in incidents:
        window = matched[incident["id"]]
        found = results.get(window) if window else None
        row = {"id": incident["id"], "type": incident["type"], "root_service": incident["root_service"], "window": window}
        for method in METHODS:
            if found is None:
                score = np.zeros(5)
            elif method == "random":
                score = np.mean([hits(order, incident["root_service"]) for order in found["random"]], axis=0)
            else:
                score = hits(service_order(found[method]), incident["root_service"])
            table[method].append((incident["type"], score))
            row[method] = {"ac@k": [round(float(v), 4) for v in score]}
        per_incident.append(row)

    def summarise(rows):
        return _summary(np.array([s for _, s in rows]))

    types = sorted({incident["type"] for incident in incidents})
    return {
        "method": summarise(table["method"]),
        "baselines": {m: summarise(table[m]) for m in METHODS[1:]},
        "by_type": {t: {m: summarise([r for r in table[m] if r[0] == t]) for m in METHODS} for t in types},
        "incidents": per_incident,
        "windows": len(windows),
        "windows_without_incident": sum(1 for w in windows if w.id not in set(matched.values())),
        "skipped_incidents": given - len(incidents),
    }
