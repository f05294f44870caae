"""The main job as library calls: featurize → train + index → score → explain →
evaluate → RCA → report, each stage a function that returns a typed result.

The CLI (`ocsf-ray run` and the per-stage verbs) and the Ray jobs (`jobs/*.py`) call
these functions and render what they return; nothing here prints. Long stages report
through `on_progress(step, done, total, detail)`: `step` names the stage ("ingest",
"features", "train", "index", "score", "rca", ...), `total` is None while unknown and
`detail` names the family or window being worked on. Ray must already be running
(`ocsf_ray.runtime.start_ray`).

Errors a user's input causes are raised as `ocsf_ray.io.InputError` (a ValueError)
with a one-line message, meant for the console as is.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ocsf_ray.checks import DEFAULT_PERCENTILE, featurized_families, found_ground_truth
from ocsf_ray.features import FeatureOptions, featurize_archive
from ocsf_ray.features.pipeline import FeaturizeResult
from ocsf_ray.index import IndexOptions, index_bundle, score_archive, score_featurized
from ocsf_ray.index.batch import ScoreRun
from ocsf_ray.io import InputError, read_events
from ocsf_ray.io.ingest import CanonicalArchive
from ocsf_ray.io.sources import filesystem_for, join_uri
from ocsf_ray.io.storage import copy_tree, exists, is_uri, read_json, remove
from ocsf_ray.rca import RcaOptions, run_rca, source_kinds
from ocsf_ray.rca.analysis import RcaRun
from ocsf_ray.train import TrainOptions, train_bundle
from ocsf_ray.train.manifest import Manifest

Progress = Callable[..., None]  # on_progress(step: str, done: int, total: int | None, detail: str = "")
FEATURIZE_OUTPUTS = ["canonical", "features", "rejects", "feature_spec.json"]
SCORE_OUTPUTS = ["canonical", "features", "rejects", "scores", "feature_spec.json", "explanations.json"]
RUN_SCORE_OUTPUTS = ["scores", "explanations.json", "evaluation.json"]


def _silent(step: str, done: int, total: int | None, detail: str = "") -> None:
    """The default progress callback: report nothing."""


def clear_outputs(out: str, names: list[str]) -> None:
    """Remove what an earlier run of the same stage left under `out` (local or URI), so
    counts never mix two runs."""
    for name in names:
        remove(join_uri(out, name))


def demo_archive(target: str, events: int, seed: int) -> str:
    """Generate a synth archive (`ocsf_ray.synth`) at `target` and return its events
    directory; on cluster storage it is generated locally first and uploaded, so every
    node reads it from there."""
    from ocsf_ray.synth import SynthConfig, generate_archive

    if not is_uri(target):
        generate_archive(SynthConfig(out=target, events=events, seed=seed, overwrite=True))
    else:
        with tempfile.TemporaryDirectory(prefix="ocsf-ray-demo-") as local:
            generate_archive(SynthConfig(out=local, events=events, seed=seed, overwrite=True))
            remove(target)
            copy_tree(local, target)
    return join_uri(target, "events")


def ingest(inputs: list[str], out: str, on_progress: Progress = _silent) -> CanonicalArchive:
    """Read OCSF files, directories or globs into canonical events under `<out>/canonical`
    (malformed rows to `<out>/rejects`), see `ocsf_ray.io.read_events`."""
    return read_events(inputs, out, on_progress=lambda done, total: on_progress("ingest", done, total))


@dataclass
class Featurized:
    """What `featurize` made: the ingested archive, a FeatureSpec and row count per family."""

    archive: CanonicalArchive
    features: FeaturizeResult
    elapsed_s: float


def featurize(inputs: list[str], out: str, options: FeatureOptions = FeatureOptions(),
              on_progress: Progress = _silent) -> Featurized:
    """Ingest, fit a FeatureSpec per family and write `<out>/features/<family>/*.parquet`
    and `<out>/feature_spec.json`, replacing an earlier run's."""
    clear_outputs(out, FEATURIZE_OUTPUTS)
    started = time.perf_counter()
    archive = ingest(inputs, out, on_progress)
    result = featurize_archive(archive, out, options,
                               on_progress=lambda family, done, total: on_progress("features", done, total, family))
    return Featurized(archive, result, time.perf_counter() - started)


