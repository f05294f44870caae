"""`ocsf-ray serve`: the application on a local Ray (or RAY_ADDRESS), until interrupted."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from serve_app.settings import ServeSettings

APP_NAME = "ocsf-ray"


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def serve_until_interrupted(settings: ServeSettings, host: str, port: int,
                            on_ready: Callable[[str], None] | None = None) -> None:
    """Start Serve's HTTP proxy on host:port, deploy the app, block until Ctrl-C (or a
    service manager's SIGTERM), then shut Serve down so no replica outlives the command."""
    from ray import serve

    from ocsf_ray.runtime import start_ray
    from serve_app.app import build_app

    start_ray()
    signal.signal(signal.SIGTERM, _interrupt)
    serve.start(http_options={"host": host, "port": port})
    try:
        serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
        if on_ready:
            on_ready(f"http://{host}:{port}")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
