"""Config changes (OCSF 5019): deployments, config updates and feature flags.

They are few (a handful per service and day), so the whole change log is planned
up front on the driver: incidents need the uid of the change that started them,
and every other source needs to know which version a service runs at a time.
Most changes are benign: a deployment that changes nothing must not be flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from .incidents import Incident
from .load import Load
from .ocsf import CONFIG_STATE_CHANGE, const, envelope, product, struct
from .strings import event_uids
from .topology import API, EDGE, WORKER, Topology

SOURCE_CODE = 4
_KEYS = ("db.pool.max_size", "http.timeout_ms", "retry.max_attempts", "worker.concurrency",
         "log.level", "rate_limit.per_minute")
_FLAGS = ("new_checkout_flow", "recommendations_v2", "fast_search", "async_emails",
          "beta_pricing", "dark_mode")
_BOTS = ("argo-cd", "github-actions", "spinnaker")
_PEOPLE = ("alice.ops", "bob.sre", "carol.dev", "dmitri.sre", "erin.dev", "farah.platform")


@dataclass(frozen=True)
class ChangeLog:
    """Planned changes sorted by time, one entry per field."""

    time: np.ndarray
    service: np.ndarray
    host: np.ndarray
    incident: np.ndarray  # index into the incident list, -1 when benign
    uid: tuple[str, ...]
    kind: tuple[str, ...]
    version: tuple[str | None, ...]
    previous_version: tuple[str | None, ...]
    key: tuple[str | None, ...]
    value: tuple[str | None, ...]
    previous_value: tuple[str | None, ...]
    actor: tuple[str, ...]
    message: tuple[str, ...]
    # running version of each service: deploy times and versions, initial version first
    deploys: tuple[tuple[np.ndarray, tuple[str, ...]], ...]

    def version_at(self, service: np.ndarray, t: np.ndarray) -> pa.StringArray:
        """Version each service runs at each time, for the events it emits."""
        names: list[str] = []
        index = np.zeros(len(service), dtype=np.int64)
        for s in np.unique(service):
            times, versions = self.deploys[s]
            rows = service == s
            index[rows] = len(names) + np.searchsorted(times, t[rows], side="right")
            names.extend(versions)
        return pa.array(names, pa.string()).take(pa.array(index))


def _bump(version: str, minor: bool) -> str:
    major, mi, patch = (int(x) for x in version.split("."))
    return f"{major}.{mi + 1}.0" if minor else f"{major}.{mi}.{patch + 1}"


def plan_changes(
    topology: Topology, incidents: tuple[Incident, ...], load: Load, run_tag: int,
    rng: np.random.Generator,
) -> tuple[ChangeLog, tuple[Incident, ...]]:
    """Benign changes at busy hours plus the changes incidents start or end with."""
    n_minutes = len(load.minutes)
    days = n_minutes / 1440
    busy = load.minutes**3 / (load.minutes**3).sum()  # people ship during the working day
    planned: list[tuple[int, int, str, int]] = []  # (time, service, kind, incident)
    for s in range(topology.size):
        flags = 0.8 if topology.tier[s] in (EDGE, API, WORKER) else 0.0  # no flags in databases
        for kind, rate in (("deployment", 1.2), ("config_update", 1.5), ("feature_flag", flags)):
            for minute in rng.choice(n_minutes, size=rng.poisson(rate * days), p=busy):
                planned.append((load.start_ms + int(minute) * 60_000 + int(rng.integers(0, 60_000)), s, kind, -1))
    for i, inc in enumerate(incidents):
        if inc.kind.root_change == "deployment":
            planned += [(inc.start, inc.root, "deployment", i), (inc.end, inc.root, "rollback", i)]
        elif inc.kind.root_change:
            planned.append((inc.start, inc.root, inc.kind.root_change, i))
    planned.sort()

    current = [f"{1 + rng.integers(0, 3)}.{rng.integers(0, 12)}.{rng.integers(0, 20)}" for _ in range(topology.size)]
    latest, before = list(current), list(current)
    deploys: list[tuple[list[int], list[str]]] = [([], [v]) for v in current]
    settings: dict[tuple[int, str], str] = {}
    rows = []
    for t, s, kind, inc in planned:
        name = topology.names[s]
        version = previous = key = value = old = None
        if kind in ("deployment", "rollback"):
            previous = current[s]
            if kind == "rollback":
                version = before[s]
                message = f"Rolled back {name} to {version} after errors in {previous}"
            else:
                version = latest[s] = _bump(latest[s], minor=inc >= 0 or rng.random() < 0.3)
                message = f"Deployed {name} {version} (was {previous})"
            before[s], current[s] = previous, version
            deploys[s][0].append(t)
            deploys[s][1].append(version)
        elif kind == "config_update":
            if inc >= 0:
                key, value, old = "cache.ttl_seconds", "0", settings.get((s, "cache.ttl_seconds"), "300")
            else:
                key = _KEYS[rng.integers(0, len(_KEYS))]
                old = settings.get((s, key), str(int(rng.integers(1, 20)) * 10))
                value = str(int(rng.integers(1, 20)) * 10)
            settings[(s, key)] = value
            message = f"Set {key}={value} on {name} (was {old})"
        else:
            key = _FLAGS[rng.integers(0, len(_FLAGS))]
            old = settings.get((s, key), "off")
            value = "on" if old == "off" else "off"
            settings[(s, key)] = value
            message = f"Feature flag {key} turned {value} for {name}"
        bots = kind in ("deployment", "rollback") and rng.random() < 0.7
        actor = (_BOTS if bots else _PEOPLE)[rng.integers(0, 3 if bots else len(_PEOPLE))]
        host = topology.host_offsets[s] + rng.integers(0, topology.host_offsets[s + 1] - topology.host_offsets[s])
        rows.append((t, s, int(host), inc, "deployment" if kind == "rollback" else kind,
                     version, previous, key, value, old, actor, message))

    time = np.array([r[0] for r in rows], dtype=np.int64)
    hour = (time - load.start_ms) // 3_600_000
    rank = np.arange(len(rows)) - np.searchsorted(hour, hour)  # rows are sorted by time
    uids = np.empty(len(rows), dtype=object)
    for h in np.unique(hour):
        uids[hour == h] = event_uids(run_tag, SOURCE_CODE, int(h), 0, rank[hour == h]).to_pylist()
    col = lambda i: tuple(r[i] for r in rows)  # noqa: E731
    log = ChangeLog(
        time=time, service=np.array(col(1), dtype=np.int64), host=np.array(col(2), dtype=np.int64),
        incident=np.array(col(3), dtype=np.int64), uid=tuple(uids), kind=col(4), version=col(5),
        previous_version=col(6), key=col(7), value=col(8), previous_value=col(9), actor=col(10),
        message=col(11),
        deploys=tuple((np.array(ts, dtype=np.int64), tuple(vs)) for ts, vs in deploys),
    )
    first_uid = {}
    for uid, inc in zip(uids, log.incident):
        first_uid.setdefault(int(inc), uid)
    incidents = tuple(replace(inc, root_event_uid=first_uid.get(i)) if inc.kind.root_change else inc
                      for i, inc in enumerate(incidents))
    return log, incidents


def change_events(changes: ChangeLog, topology: Topology, run_tag: int, hour: int, start_ms: int):
    """The OCSF table and labels (incident index per row) of one hour's changes."""
    rows = np.flatnonzero((changes.time - start_ms) // 3_600_000 == hour)
    n = len(rows)
    pick = lambda values: pa.array([values[i] for i in rows], pa.string())  # noqa: E731
    service = pa.array(topology.names).take(pa.array(changes.service[rows]))
    columns = envelope(
        (CONFIG_STATE_CHANGE,), np.zeros(n, dtype=np.int64),
        uid=pick(changes.uid),
        product=product(const("platform-audit", n), "Platform", const("2.9.3", n)),
        time=changes.time[rows], activity_id=np.ones(n, dtype=np.int64),
        severity_id=np.ones(n, dtype=np.int64), status_id=np.ones(n, dtype=np.int64),
        message=pick(changes.message),
    )
    columns |= {
        "service": struct(name=service),
        "device": struct(hostname=pa.array(topology.host_names).take(pa.array(changes.host[rows]))),
        "change": struct(type=pick(changes.kind), version=pick(changes.version),
                         previous_version=pick(changes.previous_version), key=pick(changes.key),
                         value=pick(changes.value), previous_value=pick(changes.previous_value)),
        "actor": struct(user=struct(name=pick(changes.actor))),
    }
    return pa.table(columns), changes.incident[rows]
