"""Online scoring under load: the Ray Serve app against a plain FastAPI + uvicorn process.

Ours: `serve_app` (FastAPI ingress + a scorer deployment that batches concurrent
requests with `@serve.batch`) on a local Ray started here. Baseline: one uvicorn process
whose handler calls `ocsf_ray.index.online.score_records`, the same scoring functions,
request by request (FastAPI runs the sync handler in its thread pool, so concurrent
requests overlap wherever Polars, torch and FAISS release the GIL). Both load the same
bundle and answer the same bodies; both are up during the run and each cell is measured
on one, then the other (the machine may be shared: a change in its load hits both alike).

Load: loopback only, an aiohttp client in this process. For each cell (concurrency x
events per request), `concurrency` workers send requests back to back until --requests
requests or --seconds have passed, after one warm-up request per worker (not counted).
Bodies hold real events of an archive: a seeded sample, time-sorted (mixed sources and
families, as a live stream would be), cut into requests of 1 or 100 events.
Latency is the client's, request sent to response read; errors are non-200 answers and
failed connections. First, the same bodies are scored in this process with no server
(`score_records`, one after another): the floor under both servers.

Targets (2-core machine): p99 < 50 ms for single events at concurrency 8;
>= 5,000 events/s with 100-event requests; no errors.

    python bench/serve_load.py --model demo-out/bundle --events demo-out/archive/events
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from serve_app.schemas import ScoreRequest  # module level: FastAPI resolves the baseline's annotations here

TARGET_P99_MS, TARGET_EVENTS_PER_S = 50.0, 5000.0


@dataclass
class Cell:
    server: str
    concurrency: int
    events_per_request: int
    requests: int
    errors: int
    seconds: float
    events_ok: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def events_per_s(self) -> float:
        return self.events_ok / self.seconds


def sample_events(root: str, count: int, seed: int) -> list[dict]:
    """`count` events drawn evenly from every file under `root`, in time order."""
    import polars as pl

    files = sorted(glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True))
    frames = [pl.read_parquet(f) for f in files]
    total = sum(f.height for f in frames)
    events = []
    for i, frame in enumerate(frames):
        share = min(frame.height, max(1, round(count * frame.height / total)))
        events += frame.sample(share, seed=seed + i).to_dicts()
    return sorted(events, key=lambda e: e["time"])[:count]


def bodies(events: list[dict], size: int) -> list[tuple[bytes, int]]:
    return [(json.dumps({"events": events[i:i + size]}).encode(), len(events[i:i + size]))
            for i in range(0, len(events) - size + 1, size)]


async def run_cell(server: str, url: str, payloads: list[tuple[bytes, int]], concurrency: int,
                   max_requests: int, max_seconds: float) -> Cell:
    import aiohttp

    latencies: list[float] = []
    errors = events_ok = 0
    numbers = itertools.count()
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=120)

    async def post(session, body: bytes) -> bool:
        try:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                return answer.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def worker(session, deadline: float) -> None:
        nonlocal errors, events_ok
        while (i := next(numbers)) < max_requests and time.perf_counter() < deadline:
            body, events = payloads[i % len(payloads)]
            started = time.perf_counter()
            ok = await post(session, body)
            latencies.append(time.perf_counter() - started)
            events_ok, errors = events_ok + events * ok, errors + (not ok)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        await asyncio.gather(*(post(session, payloads[-1 - w % len(payloads)][0]) for w in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, started + max_seconds) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    p50, p95, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 95, 99))
    return Cell(server, concurrency, payloads[0][1], len(latencies), errors, seconds, events_ok, p50, p95, p99)


def measure_in_process(args, sized: dict[int, list]) -> list[Cell]:
    """The floor under both servers: `score_records` called in this process, one request
    after another, no HTTP (featurize + score of each body, as both servers do)."""
    from ocsf_ray.index.online import ServedBundle, score_records

    bundle = ServedBundle.load(args.model)
    cells = []
    for size, payloads in sized.items():
        requests = [json.loads(body)["events"] for body, _ in payloads[:args.in_process_requests]]
        score_records(bundle, requests[-1], 99.0)  # warm-up
        latencies = []
        for events in requests:
            started = time.perf_counter()
            score_records(bundle, events, 99.0)
            latencies.append(time.perf_counter() - started)
        p50, p95, p99 = (float(np.percentile(latencies, q)) * 1000 for q in (50, 95, 99))
        cells.append(Cell("in-process score_records", 1, size, len(requests), 0, sum(latencies),
                          sum(len(e) for e in requests), p50, p95, p99))
        print(f"  in-process {size} ev/req: p50 {p50:.1f} ms, {cells[-1].events_per_s:,.0f} events/s", flush=True)
    return cells


def wait_ready(url: str, seconds: float = 300) -> None:
    import requests

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {seconds} s")


def start_serve(args) -> str:
    """The Serve app on a local Ray with enough logical CPUs for its replicas; its URL."""
    import math

    from ray import serve

    from ocsf_ray.runtime import start_ray
    from serve_app.app import build_app
    from serve_app.settings import ServeSettings

    settings = ServeSettings(model=os.path.abspath(args.model), max_batch_size=args.max_batch_size,
                             batch_wait_timeout_s=args.batch_wait_ms / 1000, scorer_replicas=args.scorer_replicas,
                             scorer_num_cpus=args.scorer_cpus)
    needed = settings.scorer_replicas * settings.scorer_num_cpus + settings.ingress_num_cpus
    start_ray(math.ceil(max(needed, os.cpu_count() or 1)))
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(build_app(settings), name="bench", route_prefix="/")
    base = f"http://127.0.0.1:{args.port}"
    wait_ready(f"{base}/readyz")
    return base


def start_baseline(args) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, os.path.abspath(__file__), "--baseline-server", "--model", args.model,
               "--port", str(args.port + 1)]
    server = subprocess.Popen(command)
    base = f"http://127.0.0.1:{args.port + 1}"
    wait_ready(f"{base}/healthz")
    return server, base


def measure_servers(args, sized: dict[int, list]) -> list[Cell]:
    """Both servers up, each cell measured on one and then the other, so that a change in
    the machine's load (it may be shared) hits both alike."""
    import ray
    from ray import serve

    serve_url = start_serve(args)
    baseline, baseline_url = start_baseline(args)
    cells = []
    try:
        for size, payloads in sized.items():
            for concurrency in args.concurrency:
                for server, url in (("ray-serve", serve_url), ("fastapi-uvicorn", baseline_url)):
                    cell = asyncio.run(run_cell(server, f"{url}/v1/score", payloads, concurrency, args.requests, args.seconds))
                    print(f"  {server} c={concurrency} {size} ev/req: p50 {cell.p50_ms:.1f} ms, p99 {cell.p99_ms:.1f} ms, "
                          f"{cell.events_per_s:,.0f} events/s, {cell.errors} errors", flush=True)
                    cells.append(cell)
    finally:
        baseline.terminate()
        baseline.wait(30)
        serve.shutdown()
        ray.shutdown()
    return cells


