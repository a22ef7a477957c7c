#!/usr/bin/env bash
# The project's one test command (README: "Run the tests"). CI runs it through .ci/run.
# It installs and starts every service the tests need, then runs the whole workspace's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Services used by integration tests. Each script is idempotent and fails loudly.
# A single-node Slurm cluster (Debian packages, no systemd) for tests/orchestrator/slurm.rs.
bash scripts/slurm-start.sh
# Azurite 3.37.0 (blob, HTTP :10000 and HTTPS --oauth basic :10001) for tests/azure_staging.
bash scripts/azurite.sh start all

cargo test --workspace --locked

# The wide fuzz against scikit-learn, at a small size (a minute or two, most of it building the
# pinned oracle venv from PyPI the first time): parsing corner cases, then damaged bytes (never a
# panic, abort or hang; one-line errors). `cargo test` itself never needs Python.
# shellcheck source=scripts/oracle/venv.sh
source scripts/oracle/venv.sh
oracle_venv
"$ORACLE_PY" scripts/oracle/fuzz_compare.py --trainer target/debug/trainer --trials 30 --mutate --seed 11
"$ORACLE_PY" scripts/oracle/fuzz_compare.py --trainer target/debug/trainer --trials 30 --hostile --seed 12
