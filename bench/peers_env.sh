#!/usr/bin/env bash
# Peer RCA methods for bench/rca.py, installed beside (not into) our environment.
#
# Peers (their own published code, from the package registry pip is configured with):
#   rcaeval==1.8.1     RCAEval (Pham et al., https://github.com/phamquiluan/RCAEval)
#   sfr-pyrca==1.0.1   Salesforce PyRCA (https://github.com/salesforce/PyRCA)
# Their declared dependencies conflict with ours (sfr-pyrca pins scikit-learn<1.2,
# rcaeval's extras pin numpy<2, networkx==2.5, torch==1.12 ...), so they go with
# `pip install --no-deps --target .bench-peers/` plus only the small pure-Python
# packages they need to import. Bench code *appends* .bench-peers to sys.path, so our
# numpy, pandas, scikit-learn, networkx and scipy are the ones used.
#
# What imports and runs here (Python 3.11, numpy 2, pandas 3, scikit-learn 1.9):
#   runs   RCAEval.e2e.baro.baro, RCAEval.e2e.nsigma           (metrics + inject time)
#   runs   RCAEval.e2e.circa.circa   PC (causal-learn) + regression hypothesis testing;
#          slow on wide frames, see bench/rca_peers.py for the time per case
#   FAILS  RCAEval.e2e.rcd.rcd: imports, but calls SkeletonDiscovery.local_skeleton_discovery,
#          which only RCD's authors' patched causal-learn has (RCAEval's repo links it in
#          by a script); causal-learn 0.1.2.3 (its pin) and 0.1.4.8 lack it.
#   runs   pyrca.analyzers.ht.HT, pyrca.analyzers.epsilon_diagnosis.EpsilonDiagnosis,
#          pyrca.analyzers.random_walk.RandomWalk, pyrca.simulation.data_gen
#   not installed: PyRCA's javabridge (only for its Tetrad-based graph learners, not
#          used), plotly/dash (dashboard), RCAEval's torch/dgl methods (not used).
# Extra deps and why: setuptools<81 (pyrca/__init__ imports pkg_resources, gone in
# setuptools>=81), tqdm (RCAEval.utility; requests we have), dill + schema (pyrca.base,
# pyrca.utils.domain), causal-learn + momentchi2 + pydot + graphviz (RCAEval.e2e imports
# rcd, circa -> causallearn and its module-level imports), statsmodels + patsy (CIRCA:
# RCAEval.graph_construction/__init__ imports its Granger module; the only compiled
# extra, a no-deps wheel that works with our numpy/scipy/pandas).
#
#   bash bench/peers_env.sh            # idempotent; a second run is a no-op
#   PIP=/path/to/pip bash bench/peers_env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="$ROOT/.bench-peers"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
PACKAGES=(  # extras pinned to the versions this was checked with
  "rcaeval==1.8.1"
  "sfr-pyrca==1.0.1"
  "setuptools==80.10.2"
  "tqdm==4.70.1"
  "dill==0.4.1"
  "schema==0.7.8"
  "causal-learn==0.1.4.8"
  "momentchi2==0.1.8"
  "pydot==4.0.1"
  "graphviz==0.21"
  "statsmodels==0.15.0"
  "patsy==1.0.3"
)
STAMP="$TARGET/.installed"
WANT="$(printf '%s\n' "${PACKAGES[@]}")"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "peers already installed in $TARGET"
  exit 0
fi

rm -rf "$TARGET"
"$PIP" install --quiet --disable-pip-version-check --no-deps --target "$TARGET" "${PACKAGES[@]}"
# the wheels' stray top-level `tests`/`docs` folders and console scripts are not needed
rm -rf "$TARGET/tests" "$TARGET/docs" "$TARGET/bin"
printf '%s\n' "$WANT" > "$STAMP"
echo "peers installed in $TARGET"
