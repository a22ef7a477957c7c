#!/usr/bin/env bash
# Build the trainer and the orchestrator (release) and run every CSV in a directory through the
# local backend. Same as `cargo run --release -p orchestrator -- run input_files`, with the
# trainer built explicitly first.
#
# Usage: scripts/run-local.sh [INPUT_DIR (input_files)] [orchestrator run flags] [-- trainer flags]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p trainer -p orchestrator
input_dir=${1:-input_files}
shift || true
exec target/release/orchestrator run "$input_dir" --trainer target/release/trainer "$@"
