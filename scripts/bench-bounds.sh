#!/usr/bin/env bash
# Peak resident memory of the trainer on the inputs issue 11 names: 17M short rows, 10^6
# columns, 10k classes, and a 2 GB sparse file (40 rows, then a hole). Prints one markdown table
# row per input: bytes, rows x features, the float32 feature matrix, exit code, wall seconds and
# peak RSS (GNU time's "Maximum resident set size", i.e. wait4's ru_maxrss).
# Usage: scripts/bench-bounds.sh [--trainer PATH]   (default: builds target/release/trainer)
set -euo pipefail
cd "$(dirname "$0")/.."
trainer=""
if [[ "${1:-}" == "--trainer" ]]; then trainer="$2"; fi
if [[ -z "$trainer" ]]; then
    cargo build --release -p trainer >&2
    trainer=target/release/trainer
fi
dir=target/bench-bounds
mkdir -p "$dir"

# Inputs (made once; awk keeps this free of Python).
[[ -f $dir/rows17m.csv ]] || awk 'BEGIN { print "i,a,y"; for (i = 0; i < 17000000; i++) print i "," i % 10 "," i % 3 }' >"$dir/rows17m.csv"
[[ -f $dir/cols1m.csv ]] || awk 'BEGIN { n = 1000000; printf "i"; for (j = 0; j < n; j++) printf ",c%d", j; print ",y";
    for (r = 0; r < 20; r++) { printf "%d", r; for (j = 0; j < n; j++) printf ",%d", (r * 7 + j) % 5; print "," r % 2 } }' >"$dir/cols1m.csv"
[[ -f $dir/classes10k.csv ]] || awk 'BEGIN { print "i,a,b,y"; for (i = 0; i < 50000; i++) print i "," i % 97 "," i % 89 ",c" i % 10000 }' >"$dir/classes10k.csv"
if [[ ! -f $dir/sparse2g.csv ]]; then
    awk 'BEGIN { print ",a,b,y"; for (i = 0; i < 40; i++) print i "," i % 7 "," i % 11 "," i % 2 }' >"$dir/sparse2g.csv"
    truncate -s 2G "$dir/sparse2g.csv"
fi

echo "| input | bytes | rows x features | float32 matrix MiB | exit | wall s | peak RSS MiB |"
echo "|---|---:|---|---:|---:|---:|---:|"
for spec in "rows17m 17000000 1" "cols1m 20 1000000" "classes10k 50000 2" "sparse2g 40 2"; do
    read -r name rows feats <<<"$spec"
    csv=$dir/$name.csv
    log=$(mktemp)
    set +e
    /usr/bin/time -v "$trainer" "$csv" "$dir/$name.out" 2>"$log"
    rc=$?
    set -e
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$log")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.2f", s }' "$log")
    matrix=$(awk -v r="$rows" -v f="$feats" 'BEGIN { printf "%.1f", r * f * 4 / 1048576 }')
    echo "| $name.csv | $(stat -c %s "$csv") | $rows x $feats | $matrix | $rc | $wall | $rss |"
    rm -f "$log"
done
