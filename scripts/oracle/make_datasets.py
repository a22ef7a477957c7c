"""Write the sample scenario CSVs (input_files/) and synthetic benchmark CSVs.

Every CSV has pandas' default `to_csv` layout: an unnamed index column first, named feature
columns, the class label last. Floats are written by pandas as Python's shortest round-trip
repr, so the values read back are exactly the generated float64 values.

Usage:
    python make_datasets.py samples OUT_DIR
        iris, iris_str, wine, breast_cancer, digits, synth_1k_20 into OUT_DIR.
    python make_datasets.py synth ROWS FEATURES OUT_CSV
        one make_classification CSV with a fixed seed (see `synth_params`).
    python make_datasets.py regression ROWS FEATURES OUT_CSV
        one make_regression CSV with a fixed seed (see `regression_frame`), float target last.

All output is deterministic: same stack (scripts/oracle/requirements.txt), same bytes.
"""

import os
import sys

import numpy as np
import pandas as pd
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
    make_regression,
)

SEED = 42

# The benchmark sizes named in the issues, with the generator settings the measurement notes used.
NAMED_SYNTH = {
    (1_000, 20): dict(n_classes=2, n_informative=10, n_redundant=4),
    (20_000, 40): dict(n_classes=3, n_informative=20, n_redundant=6),
    (100_000, 50): dict(n_classes=5, n_informative=25, n_redundant=8),
    (200_000, 50): dict(n_classes=5, n_informative=25, n_redundant=8),
}


def synth_params(rows: int, features: int) -> dict:
    """Generator settings for a rows x features set: the named sizes, else a fixed rule."""
    if (rows, features) in NAMED_SYNTH:
        extra = NAMED_SYNTH[(rows, features)]
    elif features == 50:
        # Growth in rows at 50 features uses the 100k x 50 settings.
        extra = NAMED_SYNTH[(100_000, 50)]
    else:
        extra = dict(
            n_classes=3, n_informative=max(2, features // 2), n_redundant=features // 6
        )
    return dict(
        n_samples=rows,
        n_features=features,
        random_state=SEED,
        n_clusters_per_class=2,
        class_sep=1.0,
        **extra,
    )


def synth_frame(rows: int, features: int) -> pd.DataFrame:
    X, y = make_classification(**synth_params(rows, features))
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    df["label"] = y
    return df


def regression_frame(rows: int, features: int) -> pd.DataFrame:
    """make_regression with half the features informative, noise 10 and the fixed seed."""
    X, y = make_regression(
        n_samples=rows, n_features=features, n_informative=max(1, features // 2), noise=10.0,
        random_state=SEED,
    )
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    df["target"] = y
    return df


def bunch_frame(bunch) -> pd.DataFrame:
    df = pd.DataFrame(bunch.data, columns=[str(c) for c in bunch.feature_names])
    df["target"] = bunch.target
    return df


def sample_frames() -> dict:
    iris = load_iris()
    iris_str = bunch_frame(iris)
    iris_str["target"] = np.asarray(iris.target_names)[iris.target]
    return {
        "iris": bunch_frame(iris),
        "iris_str": iris_str,
        "wine": bunch_frame(load_wine()),
        "breast_cancer": bunch_frame(load_breast_cancer()),
        "digits": bunch_frame(load_digits()),
        "synth_1k_20": synth_frame(1_000, 20),
    }


def main(argv: list) -> int:
    if len(argv) == 3 and argv[1] == "samples":
        out = argv[2]
        os.makedirs(out, exist_ok=True)
        for name, df in sample_frames().items():
            df.to_csv(os.path.join(out, f"{name}.csv"))
        return 0
    if len(argv) == 5 and argv[1] in ("synth", "regression"):
        rows, features, out = int(argv[2]), int(argv[3]), argv[4]
        frame = synth_frame if argv[1] == "synth" else regression_frame
        tmp = out + ".tmp"
        frame(rows, features).to_csv(tmp)
        os.replace(tmp, out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
