"""The HTTP API: routes, bearer-token auth, size limits, validation errors, metrics.

`create_api(gateway, settings, metrics)` builds the FastAPI app around a gateway (the
Serve ingress, `serve_app.app.OnlineScoring`) that does the scoring; everything here
is about HTTP. A bad request gets a JSON 4xx with a one-line reason and never a 500, a
stack trace or a dead replica; anything unexpected is a JSON 500 without a traceback.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Protocol

import pydantic
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ocsf_ray.index.online import BundleError
from serve_app.metrics import ServeMetrics
from serve_app.schemas import ModelInfo, Problem, ReloadRequest, ScoreRequest, ScoreResponse
from serve_app.scorer import ScoreOutcome
from serve_app.settings import TOKEN_ENV, ServeSettings

logger = logging.getLogger(__name__)
PROBLEMS = {code: {"model": Problem} for code in (401, 413, 422)}


class Gateway(Protocol):
    async def score(self, events: list[dict], explain: bool) -> ScoreOutcome: ...
    async def describe(self) -> dict: ...
    async def ready(self) -> dict | None: ...
    async def reload(self, path: str) -> dict: ...


def problem(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"detail": detail} | ({"errors": errors} if errors is not None else {})
    return JSONResponse(body, status_code=status, headers=headers)


def field_errors(errors: list[dict], prefix: tuple = ()) -> tuple[str, list[dict]]:
    """(one line naming each failing field path, the errors as JSON) of a validation error."""
    listed = [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]
    line = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in listed)
    return line, listed


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as its declared or actual size passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise HTTPException(400, "Content-Length is not a number")
    if declared is not None and int(declared) > limit:
        raise HTTPException(413, f"body of {int(declared):,} bytes; at most {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body over {limit:,} bytes")
    return bytes(body)


def bearer_check(token: str | None):
    """A dependency that demands `Authorization: Bearer <token>` when a token is set."""

    def check(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return check


def install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return problem(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        line, errors = field_errors(err.errors())
        return problem(422, line, errors)

    @api.exception_handler(pydantic.ValidationError)
    async def body_invalid(_: Request, err: pydantic.ValidationError) -> JSONResponse:
        line, errors = field_errors(err.errors(include_url=False, include_context=False), ("body",))
        return problem(422, line, errors)

    @api.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return problem(500, f"internal error ({type(err).__name__}); the server log has the details")


def install_metrics(api: FastAPI, metrics: ServeMetrics) -> None:
    @api.middleware("http")
    async def measure(request: Request, call_next):
        started, status = time.perf_counter(), 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            metrics.observe_request(getattr(route, "path", "unmatched"), status, time.perf_counter() - started)


def create_api(gateway: Gateway, settings: ServeSettings, metrics: ServeMetrics) -> FastAPI:
    api = FastAPI(title="ocsf-ray online scoring", summary="Score OCSF events with a model bundle (docs/SERVING.md)")
    install_error_handlers(api)
    install_metrics(api, metrics)
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(bearer_check(os.environ.get(TOKEN_ENV) or None))],
                   responses=PROBLEMS)

    @api.get("/healthz")
    async def healthz() -> dict:
        """Alive (the process answers); says nothing about the bundle."""
        return {"status": "ok"}

    @api.get("/readyz", responses={503: {"model": Problem}})
    async def readyz():
        """Ready: a scorer replica has its bundle loaded and indexed."""
        found = await gateway.ready()
        if found is None:
            return problem(503, "no scorer replica with a loaded bundle answered")
        return {"status": "ready", "model_version": found["version"]}

    @api.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @v1.post("/score", responses={200: {"model": ScoreResponse}})
    async def score(request: Request, explain: bool = False):
        """Score 1 to `max_events` OCSF events; one result per event, in input order."""
        body = ScoreRequest.model_validate_json(await read_body(request, settings.max_body_bytes))
        events = len(body.events)
        if events > settings.max_events:
            raise HTTPException(413, f"{events:,} events; at most {settings.max_events:,} per request")
        if explain and events > settings.max_explain_events:
            raise HTTPException(413, f"{events:,} events to explain; at most {settings.max_explain_events:,} per request")
        outcome = await gateway.score(body.events, explain)
        metrics.observe_batch(outcome.batch_size, outcome.first_in_batch)
        if outcome.error is not None:
            raise HTTPException(422, outcome.error)
        metrics.observe_results(outcome.results)
        return JSONResponse({"model_version": outcome.model_version, "results": outcome.results})

    @v1.get("/model", response_model=ModelInfo)
    async def model() -> dict:
        """The bundle serving: version, threshold percentile, families and feature counts."""
        return await gateway.describe()

    @v1.post("/reload", response_model=ModelInfo)
    async def reload(request: Request) -> dict:
        """Load another bundle on every scorer replica, then swap; on failure the old one
        keeps serving and the answer (422) says why."""
        body = ReloadRequest.model_validate_json(await read_body(request, settings.max_body_bytes))
        try:
            return await gateway.reload(body.model)
        except BundleError as err:
            raise HTTPException(422, f"bundle not loaded, the previous one keeps serving: {err}") from None

    api.include_router(v1)
    return api
