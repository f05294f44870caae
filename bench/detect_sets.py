"""Labelled data sets of bench/detect.py, each written as OCSF files with its ground truth.

Every set is a folder `<root>/<name>/` with `events/` (the OCSF input of `ocsf-ray run`) and
`ground_truth/labels.parquet` (metadata_uid, is_anomaly, incident_id) + `incidents.json`
([{"id", "type"}]), the layout `ocsf_ray.evaluate` reads.

* synth-<seed>: `ocsf-ray synth` archives (their own ground truth).
* seed-sample-<kind>: the real seed sample's logs and spans (`shared/data/seed-sample/`, a
  2-hour sample of a small web service) with copies of its own rows injected, one kind of
  incident seen in real outages at a time and all four mixed: a burst of a new message
  template, one slow endpoint, an unusual user on an endpoint, an error burst. A copy keeps
  every field of the real row it was taken from except the few the incident changes, the
  time (inside the incident's window) and its ids (fresh metadata.uid, session, trace,
  source port), so it is no outlier on the other fields. The sample's metrics (100k
  cumulative Prometheus samples) are left out: no injected kind touches them and they
  would triple the run time. The sample's own failures (73 timeouts and their companions)
  are unlabelled and so count as normal, for every method alike.
* ras: a syslog-like kernel/RAS log (nodes of a cluster, components, ~30 line templates
  with variable parts) generated from a seeded RNG, in which alerts are rare templates of
  high severity, some of them in bursts on one node (as in supercomputer RAS logs).
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from shutil import which

import numpy as np
import polars as pl

SEED_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed-sample"
SEED_KINDS = ("template_burst", "slow_endpoint", "unusual_user", "error_burst")


@dataclass
class DataSet:
    name: str
    group: str  # "synth", "seed-sample" or "ras": sets of one group are summarised together
    inputs: list[str]
    labels: str
    events: int


def ocsf_ray(args: list[str], log: Path) -> float:
    """Run the `ocsf-ray` CLI beside this interpreter (the path users run), its output to
    `log`; the wall seconds it took. Raises with the log's tail when it fails."""
    command = Path(sys.executable).with_name("ocsf-ray")
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([str(command) if command.exists() else which("ocsf-ray"), *args], stdout=out,
                              stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"ocsf-ray {args[0]} failed ({done.returncode}), log {log}:\n{tail}")
    return time.perf_counter() - started


def write_truth(folder: Path, labels: pl.DataFrame, incidents: list[dict]) -> str:
    """labels.parquet and incidents.json under `folder/ground_truth`; the labels' path."""
    truth = folder / "ground_truth"
    truth.mkdir(parents=True, exist_ok=True)
    labels.select("metadata_uid", "is_anomaly", "incident_id").write_parquet(truth / "labels.parquet")
    (truth / "incidents.json").write_text(json.dumps(incidents, indent=1))
    return str(truth / "labels.parquet")


def fresh_uids(rng: np.random.Generator, count: int) -> list[str]:
    return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(count)]


# --- synth --------------------------------------------------------------------------------

def synth_sets(root: Path, seeds: list[int], events: int, days: float, num_cpus: int) -> list[DataSet]:
    """One `ocsf-ray synth` archive per seed (labels beside it, as a user would find them)."""
    sets = []
    for seed in seeds:
        out = root / f"synth-{seed}"
        ocsf_ray(["synth", "--out", str(out), "--events", str(events), "--days", str(days), "--seed", str(seed),
                  "--num-cpus", str(num_cpus)], root / f"synth-{seed}.log")
        labels = out / "ground_truth" / "labels.parquet"
        sets.append(DataSet(f"synth-{seed}", "synth", [str(out / "events")], str(labels), pl.read_parquet(labels).height))
    return sets


# --- seed sample with injected incidents --------------------------------------------------

# flattened column -> (its JSON-string twin, key path inside it): a copy changes both
TWINS = {
    "actor_user_uid": ("actor", ("user", "uid")), "actor_user_name": ("actor", ("user", "name")),
    "actor_user_email": ("actor", ("user", "email")), "actor_session_uid": ("actor", ("session", "uid")),
    "actor_session_created_time": ("actor", ("session", "created_time")),
    "src_endpoint_port": ("src_endpoint", ("port",)),
    "http_response_code": ("http_response", ("code",)), "http_response_status": ("http_response", ("status",)),
    "http_response_latency": ("http_response", ("latency",)),
    "error_message": ("error", ("message",)), "error_type": ("error", ("type",)),
}
INTEGER_KEYS = {"code", "port", "created_time"}


