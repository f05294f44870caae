"""The scorer deployment: one loaded bundle per replica, concurrent requests scored together.

`@serve.batch` gathers the calls that arrive within `batch_wait_timeout_s` (up to
`max_batch_size`). Each call is featurized on its own, so its window features see only
its own events and never a stranger's; all of them then share one embedding + FAISS
search per family (`ocsf_ray.index.online`). The work runs in a thread, so the replica
keeps answering `describe` and `stage` while a batch computes.

Reloads are two-phase, driven by the ingress: `stage` loads a bundle fully beside the one
serving (on every replica), and only when all replicas have it does the ingress adopt
it; from then on its calls name the new bundle (`ModelRef`) and each replica swaps one
reference. A replica that missed the reload (started later by autoscaling or a restart)
loads the bundle the first time a call names it.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from ray import serve

from ocsf_ray.index.online import (
    RequestRows,
    ServedBundle,
    explain_request,
    featurize_request,
    one_line,
    score_requests,
)
from serve_app.settings import ServeSettings


@dataclass(frozen=True)
class ModelRef:
    """The bundle the ingress serves: its path and when the ingress adopted it (ns), so
    that a replica can tell a newer choice from a call issued before a reload."""

    path: str
    adopted_ns: int


@dataclass
class ScoreCall:
    events: list[dict]
    explain: bool
    model: ModelRef


@dataclass
class ScoreOutcome:
    """One call's results (or why its events could not be read at all), the bundle that
    scored them, and the batch it rode in (for the ingress's batch-size histogram)."""

    results: list[dict] | None
    error: str | None
    model_version: str
    batch_size: int
    first_in_batch: bool


def score_calls(bundle: ServedBundle, calls: list[ScoreCall], percentile: float) -> list[ScoreOutcome]:
    """Featurize each call alone, score all of them together, explain where asked."""
    featurized: list[RequestRows | str] = []
    for call in calls:
        try:
            featurized.append(featurize_request(bundle, call.events))
        except Exception as err:  # whatever the normalisers raise on these events fails this call alone
            featurized.append(f"events could not be normalised: {one_line(err)}")
    scored = iter(score_requests(bundle, [r for r in featurized if isinstance(r, RequestRows)], percentile))
    outcomes = []
    for i, (call, request) in enumerate(zip(calls, featurized)):
        if isinstance(request, str):
            outcomes.append(ScoreOutcome(None, request, bundle.version, len(calls), i == 0))
            continue
        results = next(scored)
        if call.explain:
            explain_request(bundle, request, results)
        outcomes.append(ScoreOutcome(results, None, bundle.version, len(calls), i == 0))
    return outcomes


@serve.deployment(max_ongoing_requests=128)
class Scorer:
    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.bundle = ServedBundle.load(settings.model)
        self.model = ModelRef(settings.model, 0)
        self.staged: ServedBundle | None = None
        self.switching = threading.Lock()
        self.score.set_max_batch_size(settings.max_batch_size)
        self.score.set_batch_wait_timeout_s(settings.batch_wait_timeout_s)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def score(self, calls: list[ScoreCall]) -> list[ScoreOutcome]:
        newest = max((call.model for call in calls), key=lambda ref: ref.adopted_ns)
        return await asyncio.to_thread(lambda: score_calls(self._serving(newest), calls, self.settings.percentile))

    def _serving(self, ref: ModelRef) -> ServedBundle:
        """The bundle to score with: the one serving, unless the ingress adopted a newer
        one since this replica last looked (then load it fully and swap one reference)."""
        with self.switching:
            if ref.adopted_ns > self.model.adopted_ns:
                if self.staged is not None and self.staged.path == ref.path:  # a reload, the same path included
                    self.bundle = self.staged
                elif ref.path != self.bundle.path:  # a reload this replica started too late to stage
                    self.bundle = ServedBundle.load(ref.path)
                self.model, self.staged = ref, None
            return self.bundle

    async def describe(self) -> dict:
        return self.bundle.describe() | {"percentile": self.settings.percentile}

    async def stage(self, path: str) -> dict:
        """Load a bundle fully beside the serving one; raises BundleError with the reason."""
        staged = await asyncio.to_thread(ServedBundle.load, path)
        self.staged = staged
        return staged.describe() | {"percentile": self.settings.percentile}

    async def unstage(self) -> None:
        self.staged = None

    async def adopt(self, ref: ModelRef) -> str:
        """Serve the staged bundle from now on (the commit of a reload)."""
        return (await asyncio.to_thread(self._serving, ref)).version