@dataclass
class Trained:
    """A trained and indexed bundle: its path, manifest and each family's index summary
    (kind, reference rows, recall@k, distance percentiles; see `ocsf_ray.index.index_bundle`)."""

    bundle: str
    manifest: Manifest
    index: dict[str, dict]


def train(features: str, bundle: str, options: TrainOptions = TrainOptions(), index_options: IndexOptions = IndexOptions(),
          workers: int = 2, use_gpu: bool | None = None, resume: bool = False, families: list[str] | None = None,
          on_progress: Progress = _silent) -> Trained:
    """Pretrain a TabularResNet per family of a `featurize` output (SCARF + NT-Xent on Ray
    Train), index each family's reference with FAISS and write the bundle at `bundle`.
    Raises InputError when no family has enough rows to train on."""
    result = train_bundle(features, bundle, options, workers=workers, use_gpu=use_gpu, resume=resume,
                          families=families or None,
                          on_family=lambda name, done, total: on_progress("train", done, total, name))
    if not result.manifest.families:
        raise InputError(f"no family had enough rows to train on: {result.manifest.skipped}")
    built = index_bundle(bundle, features, index_options,
                         on_family=lambda name, done, total: on_progress("index", done, total, name))
    return Trained(bundle, result.manifest, built)


@dataclass
class Tuned:
    """A sweep's trials (hyperparameters, epochs, best validation top-1) and the manifest
    of the best trial's bundle."""

    family: str
    rows: int
    manifest: Manifest
    trials: list[dict]


def tune(sweep, features: str, out: str, family: str | None = None, on_progress: Progress = _silent) -> Tuned:
    """Sweep hyperparameters of one family (default: the largest) with Ray Tune (ASHA),
    export the best trial as a bundle at `out` and index it. Raises InputError when
    `features` is not a featurize output or holds no such family."""
    from ocsf_ray.tune import run_sweep

    found = featurized_families(features)
    if family and family not in found:
        raise InputError(f"unknown family {family}; found {', '.join(found)}")
    chosen = found[family] if family else max(found.values(), key=lambda f: f.rows)
    on_progress("tune", 0, sweep.trials, f"{chosen.family} ({chosen.rows:,} rows)")
    manifest, trials = run_sweep(sweep, chosen, out)
    on_progress("index", 0, None, "the best trial's reference embeddings")
    index_bundle(out, features, IndexOptions())
    return Tuned(chosen.family, chosen.rows, manifest, trials)


@dataclass
class Scored:
    """Scores written under `<out>/scores/`, with the top events' explanations."""

    run: ScoreRun
    explanations: list[dict]
    archive: CanonicalArchive | None = None  # when the stage ingested its inputs
    elapsed_s: float = 0.0


def explain(bundle: str, out: str, top: int) -> list[dict]:
    """Explain the `top` highest-scored events of `<out>/scores` (neighbours and the
    features that set them apart) and write `<out>/explanations.json`."""
    from ocsf_ray.index.triage import explain_top, write_explanations

    explanations = explain_top(bundle, out, top)
    write_explanations(explanations, out)
    return explanations


def score(inputs: list[str], bundle: str, out: str, percentile: float = DEFAULT_PERCENTILE, explain_top: int = 20,
          on_progress: Progress = _silent) -> Scored:
    """Ingest and score every event with a bundle (its own FeatureSpecs, never refitted),
    then explain the top `explain_top`; families the bundle does not know are written
    with empty scores. Replaces an earlier run's outputs under `out`."""
    clear_outputs(out, SCORE_OUTPUTS)
    started = time.perf_counter()
    archive = ingest(inputs, out, on_progress)
    run = score_archive(bundle, archive, out, percentile,
                        on_progress=lambda family, done, total: on_progress("score", done, total, family))
    return Scored(run, explain(bundle, out, explain_top), archive, time.perf_counter() - started)