def baseline_server(model: str, port: int, percentile: float) -> None:
    """The baseline: one process, the bundle loaded once, score_records per request."""
    import uvicorn
    from fastapi import FastAPI

    from ocsf_ray.index.online import ServedBundle, score_records

    bundle = ServedBundle.load(model)
    api = FastAPI()

    @api.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @api.post("/v1/score")
    def score(body: ScoreRequest) -> dict:
        return {"model_version": bundle.version, "results": score_records(bundle, body.events, percentile)}

    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo-out/bundle")
    parser.add_argument("--events", default="demo-out/archive/events", help="an archive of Parquet files to draw events from")
    parser.add_argument("--sample", type=int, default=20_000, help="events drawn for the request bodies")
    parser.add_argument("--concurrency", default="1,8,32", type=lambda s: [int(c) for c in s.split(",")])
    parser.add_argument("--sizes", default="1,100", type=lambda s: [int(c) for c in s.split(",")], help="events per request")
    parser.add_argument("--requests", type=int, default=1500, help="at most this many requests per cell")
    parser.add_argument("--seconds", type=float, default=20.0, help="and at most this long per cell")
    parser.add_argument("--in-process-requests", type=int, default=50, help="requests of each size scored in-process")
    parser.add_argument("--port", type=int, default=8790, help="Serve's port; the baseline takes the next one")
    parser.add_argument("--scorer-replicas", type=int, default=1)
    parser.add_argument("--scorer-cpus", type=float, default=1.0,
                        help="CPUs of the scorer replica; Ray also sets its OpenMP threads (FAISS, torch) to this")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        return baseline_server(args.model, args.port, 99.0)

    load_at_start = os.getloadavg()[0]
    events = sample_events(args.events, args.sample, args.seed)
    sized = {size: bodies(events, size) for size in args.sizes}
    print(f"bundle {args.model}; {len(events):,} events from {args.events}; cells: concurrency {args.concurrency} x "
          f"{args.sizes} events/request, each at most {args.requests:,} requests or {args.seconds:g} s; "
          f"{args.scorer_replicas} scorer replica(s) of {args.scorer_cpus:g} CPUs, batches of <= {args.max_batch_size} within {args.batch_wait_ms:g} ms; "
          f"{os.cpu_count()} cores, load at start {load_at_start:.1f}", flush=True)
    cells = measure_in_process(args, sized) + measure_servers(args, sized)

    print("\n| server | concurrency | events/request | requests | p50 ms | p95 ms | p99 ms | events/s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cells:
        print(f"| {c.server} | {c.concurrency} | {c.events_per_request} | {c.requests:,} | {c.p50_ms:.1f} | "
              f"{c.p95_ms:.1f} | {c.p99_ms:.1f} | {c.events_per_s:,.0f} | {c.errors} |")
    by_key = {(c.server, c.concurrency, c.events_per_request): c for c in cells}
    print("\nray-serve vs fastapi-uvicorn (same cell): events/s ratio, p99 ratio (lower is better)")
    for (server, concurrency, size), ours in by_key.items():
        base = by_key.get(("fastapi-uvicorn", concurrency, size))
        if server == "ray-serve" and base and base.events_ok and ours.events_ok:
            print(f"  c={concurrency} {size} ev/req: {ours.events_per_s / base.events_per_s:.2f}x events/s, "
                  f"p99 {ours.p99_ms / base.p99_ms:.2f}x")
    single = by_key.get(("ray-serve", 8, 1))
    if single:
        verdict = "meets" if single.p99_ms < TARGET_P99_MS and single.errors == 0 else "MISSES"
        print(f"single events at concurrency 8: p99 {single.p99_ms:.1f} ms ({verdict} target < {TARGET_P99_MS:g} ms)")
    hundred = [c for c in cells if c.server == "ray-serve" and c.events_per_request == 100]
    if hundred:
        best = max(hundred, key=lambda c: c.events_per_s)
        verdict = "meets" if best.events_per_s >= TARGET_EVENTS_PER_S else "MISSES"
        print(f"100-event requests: best {best.events_per_s:,.0f} events/s at concurrency {best.concurrency} "
              f"({verdict} target >= {TARGET_EVENTS_PER_S:,.0f})")
    print(f"errors: {sum(c.errors for c in cells if c.server == 'ray-serve')} (target 0); "
          f"load at start {load_at_start:.1f}, at end {os.getloadavg()[0]:.1f}")
    print(json.dumps({"bench": "serve_load", "model": args.model, "cpus": os.cpu_count(),
                      "load": [load_at_start, os.getloadavg()[0]],
                      "cells": [asdict(c) | {"events_per_s": c.events_per_s} for c in cells]}))


if __name__ == "__main__":
    main()
