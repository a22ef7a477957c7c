"""Write tests/golden/sweep.json: scikit-learn's score for each input x grid setting that the
orchestrator's sweep tests run (local, Slurm and Azure Batch backends).

Each entry: csv (a name under input_files/), setting (swept flag -> the grid token: a value,
"none" = flag left out, "on"/"off" for a flag without a value), args (the trainer flags that
setting means, in the space-separated form golden.py understands) and output, computed as
golden.py computes every case: `cross_val_score(RandomForestClassifier(**params), X, y,
cv=5).mean()` on `pd.read_csv(csv, index_col=0)`.

The grid is the full product below (16 settings x 3 inputs); each backend's test sweeps a
subset of 8 settings with `--grid`.

Usage: python sweep_golden.py   (run through scripts/regen-golden.sh, which pins the stack)
"""

import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden import ROOT, run_reference  # noqa: E402

GOLDEN_PATH = "tests/golden/sweep.json"
INPUTS = ["breast_cancer.csv", "iris.csv", "wine.csv"]
# Flag -> grid tokens, in grid order.
GRID = [
    ("n-estimators", ["5", "20"]),
    ("max-depth", ["none", "3"]),
    ("criterion", ["gini", "entropy"]),
    ("no-bootstrap", ["off", "on"]),
]


def setting_args(setting):
    """Grid tokens -> trainer flags: none/off leave the flag out, on passes it alone."""
    args = []
    for flag, token in setting.items():
        if token in ("none", "off"):
            continue
        args.append(f"--{flag}")
        if token != "on":
            args.append(token)
    return args


def main():
    entries = []
    for csv in INPUTS:
        for values in itertools.product(*(tokens for _, tokens in GRID)):
            setting = dict(zip((flag for flag, _ in GRID), values))
            args = setting_args(setting)
            status, output, warning, error = run_reference(f"input_files/{csv}", args)
            if status != "ok" or warning:
                raise SystemExit(f"{csv} {args}: expected a clean score, got {status} {error or warning}")
            entries.append(dict(csv=csv, setting=setting, args=args, output=output))
            print(f"{csv:20} {' '.join(args):55} {output}")
    path = os.path.join(ROOT, GOLDEN_PATH)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(entries, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {len(entries)} entries to {GOLDEN_PATH}")


if __name__ == "__main__":
    main()
