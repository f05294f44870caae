"""Pretraining on a real local Ray: 2 CPU workers learn, resume continues, bundles embed."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from ocsf_ray.io import IngestOptions, canonicalize, plan_chunks, read_chunk, resolve_inputs
from ocsf_ray.train import TrainOptions, load_bundle, train_bundle
from ocsf_ray.train.manifest import Manifest
from ocsf_shapes import api_events

OPTIONS = TrainOptions(epochs=6, batch_size=32, d_model=32, n_blocks=2, embedding_dim=16,
                       val_batch_size=64, min_rows=200, patience=10, learning_rate=3e-3)


@pytest.fixture(scope="module")
def trained(featurized, tmp_path_factory):
    bundle = str(tmp_path_factory.mktemp("bundle"))
    return train_bundle(featurized, bundle, OPTIONS, workers=2)


def test_two_workers_lower_the_loss_and_beat_the_untrained_model(trained):
    history = trained.runs["6003_log"].history
    untrained, epochs = history[0], history[1:]
    assert untrained["epoch"] == -1 and [m["epoch"] for m in epochs] == list(range(OPTIONS.epochs))
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert max(m["val_top1"] for m in epochs) > untrained["val_top1"]
    assert all(m["samples_per_s"] > 0 for m in epochs)
    manifest = trained.manifest
    assert manifest.families["6003_log"].train_rows + manifest.families["6003_log"].val_rows == 1500
    assert "torch" in manifest.libraries and manifest.version
    assert Manifest.read(trained.path) == manifest  # what was written reads back the same


def test_resume_continues_where_it_stopped(featurized, object_store, tmp_path):
    """With the bundle on cluster storage (S3): Ray Train's checkpoints, the resume point
    and the bundle are all read and written there (a local bundle takes the same code
    through pyarrow's local filesystem, as every other test here does)."""
    bundle = f"{object_store}/{tmp_path.name}"
    first = train_bundle(featurized, bundle, TrainOptions(**{**OPTIONS.to_dict(), "epochs": 2}), workers=2)
    resumed = train_bundle(featurized, bundle, TrainOptions(**{**OPTIONS.to_dict(), "epochs": 3}), workers=2, resume=True)
    before, after = first.runs["6003_log"].history, resumed.runs["6003_log"].history
    assert [m["epoch"] for m in after] == [-1, 0, 1, 2]
    assert after[:3] == before  # the first two epochs were not redone
    assert load_bundle(bundle).families["6003_log"].model.config.embedding_dim == OPTIONS.embedding_dim


def test_bundle_embeds_new_events_with_its_own_spec(trained, tmp_path):
    bundle = load_bundle(trained.path)
    model = bundle.families["6003_log"]
    path = tmp_path / "new.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in api_events(40, seed=99)) + "\n")
    (chunk,) = plan_chunks(resolve_inputs([str(path)]))
    flat, _ = read_chunk(chunk)
    events, _ = canonicalize(flat, str(path), IngestOptions())
    embeddings = model.embed_events(events)
    assert embeddings.shape == (40, OPTIONS.embedding_dim)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)
    again = load_bundle(trained.path).families["6003_log"].embed_events(events)
    assert np.allclose(embeddings, again, atol=1e-6)  # eval mode: deterministic
    assert not np.allclose(embeddings[0], embeddings[1])


def test_a_family_too_small_for_an_encoder_is_scored_by_its_feature_terms(featurized, tmp_path):
    """Below min_rows no encoder is trained, but the family is indexed and every event is
    scored by its feature k-NN and field rarity (its embedding is its feature vector)."""
    from ocsf_ray.features.transform import feature_vectors
    from ocsf_ray.index import FamilyScorer, IndexOptions, index_bundle

    bundle = str(tmp_path / "b")
    result = train_bundle(featurized, bundle, TrainOptions(**{**OPTIONS.to_dict(), "min_rows": 10**6}))
    info = result.manifest.families["6003_log"]
    assert info.encoder is False and "min_rows" in info.note and result.manifest.skipped == {}
    index_bundle(bundle, featurized, IndexOptions())
    scorer = FamilyScorer.load(bundle, "6003_log")
    assert not scorer.model.has_encoder and set(scorer.index.calibration.terms) == {"features", "rarity"}
    features = pl.read_parquet(f"{featurized}/features/6003_log/")
    np.testing.assert_array_equal(scorer.model.embed_features(features), feature_vectors(features, scorer.model.spec))
    scored = scorer.score(features)
    assert scored["anomaly_score"].null_count() == 0 and scored["knn_distance"].null_count() == features.height
    assert 0.005 <= scored["is_anomaly"].mean() <= 0.03


def test_manifests_of_another_schema_version_are_refused_in_one_line(tmp_path):
    """A manifest without `schema_version` (bundles before it existed) reads as version 1;
    one from a newer ocsf-ray, or one that does not fit the schema, is refused with a
    message naming the versions, and the CLI says it in one line."""
    from ocsf_ray.checks import indexed_manifest
    from ocsf_ray.io import InputError
    from ocsf_ray.train.manifest import SCHEMA_VERSION, BundleVersionError

    legacy = {"version": "v1", "created": "2026-11-01T00:00:00+00:00", "skipped": {}, "train_options": {"workers": 3},
              "families": {"6003_log": {"rows": 900, "train_rows": 800, "val_rows": 100, "val_top1": 0.5}},
              "index": {"options": {"k": 20}, "families": {"6003_log": {"kind": "flat"}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(legacy))
    manifest = indexed_manifest(str(tmp_path))
    assert manifest.schema_version == 1 and manifest.workers == 3 and manifest.encoded_families == ["6003_log"]
    (tmp_path / "manifest.json").write_text(json.dumps(legacy | {"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(BundleVersionError, match=f"schema version {SCHEMA_VERSION + 1}; this ocsf-ray reads"):
        Manifest.read(str(tmp_path))
    with pytest.raises(InputError, match="upgrade ocsf-ray"):
        indexed_manifest(str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps(legacy | {"families": {"6003_log": {"rows": "many"}}}))
    with pytest.raises(BundleVersionError, match="families.6003_log.rows"):
        Manifest.read(str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "ocsf_ray.cli", "score", str(tmp_path), "--model", str(tmp_path),
                             "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "does not fit" in result.stderr
