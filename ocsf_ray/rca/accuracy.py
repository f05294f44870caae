"""AC@k and Avg@k of ranked root causes against ground truth incidents.

An incident is matched to the window overlapping it most; an incident no window
covers counts as a miss for every method. A ranking names services through its
candidates: the service's rank is where it first appears (a service with three
anomalous signals is one guess, not three). AC@k is the share of incidents whose true
root service is among the first k; Avg@5 is the mean of AC@1..AC@5 (RCAEval's metrics).
"""

from __future__ import annotations

import numpy as np

METHODS = ("method", "baro", "earliest_onset", "random")
INCIDENT_FIELDS = ("id", "type", "start", "end", "root_service")  # what RCA ground truth must say


def service_order(candidates: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for c in candidates:
        seen.setdefault(c["service"], None)
    return list(seen)


def hits(order: list[str], root: str, k_max: int = 5) -> np.ndarray:
    """[AC@1 .. AC@k_max] of one ranking as 0/1."""
    rank = order.index(root) if root in order else k_max
    return (np.arange(k_max) >= rank).astype(float)


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
    """results: window id → {"method": [...], "baro": [...], "earliest_onset": [...],
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
