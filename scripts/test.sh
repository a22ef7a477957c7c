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
