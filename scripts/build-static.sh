#!/usr/bin/env bash
# Builds a statically linked `trainer` (glibc, crt-static) with the installed toolchain alone
# and prints the binary's path on stdout (cargo's progress goes to stderr).
# `--target` keeps crt-static away from build scripts and proc-macros.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -p trainer --target "$TARGET" >&2
echo "$(pwd)/target/$TARGET/release/trainer"
