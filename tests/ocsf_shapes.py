"""Small hand-made OCSF events and the ways exporters shape them, for io tests.

The three shapes of one event: nested objects, `_`-flattened columns, and nested
objects carried as JSON strings (as in the real seed sample).
"""

from __future__ import annotations

import json
import random


def api_events(n: int, seed: int = 0, start_ms: int = 1_768_900_000_000) -> list[dict]:
    """n nested OCSF API Activity (6003) events with varied values and explicit uids."""
    rng = random.Random(seed)
    paths = ["/api/users/{}", "/api/checkout", "/api/search", "/api/orders/{}/items"]
    events = []
    for i in range(n):
        ok = rng.random() > 0.1
        latency = round(rng.lognormvariate(3, 1), 3)
        events.append({
            "class_uid": 6003, "category_uid": 6, "activity_id": rng.choice([1, 2]),
            "type_uid": 600301, "severity_id": 2 if ok else 4, "status_id": 1 if ok else 2,
            "time": start_ms + i * 1500 + rng.randint(0, 999),
            "message": f"Request took {int(latency)}ms" if ok else f"Database timeout after {int(latency)}ms",
            "metadata": {"uid": f"evt-{seed}-{i}", "version": "1.3.0", "product": {"name": "shop"}},
            "api": {"service": {"name": rng.choice(["checkout", "users"])}, "operation": "handle"},
            "http_request": {
                "http_method": rng.choice(["GET", "POST"]),
                "url": {"path": rng.choice(paths).format(rng.randint(1, 999))},
                "user_agent": rng.choice(["python-requests/2.31.0", "python-requests/2.32.1", "Mozilla/5.0 (X11)", "curl/8.1"]),
            },
            "http_response": {"code": 200 if ok else 504, "latency": latency},
            "actor": {"user": {"uid": f"user-{rng.randint(1, 5)}"}},
            "src_endpoint": {"ip": f"10.0.{rng.randint(0, 3)}.{rng.randint(1, 250)}", "port": rng.randint(1024, 65000)},
            "device": {"hostname": f"host-{rng.randint(1, 3)}"},
            "resources": [{"type": "order", "uid": f"o-{i}"}, {"type": "user", "uid": "u"}],
            "trace_id": str(rng.getrandbits(128)),
        })
    return events


def flattened(event: dict, prefix: str = "") -> dict:
    """The `_`-flattened export of a nested event (arrays kept as they are)."""
    out: dict = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flattened(value, f"{name}_")
        else:
            out[name] = value
    return out


def json_strings(event: dict) -> dict:
    """Top-level objects and arrays carried as JSON text (the seed sample's shape)."""
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in event.items()}


def mixed_archive(start_ms: int = 1_768_900_000_000) -> dict[str, list[dict]]:
    """One small event of every kind, each naming its service the way its producer does."""
    common = {"time": start_ms, "severity_id": 1, "status_id": 1}
    return {
        "api.ndjson": [
            common | {"class_uid": 6003, "metadata": {"uid": f"api-{i}"}, "api": {"service": {"name": "cart"}}}
            for i in range(3)
        ],
        "app-error.ndjson": [
            common | {"class_uid": 6008, "metadata": {"uid": f"err-{i}", "product": {"name": "billing"}},
                      "message": "boom", "device": {"hostname": "h1"}}
            for i in range(2)
        ],
        "spans.ndjson": [
            common | {"class_uid": 6003, "metadata": {"uid": f"span-{i}", "profiles": ["trace"]},
                      "trace": {"uid": "a" * 32}, "span": {"uid": f"{i:016x}", "parent_uid": None},
                      "service": {"name": "cart"}, "duration": 12}
            for i in range(4)
        ],
        "metrics.ndjson": [
            common | {"class_uid": 99, "metadata": {"uid": f"m-{i}"},
                      "metric": {"name": "cpu", "value": 0.5, "type": "gauge"}, "device": {"hostname": "node-7"}}
            for i in range(5)
        ],
        "config.ndjson": [
            common | {"class_uid": 5019, "metadata": {"uid": "cfg-0"}, "service": {"name": "billing"},
                      "change": {"type": "deployment", "version": "1.2.3"}}
        ],
        "auth.ndjson": [
            common | {"class_uid": 3002, "metadata": {"uid": f"auth-{i}", "product": {"name": "idp"}},
                      "user": {"name": "alice"}}
            for i in range(2)
        ],
    }
