"""Ingestion robustness on other producers' OCSF: ocsf-ray against the plain readers, in one run.

Inputs, none written by this project's generator:
* every input in `../shared/data/ocsf-cases/` (reduced from other producers' OCSF), with the
  accepted-event count its README asks for;
* the real seed sample's first 1,000 API log events as NDJSON with 24 malformed lines of 10 kinds
  injected (expected: exactly the 1,000 accepted).

Methods, each given the same files:
* ocsf-ray: `read_chunk` + `canonicalize` per chunk (the code `featurize` runs in its Ray tasks);
* polars: `pl.read_ndjson(..., infer_schema_length=None)` / `pl.read_parquet`, what a few lines of
  user code would do;
* pyarrow: `pyarrow.json.read_json` / `pyarrow.parquet.read_table`.

An input counts as handled when the method returns without an exception and keeps exactly the
expected number of events (the plain readers cannot reject, so malformed lines either crash them or
stay in). Prints a table, the ratio ocsf-ray / best baseline, and a final JSON line.

    .venv/bin/python bench/ingest_cases.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import polars as pl
import pyarrow.json as pj
import pyarrow.parquet as pq

from ocsf_ray.io import IngestOptions, canonicalize, plan_chunks, read_chunk, resolve_inputs

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPECTED = {  # accepted events per the cases' README
    "datetime-profile.jsonl": 4, "dotted-and-flat-twin.jsonl": 2, "empty-uid.jsonl": 2,
    "implausible-time.jsonl": 1, "no-time-mixed-types.jsonl": 0, "uint64-id.jsonl": 2,
    "utf8-bom.jsonl": 2, "same-file-name": 4, "map-column.parquet": 2,
}
BAD_LINES = [
    '{"time": 1768921951935, "class_uid": ', "[1, 2]", json.dumps({"class_uid": 6003, "message": "no time"}),
    '{"time": true, "class_uid": 6003}', '{"time": 17137957280870000000000, "class_uid": 6003}',
    '{"time": 1768921951935, "class_uid": 6003, "severity_id": {"id": 2}}',
    '{"time": 1768921951935, "class_uid": 6003, "severity_id": "high"}', '{"time": 1768921951935, "class_uid": -7}',
    '{"time": 1768921951935, "class_uid": 6003, "src_endpoint": {"port": "ssh"}}',
    '{"time": 1768921951935, "class_uid": 6003, "start_time_dt": "soon"}',
]


def injected_seed(folder: Path) -> Path:
    """1,000 real seed-sample log events as NDJSON with 24 malformed lines among them."""
    events = pl.read_parquet(SHARED / "seed-sample" / "ocsf_logs.parquet").head(1000)
    lines = [json.dumps(r, default=str) for r in events.to_dicts()]
    for i in range(24):
        lines.insert(17 + i * 41, BAD_LINES[i % len(BAD_LINES)])
    path = folder / "seed-1000-plus-24-bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def ocsf_ray(path: Path) -> int:
    accepted = 0
    for chunk in plan_chunks(resolve_inputs([str(path)])):
        flat, _ = read_chunk(chunk)
        accepted += canonicalize(flat, chunk.file.uri, IngestOptions(), name=chunk.file.relative)[0].height
    return accepted


def _each_file(path: Path, read) -> int:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return sum(read(f) for f in files)


def polars(path: Path) -> int:
    return _each_file(path, lambda f: (pl.read_parquet(f) if f.suffix == ".parquet"
                                       else pl.read_ndjson(f, infer_schema_length=None)).height)


def pyarrow(path: Path) -> int:
    return _each_file(path, lambda f: (pq.read_table(f) if f.suffix == ".parquet" else pj.read_json(f)).num_rows)


def main() -> int:
    if not SHARED.exists():
        print(f"{SHARED} is missing: nothing to benchmark")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {name: SHARED / "ocsf-cases" / name for name in EXPECTED}
        expected = dict(EXPECTED)
        inputs["seed-1000-plus-24-bad.jsonl"], expected["seed-1000-plus-24-bad.jsonl"] = injected_seed(Path(tmp)), 1000
        methods = {"ocsf-ray": ocsf_ray, "polars": polars, "pyarrow": pyarrow}
        results: dict[str, dict[str, str]] = {m: {} for m in methods}
        for name, path in inputs.items():
            for method, read in methods.items():
                try:
                    kept = read(path)
                    results[method][name] = "ok" if kept == expected[name] else f"kept {kept} of {expected[name]}"
                except Exception as err:  # noqa: BLE001 - a crash is what is being counted
                    results[method][name] = f"crash: {type(err).__name__}"
    print(f"{'input':34} " + " ".join(f"{m:28}" for m in methods))
    for name in inputs:
        print(f"{name:34} " + " ".join(f"{results[m][name][:28]:28}" for m in methods))
    handled = {m: sum(v == "ok" for v in r.values()) for m, r in results.items()}
    best = max(handled["polars"], handled["pyarrow"])
    ratio = handled["ocsf-ray"] / best if best else float("inf")
    print("handled: " + ", ".join(f"{m} {h}/{len(inputs)}" for m, h in handled.items()))
    print(f"ocsf_ray_vs_best_plain_reader: {ratio:.1f}x")
    print(json.dumps({"bench": "ingest_cases", "inputs": len(inputs), "handled": handled,
                      "ocsf_ray_vs_best_plain_reader": ratio, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
