"""The Serve application: the HTTP ingress, the scorer it calls, and the builder.

    serve run serve_app/serve_config.yaml          # the config's `args` are ServeSettings
    serve run serve_app.app:app_builder model=BUNDLE
    ocsf-ray serve --model BUNDLE                  # a local Ray, until Ctrl-C

The ingress owns the choice of bundle (`ModelRef`) and sends it with every call, so it
runs as one replica; the scorer is where the work is and where replicas scale.
"""

from __future__ import annotations

import asyncio
import os
import time

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from ocsf_ray.index.online import BundleError, one_line
from serve_app.api import create_api
from serve_app.metrics import ServeMetrics
from serve_app.scorer import ModelRef, ScoreCall, ScoreOutcome, Scorer
from serve_app.settings import TOKEN_ENV, ServeSettings

READY_TIMEOUT_S = 2.0


def _reason(err: BaseException) -> str:
    """The scorer's own message, without the remote traceback Ray wraps it in."""
    cause = getattr(err, "cause", None) or err
    return str(cause) if isinstance(cause, BundleError) else one_line(cause)


@serve.deployment(num_replicas=1, max_ongoing_requests=256)
@serve.ingress()
class OnlineScoring:
    def __init__(self, scorer: DeploymentHandle, settings: ServeSettings):
        self.scorer = scorer
        self.settings = settings
        self.metrics = ServeMetrics()
        self.model = ModelRef(settings.model, time.time_ns())
        self.reloading = asyncio.Lock()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self, self.settings, self.metrics)

    async def score(self, events: list[dict], explain: bool) -> ScoreOutcome:
        return await self.scorer.score.remote(ScoreCall(events, explain, self.model))

    async def describe(self) -> dict:
        return await self.scorer.describe.remote()

    async def ready(self) -> dict | None:
        try:
            return await asyncio.wait_for(self.describe(), READY_TIMEOUT_S)
        except Exception:  # no replica, still starting, or failing: not ready, whatever the cause
            return None

    async def reload(self, path: str) -> dict:
        """Two-phase: every scorer replica loads the bundle beside the serving one; only if
        all succeed do they adopt it and does this ingress name it in its calls."""
        async with self.reloading:
            staged = await self.scorer.broadcast("stage", path).results_async(return_exceptions=True)
            failed = [r for r in staged if isinstance(r, BaseException)]
            if failed or not staged:
                await self.scorer.broadcast("unstage").results_async(return_exceptions=True)
                raise BundleError(_reason(failed[0]) if failed else "no scorer replica is running to load it")
            model = ModelRef(path, time.time_ns())
            await self.scorer.broadcast("adopt", model).results_async()
            self.model = model
            return staged[0]


def build_app(settings: ServeSettings) -> Application:
    """The application, with one GPU per scorer replica when torch sees CUDA here, and
    the API token (when set in this environment) handed to the ingress's environment."""
    import torch

    scorer = Scorer.options(num_replicas=settings.scorer_replicas, ray_actor_options={
        "num_cpus": settings.scorer_num_cpus, "num_gpus": 1 if torch.cuda.is_available() else 0,
    }).bind(settings)
    ingress_options: dict = {"num_cpus": settings.ingress_num_cpus}
    if os.environ.get(TOKEN_ENV):
        ingress_options["runtime_env"] = {"env_vars": {TOKEN_ENV: os.environ[TOKEN_ENV]}}
    return OnlineScoring.options(ray_actor_options=ingress_options).bind(scorer, settings)


def app_builder(args: dict) -> Application:
    """Entry point for `serve run` / `serve deploy`: the config's `args` are ServeSettings."""
    return build_app(ServeSettings.model_validate(args))