def set_field(row: dict, column: str, value) -> None:
    """Set a field of a copied row in its flattened column and in its JSON twin, if any."""
    if column in row:
        row[column] = value
    twin, path = TWINS.get(column, (None, ()))
    if twin is None or twin not in row:
        return
    document = json.loads(row[twin]) if row[twin] else {}
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = int(value) if path[-1] in INTEGER_KEYS else value
    row[twin] = json.dumps(document)


def copies(frame: pl.DataFrame, where: pl.Expr, count: int, window: tuple[int, int],
           rng: np.random.Generator) -> list[dict]:
    """`count` real rows matching `where`, drawn with replacement, moved into `window` (ms)
    with fresh per-request ids (session, trace, span, source port)."""
    pool = frame.filter(where)
    rows = pool[rng.integers(0, pool.height, count)].to_dicts()
    for row, at in zip(rows, np.sort(rng.integers(window[0], window[1], count))):
        row["time"] = int(at)
        if row.get("actor_session_uid"):
            set_field(row, "actor_session_uid", f"sess-{rng.bytes(6).hex()}")
            set_field(row, "actor_session_created_time", int(at))
        if row.get("src_endpoint_port") is not None:
            set_field(row, "src_endpoint_port", float(rng.integers(32768, 65536)))
        if row.get("span_id"):
            row["span_id"], row["trace_id"] = rng.bytes(8).hex(), rng.bytes(16).hex()
        elif row.get("trace_id"):  # logs carry trace ids as decimal 128-bit integers
            row["trace_id"] = str(int.from_bytes(rng.bytes(16), "big"))
    return rows


def template_burst(logs, spans, count, window, rng):
    """(a) Many alike lines of a template never logged before within a few minutes: the
    service's background (non-request) warning lines, reworded as connection-pool
    exhaustion with varying numbers."""
    rows = copies(logs, pl.col("message").str.starts_with("Database error: current"), count, window, rng)
    for row in rows:
        row["message"] = (f"Connection pool exhausted: {rng.integers(18, 21)}/20 connections in use, "
                          f"request waited {rng.integers(800, 5000)} ms")
    return rows, []


