#!/usr/bin/env bash
# Side-by-side benchmark: the static `trainer` against the Python reference, whole processes.
#
#   scripts/bench-vs-sklearn.sh [--estimator NAME] [--sizes 1k,20k,100k,200k] [--pairs 5]
#                               [--warmup 1] [--no-build] [--trainer PATH] [--json FILE]
#   (--trainer defaults to the static build; with --no-build it must already exist)
#   scripts/bench-vs-sklearn.sh --growth [--rows 1k,...] [--features 10,...] [--pairs 3] ...
#
# Default mode: for each size (smaller first) it runs, round by round, the static trainer,
# `python main.py` (scripts/oracle/main.py, verbatim) and main.py with only `n_jobs=-1` added,
# then prints wall/CPU medians, paired trainer/reference ratios (per round, then the median),
# peak memory, and fails if any output file differs from the others.
# --estimator NAME (RandomForestClassifier, the default; RandomForestRegressor,
# ExtraTreesClassifier, ExtraTreesRegressor): the trainer runs with `--estimator NAME` and the
# reference is main.py with only the class name changed (and, second, n_jobs=-1 added). The
# regressors run on make_regression CSVs (fixed seed) of the same sizes, the classifiers on
# make_classification ones.
# --growth: the trainer alone over rows 1k..200k at 50 features and features 10..200 at
# 20k rows: median time and peak memory per CSV (to see how the cost grows).
#
# It creates the pinned virtualenv (.venv-oracle, scikit-learn 1.9.1, pandas 3.1.1), generates
# make_classification CSVs with fixed seeds into target/bench-data (gitignored, reused when
# present), and builds the static trainer with scripts/build-static.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="1k,20k,100k,200k"
estimator=RandomForestClassifier
pairs=5
warmup=1
build=1
growth=0
rows_list="1k,2k,5k,10k,20k,50k,100k,200k"
features_list="10,20,50,100,200"
growth_rows_fixed="20k"
trainer=""
json=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --estimator) estimator="$2"; shift 2 ;;
        --sizes) sizes="$2"; shift 2 ;;
        --pairs) pairs="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --trainer) trainer="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        --growth) growth=1; shift ;;
        --rows) rows_list="$2"; shift 2 ;;
        --features) features_list="$2"; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "bench-vs-sklearn: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# 1k -> 1000, 20k -> 20000, 250 -> 250
count() { local v="${1%k}"; [[ "$1" == *k ]] && echo $((v * 1000)) || echo "$v"; }

# Classifiers run on make_classification CSVs, regressors on make_regression ones; the default
# classifier runs as before (no --estimator flag).
case "$estimator" in
    RandomForestClassifier|ExtraTreesClassifier) kind=synth ;;
    RandomForestRegressor|ExtraTreesRegressor) kind=regression ;;
    *) echo "bench-vs-sklearn: unknown --estimator $estimator (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)" >&2; exit 2 ;;
esac
trainer_args=""
[[ "$estimator" != RandomForestClassifier ]] && trainer_args="--estimator $estimator"

# shellcheck source=scripts/oracle/venv.sh
source scripts/oracle/venv.sh
oracle_venv

if [[ $build -eq 1 ]]; then
    [[ -f scripts/build-static.sh ]] || { echo "bench-vs-sklearn: scripts/build-static.sh is missing" >&2; exit 1; }
    built="$(bash scripts/build-static.sh)"  # prints the binary's path
    trainer="${trainer:-$built}"
fi
trainer="${trainer:-target/x86_64-unknown-linux-gnu/release/trainer}"
[[ -x "$trainer" ]] || { echo "bench-vs-sklearn: no trainer binary at $trainer" >&2; exit 1; }

data=target/bench-data
mkdir -p "$data"
synth() { # rows features -> path (generated once; make_datasets.py writes atomically)
    local f="$data/${kind}_$1_$2.csv"
    if [[ ! -f "$f" ]]; then
        echo "bench-vs-sklearn: generating $f" >&2
        "$ORACLE_PY" scripts/oracle/make_datasets.py "$kind" "$1" "$2" "$f"
    fi
    echo "$f"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "trainer: $trainer ($(stat -c %s "$trainer") bytes); python: $("$ORACLE_PY" --version); $("$ORACLE_PY" -c 'import sklearn, pandas, numpy; print(f"scikit-learn {sklearn.__version__}, pandas {pandas.__version__}, numpy {numpy.__version__}")')"

if [[ $growth -eq 1 ]]; then
    csvs=()
    IFS=, read -ra rs <<<"$rows_list"
    for r in "${rs[@]}"; do csvs+=("$(synth "$(count "$r")" 50)"); done
    IFS=, read -ra fs <<<"$features_list"
    for f in "${fs[@]}"; do csvs+=("$(synth "$(count "$growth_rows_fixed")" "$f")"); done
    exec "$ORACLE_PY" scripts/oracle/bench.py growth "${csvs[@]}" --trainer "$trainer" --pairs "$pairs" \
        --trainer-args="$trainer_args"
fi

# The reference: main.py verbatim for the default classifier, else main.py with only the class
# name changed (its import and its call: two lines).
main_py=scripts/oracle/main.py
if [[ "$estimator" != RandomForestClassifier ]]; then
    main_py="$data/main_$estimator.py"
    sed "s/RandomForestClassifier/$estimator/" scripts/oracle/main.py >"$main_py"
    [[ "$(diff scripts/oracle/main.py "$main_py" | grep -c '^>')" -eq 2 ]] ||
        { echo "bench-vs-sklearn: could not derive main.py for $estimator" >&2; exit 1; }
fi
# That program with exactly one change more: n_jobs=-1 (the same cores as the trainer).
main_njobs="$data/main_${estimator}_njobs.py"
sed 's/random_state=0$/random_state=0, n_jobs=-1/' "$main_py" >"$main_njobs"
[[ "$(diff "$main_py" "$main_njobs" | grep -c '^>')" -eq 1 ]] &&
    grep -q 'n_jobs=-1' "$main_njobs" || { echo "bench-vs-sklearn: could not derive main.py with n_jobs=-1" >&2; exit 1; }
echo "estimator: $estimator (trainer ${trainer_args:-without --estimator}; reference $main_py)"

declare -A features=([1k]=20 [20k]=40 [100k]=50 [200k]=50)
csvs=()
IFS=, read -ra ss <<<"$sizes"
for s in "${ss[@]}"; do
    [[ -n "${features[$s]:-}" ]] || { echo "bench-vs-sklearn: unknown size $s (1k, 20k, 100k, 200k)" >&2; exit 2; }
    csvs+=("$(synth "$(count "$s")" "${features[$s]}")")
done
args=(pairs "${csvs[@]}" --trainer "$trainer" --trainer-args="$trainer_args"
      --python "$ORACLE_PY" --main-py "$main_py" --main-njobs "$main_njobs" --pairs "$pairs"
      --warmup "$warmup")
[[ -n "$json" ]] && args+=(--json "$json")
exec "$ORACLE_PY" scripts/oracle/bench.py "${args[@]}"
