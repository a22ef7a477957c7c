#!/usr/bin/env bash
# Regenerates the reference data with the pinned Python stack (scikit-learn 1.9.1, pandas 3.1.1):
#   input_files/*.csv            sample scenarios           (scripts/oracle/make_datasets.py)
#   tests/fixtures/trainer/*.csv edge-case CSVs             (scripts/oracle/golden.py)
#   tests/golden/cases.json      expected trainer results   (scripts/oracle/golden.py)
#   tests/golden/sweep.json      expected sweep scores      (scripts/oracle/sweep_golden.py)
#   tests/fixtures/regression/*.csv, tests/golden/estimators.json
#                                --estimator cases          (scripts/oracle/estimator_golden.py)
# Deterministic: running it again on the same stack leaves `git diff` empty.
# Python is the test oracle only; `cargo test` reads the committed files and never needs it.
# Usage: scripts/regen-golden.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/oracle/venv.sh
source scripts/oracle/venv.sh
oracle_venv

"$ORACLE_PY" scripts/oracle/make_datasets.py samples input_files
if [[ -f scripts/oracle/golden.py ]]; then
    "$ORACLE_PY" scripts/oracle/golden.py
fi
"$ORACLE_PY" scripts/oracle/sweep_golden.py
"$ORACLE_PY" scripts/oracle/estimator_golden.py