def slow_endpoint(logs, spans, count, window, rng):
    """(b) One endpoint slows down: user look-ups (their request logs and their get_user
    spans) take 10-50 times as long, each copy its own factor."""
    rows = copies(logs, pl.col("http_request_url_path").str.starts_with("/api/users/"), count // 2, window, rng)
    for row in rows:
        factor = rng.uniform(10, 50)
        set_field(row, "http_response_latency", row["http_response_latency"] * factor)
        row["duration"] *= factor
    span_rows = copies(spans, pl.col("message") == "get_user", count - count // 2, window, rng)
    for row in span_rows:
        row["duration"] = max(1, round(row["duration"] * rng.uniform(10, 50)))
    return rows, span_rows


def unusual_user(logs, spans, count, window, rng):
    """(c) A user never seen before (a service account) reads user records one after the
    other: requests to /api/users/<id> whose actor alone is new."""
    rows = copies(logs, pl.col("http_request_url_path").str.starts_with("/api/users/"), count, window, rng)
    for row in rows:
        set_field(row, "actor_user_uid", "user-9001")
        set_field(row, "actor_user_name", "svc.reporting")
        set_field(row, "actor_user_email", "svc.reporting@company.com")
    return rows, []


def error_burst(logs, spans, count, window, rng):
    """(d) The service's host answers searches with errors for a few minutes: status,
    response code and severity turn to failure, an error object appears; the message and
    every other field stay those of the real request."""
    rows = copies(logs, pl.col("http_request_url_path") == "/api/search", count, window, rng)
    for row in rows:
        row.update(status="Failure", status_id=2, status_code="500", severity_id=4)
        for column, value in (("http_response_code", 500.0), ("http_response_status", "Error"),
                              ("error_message", "Internal Server Error"), ("error_type", "OperationalError")):
            set_field(row, column, value)
    return rows, []


INJECTIONS = {"template_burst": (template_burst, 3), "slow_endpoint": (slow_endpoint, 15),
              "unusual_user": (unusual_user, 20), "error_burst": (error_burst, 5)}  # kind -> (copies, window minutes)


def seed_sample_sets(root: Path, kinds: list[str], rate: float, minutes: float, seed: int, alone: bool = True,
                     source: Path = SEED_SAMPLE) -> list[DataSet]:
    """On the first `minutes` of the sample: with `alone`, one set per kind (`rate` of the
    events injected) and, with more than one kind, all of them mixed (each at half that
    rate, in windows that do not overlap)."""
    logs = pl.read_parquet(source / "ocsf_logs.parquet")
    spans = pl.read_parquet(source / "ocsf_traces.parquet")
    end = int(logs["time"].min()) + int(minutes * 60_000)
    logs, spans = logs.filter(pl.col("time") < end), spans.filter(pl.col("time") < end)
    plans = ([[kind] for kind in kinds] if alone or len(kinds) == 1 else []) + ([list(kinds)] if len(kinds) > 1 else [])
    sets = []
    for number, plan in enumerate(plans):
        name = f"seed-sample-{plan[0] if len(plan) == 1 else 'mixed'}"
        share = rate if len(plan) == 1 else rate / 2
        sets.append(inject(root / name, name, logs, spans, plan, share, np.random.default_rng(seed + number)))
    return sets


def inject(folder: Path, name: str, logs: pl.DataFrame, spans: pl.DataFrame, kinds: list[str], share: float,
           rng: np.random.Generator) -> DataSet:
    """Write logs and spans with the kinds' copies added, each kind in its own window (the
    period split in as many parts as kinds, the window at a random place inside its part,
    away from the edges), every event with a fresh metadata.uid, and the labels."""
    start, stop = int(min(logs["time"].min(), spans["time"].min())), int(max(logs["time"].max(), spans["time"].max()))
    count = max(10, round(share * (logs.height + spans.height)))
    service = logs["service"].mode()[0]  # the sample's one service: every incident's root cause (RCA reads it)
    part = (stop - start) / len(kinds)
    added_logs, added_spans, incidents = [], [], []
    for i, kind in enumerate(kinds):
        make, window_minutes = INJECTIONS[kind]
        width = int(window_minutes * 60_000)
        lo = start + i * part + 0.1 * part
        at = int(rng.uniform(lo, max(lo, start + (i + 1) * part - 0.1 * part - width)))
        new_logs, new_spans = make(logs, spans, count, (at, at + width), rng)
        incident = f"INJ-{i + 1:02d}"
        incidents.append({"id": incident, "type": kind, "start": at, "end": at + width, "events": count,
                          "root_service": service})
        added_logs.append(pl.DataFrame(new_logs, schema=logs.schema).with_columns(incident_id=pl.lit(incident)))
        added_spans.append(pl.DataFrame(new_spans, schema=spans.schema).with_columns(incident_id=pl.lit(incident)))
    events = folder / "events"
    events.mkdir(parents=True)
    truth = []
    for frame, added, file in ((logs, added_logs, "ocsf_logs.parquet"), (spans, added_spans, "ocsf_traces.parquet")):
        both = pl.concat([frame.with_columns(incident_id=pl.lit(None, pl.String)), *added]).sort("time")
        both = both.with_columns(metadata_uid=pl.Series(fresh_uids(rng, both.height)))
        if "metadata" in both.columns:  # the JSON-string twin names the same uid
            both = both.with_columns(metadata=pl.concat_str(
                pl.lit('{"uid": "'), "metadata_uid", pl.lit('", '), pl.col("metadata").str.slice(1)))
        both.drop("incident_id").write_parquet(events / file)
        truth.append(both.select("metadata_uid", pl.col("incident_id").is_not_null().alias("is_anomaly"), "incident_id"))
    labels = pl.concat(truth)
    return DataSet(name, "seed-sample", [str(events)], write_truth(folder, labels, incidents), labels.height)


# --- RAS log --------------------------------------------------------------------------------

SEVERITY = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}
# (component, severity_id, template, weight): the ordinary lines of a cluster's RAS log
RAS_NORMAL = [
    ("KERNEL", 1, "instruction cache parity error corrected", 30),
    ("KERNEL", 1, "generating core.{n}", 10),
    ("KERNEL", 1, "{n} double-hummer alignment exceptions", 8),
    ("KERNEL", 1, "CE sym {sym}, at 0x{hex}, mask 0x{mask}", 14),
    ("KERNEL", 2, "total of {n} ddr error(s) detected and corrected", 8),
    ("KERNEL", 2, "{n} torus receiver z+ input pipe error(s) (dcr 0x{mask}) detected and corrected", 5),
    ("KERNEL", 1, "ciod: generated {n} core files for program /bgl/apps/{app}", 5),
    ("KERNEL", 2, "ciod: LOGIN chdir(/p/gb1/{user}/run{n}) failed: No such file or directory", 3),
    ("KERNEL", 3, "ciod: Error loading /bgl/apps/{app}: invalid or missing program image, Exec format error", 4),
    ("KERNEL", 1, "program interrupt: fp cr field ..............{n}", 2),
    ("KERNEL", 4, "correctable L3 EDRAM error(s) {n} on rank {sym}, threshold not reached", 4),
    ("KERNEL", 1, "memory manager / command manager address parity........0", 2),
    ("APP", 1, "job {job} started on partition {partition} by {user}", 8),
    ("APP", 1, "job {job} finished on partition {partition}, exit status 0, elapsed {n} s", 8),
    ("APP", 2, "job {job} on partition {partition} exceeded its soft memory limit ({n} MB)", 3),
    ("MMCS", 1, "ciodb has been restarted.", 1),
    ("MMCS", 1, "idoproxydb has been started: $Name: DRV{n}_2005 $ Input parameters: -enableflush -loguserinfo", 1),
    ("MMCS", 1, "mmcs_db_server has been started: ./mmcs_db_server --useDatabase BGL --dbproperties serverdb.properties", 1),
    ("MMCS", 1, "partition {partition} booted in {n} s", 4),
    ("MMCS", 2, "partition {partition} freed by {user}", 4),
    ("DISCOVERY", 1, "Ido chip status changed: {node} ip=10.0.{octet}.{octet} v={sym} t=4 status=M", 4),
    ("DISCOVERY", 2, "Node card VPD check: {node} node in processor card slot J{sym} do not match. "
                     "VPD ecid {hex}, found {hex}", 2),
    ("DISCOVERY", 1, "Node card is fully functional", 3),
    ("LINKCARD", 1, "MidplaneSwitchController performing bit sparing on {node} bit {sym}", 2),
    ("LINKCARD", 3, "Link PGOOD error latched on link card", 1),
    ("HARDWARE", 1, "fan module {sym} speed {rpm} rpm within limits", 6),
    ("HARDWARE", 1, "temperature sensor {sym}: {temp} C", 10),
    ("HARDWARE", 2, "power module {sym} output {volts} V, nominal", 4),
    ("MONITOR", 1, "monitor heartbeat from {node} received", 8),
    ("MONITOR", 2, "monitor caught java.lang.IllegalStateException while executing query on {node}, retrying", 2),
]
# the alerts: rare templates, mostly of high severity (one a mere warning)
RAS_ALERTS = [
    ("KERNEL", 6, "data TLB error interrupt"),
    ("KERNEL", 6, "rts: kernel terminated for reason {reason}"),
    ("KERNEL", 5, "machine check interrupt (bit=0x{mask}): L2 dcache unit data parity error"),
    ("KERNEL", 6, "data storage interrupt"),
    ("APP", 5, "ciod: failed to read message prefix on control stream (CioStream socket to 172.16.{octet}.{octet}:{port})"),
    ("KERNEL", 5, "Lustre mount FAILED : {node} : block_id : location"),
    ("KERNEL", 4, "NFS Mount failed on {node}, slept {n} seconds, retrying ({sym})"),
    ("MMCS", 5, "idoproxydb hit ASSERT condition: ASSERT expression=0 Source file=idotransportmgr.cpp Source line={n} "
                "Function=int IdoTransportMgr::SendPacket(IdoUdpMgr*, BglCtlPavTrace*)"),
    ("LINKCARD", 3, "link card {sym} lost clock signal, switching to redundant oscillator"),
]
BURST_ALERTS = (0, 5, 6)  # alert templates that come in bursts on one node


def _fill(template: str, rng: np.random.Generator, node: str) -> str:
    """The template with each `{field}` given a value drawn for it."""
    draw = {
        "n": lambda: rng.integers(1, 2000), "sym": lambda: rng.integers(0, 32), "hex": lambda: f"{rng.integers(0, 2**32):08x}",
        "mask": lambda: f"{rng.integers(0, 256):02x}", "app": lambda: rng.choice(["lammps", "qbox", "hpl", "sweep3d", "umt2k"]),
        "user": lambda: rng.choice(["jdoe", "asmith", "kwong", "pgarcia", "mlee", "rnair"]),
        "job": lambda: rng.integers(10_000, 99_999), "partition": lambda: f"R{rng.integers(0, 8):02d}-M{rng.integers(0, 2)}",
        "octet": lambda: rng.integers(1, 255), "rpm": lambda: rng.integers(2800, 3400), "temp": lambda: rng.integers(38, 61),
        "volts": lambda: f"{rng.normal(1.5, 0.01):.3f}", "port": lambda: rng.integers(30_000, 60_000),
        "reason": lambda: rng.choice([1004, 1006]), "node": lambda: node,
    }
    return template.format(**{f: draw[f]() for _, f, _, _ in string.Formatter().parse(template) if f})


def _ras_event(rng, at: int, node: str, line: tuple) -> dict:
    component, severity, template = line[:3]
    return {
        "class_uid": 6008, "class_name": "Application Error", "category_uid": 6, "activity_id": 1, "type_uid": 600801,
        "time": int(at), "severity_id": severity, "severity": SEVERITY[severity], "message": _fill(template, rng, node),
        "device": {"hostname": node, "type": "server"},
        "metadata": {"uid": "", "log_provider": component, "version": "1.1.0",
                     "product": {"name": "bgl-ras", "vendor_name": "cluster"}},
    }


def ras_set(root: Path, lines: int, hours: float, seed: int, alert_share: float = 0.06) -> DataSet:
    """`lines` RAS log lines over `hours`: normal ones from RAS_NORMAL by weight on random
    nodes at random times; alerts (`alert_share` of lines), 60 % of them in three bursts of
    one template on one node within 5 minutes, the rest scattered. NDJSON of nested OCSF."""
    rng = np.random.default_rng(seed)
    nodes = [f"R{r:02d}-M{m}-N{n:X}-C:J{j:02d}-U11" for r in range(4) for m in range(2) for n in range(4) for j in (2, 3)]
    start = 1_767_225_600_000  # 2026-01-01
    span = int(hours * 3_600_000)
    alerts = max(20, round(alert_share * lines))
    weights = np.array([w for *_, w in RAS_NORMAL], float)
    events, truth = [], []
    for line in rng.choice(len(RAS_NORMAL), lines - alerts, p=weights / weights.sum()):
        events.append(_ras_event(rng, start + rng.integers(0, span), str(rng.choice(nodes)), RAS_NORMAL[line]))
        truth.append(None)
    bursts = [round(alerts * 0.2)] * 3
    incidents = []
    for number, (size, alert) in enumerate(zip(bursts, BURST_ALERTS), start=1):
        node, at = str(rng.choice(nodes)), start + rng.integers(span // 10, span - span // 10)
        incidents.append({"id": f"RAS-{number:02d}", "type": "alert_burst", "node": node, "start": int(at)})
        for offset in np.sort(rng.integers(0, 300_000, size)):
            events.append(_ras_event(rng, at + offset, node, RAS_ALERTS[alert]))
            truth.append(f"RAS-{number:02d}")
    incidents.append({"id": "RAS-00", "type": "isolated_alert"})
    for alert in rng.integers(0, len(RAS_ALERTS), alerts - sum(bursts)):
        events.append(_ras_event(rng, start + rng.integers(0, span), str(rng.choice(nodes)), RAS_ALERTS[alert]))
        truth.append("RAS-00")
    order = np.argsort([e["time"] for e in events], kind="stable")
    uids = fresh_uids(rng, len(events))
    folder = root / "ras"
    (folder / "events").mkdir(parents=True)
    with (folder / "events" / "ras.ndjson").open("w") as out:
        for i, uid in zip(order, uids):
            events[i]["metadata"]["uid"] = uid
            out.write(json.dumps(events[i]) + "\n")
    labels = pl.DataFrame({"metadata_uid": uids, "incident_id": [truth[i] for i in order]},
                          schema={"metadata_uid": pl.String, "incident_id": pl.String})
    labels = labels.with_columns(is_anomaly=pl.col("incident_id").is_not_null())
    return DataSet("ras", "ras", [str(folder / "events")], write_truth(folder, labels, incidents), labels.height)