def evaluate(out: str, labels: str) -> dict:
    """AUROC, AUPRC, precision@k and recall of `<out>/scores` against ground truth labels,
    beside the baselines of `ocsf_ray.evaluate`; written to `<out>/evaluation.json`.
    Raises InputError when `out` holds no scores or the labels are missing."""
    from ocsf_ray.evaluate import evaluate_run, write_evaluation
    from ocsf_ray.io.storage import parquet_files

    if not parquet_files(join_uri(out, "scores"))[0]:
        raise InputError(f"no scores under {out}/scores/: run `ocsf-ray score` or `ocsf-ray run` first")
    if not exists(labels):
        raise InputError(f"labels not found: {labels}")
    result = evaluate_run(join_uri(out, "scores"), labels, features_root=out)
    write_evaluation(result, join_uri(out, "evaluation.json"))
    return result


def rca(archive: CanonicalArchive, out: str, scores: str | None = None, dependencies: str | None = None,
        incidents: str | None = None, options: RcaOptions = RcaOptions(), on_progress: Progress = _silent) -> RcaRun:
    """Root causes of the archive's incident windows under `<out>/rca/`, from its signals
    and, when given, the share of flagged events in a scores directory; evaluated against
    an incidents.json when given (see `ocsf_ray.rca.run_rca`)."""
    from ocsf_ray.io.storage import parquet_files

    # Ray Data reads them on any node: whole URIs, not paths inside the filesystem
    score_files = [filesystem_for(scores)[2] + path for path in parquet_files(scores)[0]] if scores else []
    truth = read_json(incidents) if incidents else None
    on_progress("rca", 0, None, "signals")
    return run_rca(archive, out, score_files, dependencies, truth, options,
                   on_progress=lambda done, total: on_progress("rca", done, total, "windows"))


def report(out: str, trained: Trained, archive: CanonicalArchive, percentile: float, explanations: list[dict],
           evaluation: dict | None, elapsed_s: float) -> str:
    """Write `<out>/report.html` (summary, score distribution, embedding map, top
    anomalies, evaluation) and return its path."""
    from ocsf_ray.index.triage import embedding_sample, read_scores, score_counts
    from ocsf_ray.report import ReportInputs, lowest_flagged, write_report

    counts = score_counts(out)
    scores = read_scores(out, ["metadata_uid", "time", "family", "service", "anomaly_score", "percentile", "is_anomaly"], 1_000_000)
    families = trained.manifest.families
    largest = max(families, key=lambda f: families[f].rows)
    embeddings, embedded_scores, flagged = embedding_sample(trained.bundle, out, largest, 1500, percentile)
    summary = [
        ("events read", f"{archive.rows_read:,}"), ("accepted", f"{archive.accepted:,}"),
        ("rejected", f"{archive.rejected:,}"), ("duplicate metadata_uid", f"{archive.duplicate_uids:,}"),
        ("families", str(len(archive.families))),
        ("scored", f"{int(counts['scored'].sum()):,}"), ("flagged", f"{int(counts['flagged'].sum()):,}"),
        ("threshold", f"percentile {percentile:g} of each family's reference scores"),
        ("model bundle", f"{trained.bundle} (version {trained.manifest.version})"),
        ("elapsed", f"{elapsed_s:.0f} s"),
    ]
    return write_report(out, ReportInputs(
        title=f"ocsf-ray run: {out}", summary=summary, scores=scores,
        threshold_score=lowest_flagged(scores), threshold_percentile=percentile, top=explanations,
        embedding_sample=embeddings, embedding_scores=embedded_scores, embedding_flagged=flagged, evaluation=evaluation,
        embedding_family=largest,
    ))


@dataclass(frozen=True)
class PipelineOptions:
    """Settings of the main job; each stage's own options keep their defaults there.

    train: the demo-sized default (3 epochs of at most 40 batches): `ocsf-ray train`
        trains longer (`TrainOptions`' defaults).
    percentile: flag events above this percentile of their family's reference scores.
    explain_top: explain this many top-scored events.
    labels / incidents: ground truth (labels.parquet, incidents.json); found beside a
        synth archive when not given.
    demo_events / demo_seed: the archive generated when the pipeline is given no input.
    """

    features: FeatureOptions = field(default_factory=FeatureOptions)
    train: TrainOptions = field(default_factory=lambda: TrainOptions(epochs=3, max_batches_per_epoch=40))
    index: IndexOptions = field(default_factory=IndexOptions)
    rca: RcaOptions = field(default_factory=RcaOptions)
    workers: int = 2
    use_gpu: bool | None = None
    percentile: float = DEFAULT_PERCENTILE
    explain_top: int = 20
    labels: str | None = None
    incidents: str | None = None
    demo_events: int = 200_000
    demo_seed: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.explain_top < 0 or self.demo_events < 1:
            raise ValueError("need workers >= 1, explain_top >= 0 and demo_events >= 1")
        if not 0 < self.percentile < 100:
            raise ValueError("--percentile must be between 0 and 100")


@dataclass
class PipelineResult:
    """Everything the main job made, stage by stage; `rca` is None for single-source
    archives, `evaluation` when no labels were found."""

    inputs: list[str]
    featurized: Featurized
    trained: Trained
    scored: Scored
    evaluation: dict | None
    rca: RcaRun | None
    report: str
    elapsed_s: float


def run_pipeline(inputs: list[str] | None, out: str, options: PipelineOptions = PipelineOptions(),
                 on_progress: Progress = _silent) -> PipelineResult:
    """The main job over OCSF files, directories or globs (local or cluster storage), or
    over a generated demo archive (`<out>/archive`) when `inputs` is empty. Writes under
    `out`: features/, bundle/, scores/, explanations.json, evaluation.json (with ground
    truth), rca/ (with more than one kind of source) and report.html."""
    if options.labels and not exists(options.labels):
        raise InputError(f"labels not found: {options.labels}")
    started = time.perf_counter()
    if not inputs:
        archive_dir = join_uri(out, "archive")
        on_progress("demo archive", 0, None, f"{options.demo_events:,} events in {archive_dir}")
        inputs = [demo_archive(archive_dir, options.demo_events, options.demo_seed)]
        on_progress("demo archive", 1, 1)
    featurized = featurize(inputs, out, options.features, on_progress)
    trained = train(out, join_uri(out, "bundle"), options.train, options.index, options.workers, options.use_gpu,
                    on_progress=on_progress)
    clear_outputs(out, RUN_SCORE_OUTPUTS)
    run = score_featurized(trained.bundle, out, out, options.percentile,
                           on_progress=lambda family, done, total: on_progress("score", done, total, family))
    scored = Scored(run, explain(trained.bundle, out, options.explain_top))
    labels = options.labels or found_ground_truth(inputs)
    evaluation = evaluate(out, labels) if labels else None
    found = None
    if len(source_kinds(featurized.archive)) > 1:
        found = rca(featurized.archive, out, join_uri(out, "scores"), None,
                    options.incidents or found_ground_truth(inputs, "incidents.json"), options.rca, on_progress)
    path = report(out, trained, featurized.archive, options.percentile, scored.explanations, evaluation,
                  time.perf_counter() - started)
    return PipelineResult(inputs, featurized, trained, scored, evaluation, found, path, time.perf_counter() - started)


@dataclass
class Monitored:
    """A drift report (`ocsf_ray.monitor.monitor_archive`) with the challenger's outcome
    when retraining was asked for, the current archive and where the report was written."""

    report: dict
    archive: CanonicalArchive
    path: str


def monitor(model: str, current: list[str], out: str, options, retrain: bool = False, settings: TrainOptions | None = None,
            workers: int = 2, on_progress: Progress = _silent) -> Monitored:
    """Check a bundle against current OCSF data for drift under `<out>/monitor/`; with
    `retrain`, train a challenger with `settings` and keep the better bundle
    (`ocsf_ray.monitor`, docs/MONITORING.md)."""
    from ocsf_ray.monitor import monitor_archive, retrain_challenger, write_report

    root = join_uri(out, "monitor")
    clear_outputs(root, ["current", "challenger-data", "challenger", "report.json"])
    archive = ingest(current, join_uri(root, "current"), on_progress)
    report = monitor_archive(model, archive, root, options,
                             on_progress=lambda what, done, total: on_progress("monitor", done, total, what))
    if retrain:
        report["challenger"] = retrain_challenger(
            model, archive, root, options, settings, workers,
            on_progress=lambda what, done, total: on_progress("retrain", done, total, what))
    return Monitored(report, archive, write_report(report, root))
