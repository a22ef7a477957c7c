"""Write the regression fixtures and the golden results for `--estimator` (issue 14).

Outputs (paths relative to the repo root):
  tests/fixtures/regression/*.csv   regression CSVs: real data shipped inside the scikit-learn
                                    package (no download) and synthetic edge cases, fixed seeds
  tests/golden/estimators.json      one object per case, the schema of tests/golden/cases.json

Every case runs golden.run_reference, the in-process reference behind cases.json:
    cross_val_score(Estimator(**params), X, y, cv=K, scoring=...)
with Estimator from `--estimator` (its own defaults for everything the flags leave unset:
max_features 1.0 for the regressors, bootstrap off for extra trees; n_estimators 10 and
random_state 0 as main.py). cross_val_score picks KFold (no shuffle) for a regressor and
StratifiedKFold for a classifier; y is pandas' last column as read (float or int64 for the
regressors).

An ok case whose fold scores are all finite carries them ("fold_scores"): the trainer's
--json report must hold the same doubles (kept as Python reprs: text, so no JSON reader rounds
them). A case may carry "error_mentions": the text its one-line error must contain instead of the
CSV's file name (a flag the estimator refuses, such as --criterion gini on a regressor).
A classification scorer on a regressor is refused (golden.run_reference_folds says why).

Only cases whose features are on main are written: LANDED names them (estimator class names,
regression criteria, "--bootstrap"). Add a name when the trainer gains it and rerun
scripts/regen-golden.sh; the others are listed as withheld.

Usage: python estimator_golden.py             (run through scripts/regen-golden.sh)
       python estimator_golden.py --all FILE   every case, landed or not, into FILE (to check
                                               a feature before it lands; estimators.json and
                                               the fixtures are written as usual)
"""

import math
import os
import sys

import numpy as np
from sklearn.datasets import (
    load_diabetes,
    load_iris,
    load_linnerud,
    load_wine,
    make_friedman1,
    make_regression,
)

sys.dont_write_bytecode = True  # importing golden.py must not leave __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden import (  # noqa: E402
    FIXTURE_DIR, REGRESSION_SCORERS, ROOT, SCORERS, csv_bytes, exit_status, fmt,
    run_reference_folds, write_fixtures, write_json,
)

REG_DIR = "tests/fixtures/regression"
GOLDEN_PATH = "tests/golden/estimators.json"

# What the trainer on main supports beyond RandomForestClassifier's flags. A case is written
# only when everything it needs (see `requires`) is here.
LANDED = {
    "--estimator", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    "friedman_mse", "absolute_error", "poisson", "--bootstrap",
}

# Cases the trainer on main does not match yet: withheld (listed on every run) until fixed.
KNOWN_MISMATCHES = {}

REGRESSORS = ["RandomForestRegressor", "ExtraTreesRegressor"]
CLASSIFIERS = ["RandomForestClassifier", "ExtraTreesClassifier"]
REGRESSION_CRITERIA = ["squared_error", "friedman_mse", "absolute_error", "poisson"]
CLASSIFICATION_SCORERS = [s for s in SCORERS if s not in REGRESSION_SCORERS]
SHORT = {
    "RandomForestClassifier": "rfc",
    "ExtraTreesClassifier": "etc",
    "RandomForestRegressor": "rfr",
    "ExtraTreesRegressor": "etr",
}


def requires(args):
    """The LANDED names a case needs: the --estimator flag and its class (other than the
    default), a regression criterion other than squared_error, --bootstrap."""
    need = set()
    for i, a in enumerate(args):
        if a == "--estimator":
            need |= {"--estimator", args[i + 1]}
        elif a == "--criterion" and args[i + 1] in REGRESSION_CRITERIA[1:]:
            need.add(args[i + 1])
        elif a == "--bootstrap":
            need.add("--bootstrap")
    return need - {"RandomForestClassifier"}


# --------------------------------------------------------------------------------------------
# Fixtures: name -> (bytes, description).
# --------------------------------------------------------------------------------------------


def table(X, y, names=None, target="target", y_text=None):
    """pandas' to_csv layout (unnamed index, named features, target last), exact reprs."""
    p = X.shape[1]
    names = names or [f"x{j}" for j in range(p)]
    header = [""] + list(names) + [target]
    y_text = y_text or [fmt(v) for v in y]
    rows = [[str(i)] + [fmt(v) for v in X[i]] + [y_text[i]] for i in range(len(X))]
    return csv_bytes(header, rows)


def with_cells(data, cells):
    """Replace (row, column) cells (0-based data row; column 1.. = features, -1 = target)."""
    lines = data.decode().split("\n")
    for (i, j), tok in cells.items():
        fields = lines[i + 1].split(",")
        fields[j] = tok
        lines[i + 1] = ",".join(fields)
    return "\n".join(lines).encode()


def fixtures():
    out = {}
    # --- real data shipped inside the scikit-learn package --------------------------------
    d = load_diabetes()
    out["diabetes"] = (
        table(d.data, d.target, d.feature_names),
        "sklearn's diabetes (442 x 10, scaled features; disease progression, integral floats)",
    )
    raw = load_diabetes(scaled=False)
    out["diabetes_raw_int"] = (
        table(raw.data, raw.target, raw.feature_names, y_text=[str(int(v)) for v in raw.target]),
        "diabetes unscaled (age, sex 1/2, ...: ties) with the target written as integers "
        "(an int64 column)",
    )
    w = load_wine()
    out["wine_alcohol"] = (
        table(w.data[:, 1:], w.data[:, 0], w.feature_names[1:], target="alcohol"),
        "sklearn's wine: the 12 other measurements predict the alcohol content (178 rows)",
    )
    ir = load_iris()
    out["iris_petal_width"] = (
        table(ir.data[:, :3], ir.data[:, 3], ["sepal_length", "sepal_width", "petal_length"],
              target="petal_width"),
        "sklearn's iris: petal width from the other three (150 rows, 22 distinct targets, ties)",
    )
    ln = load_linnerud()
    out["linnerud_weight"] = (
        table(ln.data, ln.target[:, 0], ln.feature_names, target="Weight"),
        "sklearn's linnerud: weight from chins/situps/jumps (20 rows: KFold folds of 4)",
    )

    # --- synthetic, fixed seeds ----------------------------------------------------------
    X, y = make_regression(n_samples=300, n_features=8, n_informative=5, noise=10.0, random_state=0)
    out["make_regression"] = (table(X, y), "make_regression(300, 8, 5 informative, noise 10, seed 0)")
    X, y = make_friedman1(n_samples=240, n_features=7, noise=1.0, random_state=0)
    out["friedman1"] = (table(X, y), "make_friedman1(240, 7 features, noise 1, seed 0)")

    X, y = make_friedman1(n_samples=5000, n_features=6, noise=0.5, random_state=1)
    out["friedman1_5k"] = (
        table(np.round(X, 4), np.round(y, 4)),
        "make_friedman1(5000, 6 features, noise 0.5, seed 1), 4 decimals: deep trees, many ties",
    )

    rs = np.random.RandomState(1)
    X = np.round(rs.normal(size=(200, 5)), 3)
    y = np.round(X[:, 0] * 3 + X[:, 1] ** 2 + rs.normal(size=200), 4)
    data = table(X, y)
    cells = {}
    for i in range(200):
        for j in range(1, 6):
            if rs.uniform() < (0.6 if j == 5 else 0.12):
                cells[(i, j)] = ["", "NA", "nan", "NaN", "null"][int(rs.randint(0, 5))]
    out["missing_features"] = (
        with_cells(data, cells),
        "NaN feature cells: ~12% in four columns, ~60% in the fifth (every NA token)",
    )
    X = np.round(rs.normal(size=(60, 3)), 2)
    out["missing_whole_column"] = (
        with_cells(table(X, np.round(X[:, 0] + rs.uniform(size=60), 3)), {(i, 2): "" for i in range(60)}),
        "one feature column entirely empty (an all-NaN feature)",
    )

    X = np.round(rs.normal(size=(60, 3)), 2)
    out["constant_target"] = (table(X, np.full(60, 3.5)), "every target 3.5 (r2 of a constant fold)")
    out["constant_target_zero"] = (
        table(X, np.zeros(60)),
        "every target 0.0 (poisson: the sum of y is not strictly positive)",
    )
    y = np.round(rs.normal(size=60), 3)
    y[:12] = 7.0  # the first KFold test fold is constant, the others are not
    out["constant_first_fold"] = (table(X, y), "targets constant in the first KFold test fold only")

    X = np.round(rs.normal(size=(80, 4)), 3)
    y = (X[:, 0] + rs.normal(size=80) * 0.3) * 1e300
    out["huge_targets"] = (
        table(X, y),
        "targets of about +-1e300: squares overflow to inf in float64",
    )
    y = (X[:, 1] + rs.normal(size=80) * 0.3) * 1e150
    out["large_targets_1e150"] = (
        table(X, y),
        "targets of about 1e150: squares near 1e300, sums of squares may overflow",
    )
    out["tiny_targets"] = (
        table(X, (X[:, 2] + rs.normal(size=80) * 0.3) * 1e-300),
        "targets of about 1e-300: squares underflow to zero",
    )
    Xh = X.copy()
    Xh[:, 0] *= 1e30
    Xh[:, 1] *= 1e-30
    out["huge_features"] = (
        table(Xh, np.round(X[:, 0] * 2 + X[:, 1] + rs.normal(size=80) * 0.1, 4)),
        "features near 1e30 and 1e-30 (finite in float32)",
    )

    n = 90
    Xt = np.column_stack([
        rs.randint(0, 4, n), np.full(n, 7.0), rs.randint(0, 2, n), 1.0 + 1e-8 * (np.arange(n) % 3),
    ]).astype(float)
    y = np.round(Xt[:, 0] * 1.5 + Xt[:, 2] + rs.randint(0, 3, n) * 0.5, 2)
    Xt = np.vstack([Xt, Xt[:10]])
    y = np.concatenate([y, y[:10] + 1.0])
    out["ties"] = (
        table(Xt, y, ["few_values", "constant", "binary", "f32_constant"]),
        "few-valued, constant and float32-constant features, duplicated rows with other "
        "targets, many tied targets",
    )

    X = np.round(rs.uniform(0, 3, size=(150, 4)), 3)
    y = rs.poisson(np.exp(X[:, 0] - 1.0) + 0.2 * X[:, 1])
    out["counts"] = (
        table(X, y, y_text=[str(int(v)) for v in y]),
        "Poisson counts 0, 1, 2, ... (an int64 column, many zeros): for criterion poisson",
    )
    y = np.round(X[:, 0] - 1.5 + rs.normal(size=150) * 0.2, 3)
    out["negative_targets"] = (table(X, y), "targets of both signs (poisson refuses them)")
    y = rs.poisson(0.05, 150).astype(float)
    y[:40] = 0.0
    y[40] = 1.0
    out["zero_fold_targets"] = (
        table(X, y),
        "mostly zero targets, the first 40 all zero (a poisson fit on an all-zero training "
        "fold?) and a few ones",
    )

    X = np.round(rs.normal(size=(100, 3)), 3)
    out["sorted_target"] = (
        table(X, np.arange(100) * 0.5 + np.round(X[:, 0], 1)),
        "targets rising with the row number: KFold's contiguous folds extrapolate (negative r2)",
    )
    X = np.round(rs.normal(size=(60, 3)), 2)
    out["integer_targets"] = (
        table(X, None, y_text=[str(int(v)) for v in np.round(X[:, 0] * 10 + 50)]),
        "integer targets (an int64 column)",
    )
    ys = np.round(X[:, 1] * 10 + 50, 1)
    spell = []
    for i, v in enumerate(ys):
        t = fmt(v)
        spell.append([t, f" {t} ", f"{v:.3e}", f'"{t}"', f"+{t}" if v >= 0 else t][i % 5])
    out["target_spellings"] = (
        table(X, None, y_text=spell),
        "targets spelled 51.3, ' 51.3 ', 5.130e+01, \"51.3\", +51.3 (all floats to pandas)",
    )
    out["bool_target"] = (
        table(X, None, y_text=["True" if v > 0 else "False" for v in X[:, 0]]),
        "a True/False target (a bool column: the regressors fit 0.0/1.0)",
    )
    for n in (4, 7, 12):
        Xs = np.round(rs.normal(size=(n, 2)), 2)
        out[f"tiny_{n}"] = (
            table(Xs, np.round(Xs[:, 0] * 2 + rs.normal(size=n) * 0.1, 3)),
            f"{n} rows: " + {4: "fewer than 5 folds (KFold refuses)",
                             7: "KFold test folds of 2, 2, 1, 1, 1 rows (r2 undefined on one row)",
                             12: "KFold test folds of 3, 3, 2, 2, 2 rows"}[n],
        )

    # --- bad input -------------------------------------------------------------------------
    X = np.round(rs.normal(size=(60, 3)), 2)
    y = np.round(X[:, 0] + rs.normal(size=60), 3)
    base = table(X, y)
    out["bad_nan_target"] = (with_cells(base, {(17, -1): ""}), "one empty target cell (y contains NaN)")
    out["bad_na_target_last_fold"] = (
        with_cells(base, {(58, -1): "NA"}),
        "an NA target in the last KFold test fold",
    )
    out["bad_string_target"] = (
        with_cells(base, {(30, -1): "abc"}),
        "one non-numeric target (a string column: could not convert string to float)",
    )
    out["bad_infinite_target"] = (with_cells(base, {(5, -1): "inf"}), "one inf target")
    out["bad_infinite_feature"] = (with_cells(base, {(9, 2): "-inf"}), "one -inf feature value")
    out["bad_feature_too_large_for_float32"] = (
        with_cells(base, {(3, 1): "1e300"}),
        "a 1e300 feature: finite in float64, infinite in float32",
    )
    return out


# --------------------------------------------------------------------------------------------
# Cases.
# --------------------------------------------------------------------------------------------


def reg(name):
    return f"{REG_DIR}/{name}.csv"


def cases(fx):
    out = []

    def add(est, csv, extra=(), tag=None, flag=True):
        """flag=False: the default estimator (RandomForestClassifier) without --estimator."""
        args = (["--estimator", est] if flag else []) + list(extra)
        base = os.path.basename(csv)[:-4]
        tag = tag or "_".join(a.lstrip("-").replace("-", "_") for a in extra)
        prefix = SHORT[est] if flag else "default"
        out.append((f"{prefix}_{base}" + (f"_{tag}" if tag else "_default"), csv, args))

    for est in REGRESSORS:
        for name in fx:
            add(est, reg(name))
        for crit in REGRESSION_CRITERIA:
            for name in ["diabetes", "friedman1", "ties", "missing_features", "counts",
                         "integer_targets", "constant_target", "huge_targets", "tiny_7",
                         "iris_petal_width", "zero_fold_targets", "negative_targets",
                         "constant_target_zero", "large_targets_1e150"]:
                add(est, reg(name), ["--criterion", crit])
        for crit in ["absolute_error", "poisson", "friedman_mse"]:
            add(est, reg("diabetes_raw_int"), ["--criterion", crit, "--max-depth", "4"])
            add(est, reg("wine_alcohol"), ["--criterion", crit, "--min-samples-leaf", "3"])
        for s in REGRESSION_SCORERS:
            for name in ["diabetes", "make_regression", "tiny_7", "constant_target", "huge_targets",
                         "sorted_target"]:
                add(est, reg(name), ["--scoring", s])
        # Scorers that do not fit a regressor: refused (sklearn scores every fold nan).
        for s in CLASSIFICATION_SCORERS:
            add(est, reg("diabetes"), ["--scoring", s])
        add(est, reg("integer_targets"), ["--scoring", "accuracy"])
        for extra in [
            ["--max-depth", "3"], ["--max-depth", "1"], ["--min-samples-leaf", "5"],
            ["--min-samples-split", "10"], ["--min-samples-split", "3", "--min-samples-leaf", "2"],
            ["--max-features", "sqrt"], ["--max-features", "log2"], ["--max-features", "0.5"],
            ["--max-features", "3"], ["--max-features", "all"], ["--bootstrap"], ["--no-bootstrap"],
            ["--n-estimators", "1"], ["--n-estimators", "25"], ["--random-state", "42"],
            ["--cv", "3"], ["--cv", "10"], ["--cv", "2", "--random-state", "7"],
            ["--max-features", "0.3", "--max-depth", "5", "--bootstrap"],
        ]:
            add(est, reg("diabetes"), extra)
        for extra in [["--max-features", "0.3", "--max-depth", "4"], ["--bootstrap", "--min-samples-leaf", "4"],
                      ["--cv", "10"], ["--max-features", "2"]]:
            add(est, reg("friedman1"), extra)
            add(est, reg("missing_features"), extra)
        for extra in [["--max-features", "0.5"], ["--criterion", "absolute_error"],
                      ["--criterion", "poisson", "--max-depth", "12"], ["--bootstrap", "--scoring", "neg_median_absolute_error"]]:
            add(est, reg("friedman1_5k"), extra)
        add(est, reg("tiny_12"), ["--cv", "3"])
        add(est, reg("tiny_12"), ["--cv", "12"])
        add(est, reg("tiny_4"), ["--cv", "2"])
        add(est, reg("ties"), ["--max-features", "all", "--bootstrap"])
        add(est, reg("linnerud_weight"), ["--criterion", "absolute_error", "--cv", "4"])
        # Refusals of the flags themselves: a classification criterion on a regressor.
        add(est, reg("diabetes"), ["--criterion", "gini"])
        add(est, reg("diabetes"), ["--criterion", "entropy"])

    clf_inputs = ["iris", "iris_str", "wine", "breast_cancer", "digits", "synth_1k_20"]
    clf_fixtures = ["missing_many", "missing_whole_column", "missing_whole_rows", "ties_constant",
                    "rare_class", "labels_str_binary", "one_class", "binary_rare_positive",
                    "labels_bool", "big_integers_with_float_column", "scientific_notation",
                    "bad_continuous_label", "bad_missing_label", "bad_classes_fewer_than_folds"]
    est = "ExtraTreesClassifier"
    for name in clf_inputs:
        add(est, f"input_files/{name}.csv")
    for name in clf_fixtures:
        add(est, f"{FIXTURE_DIR}/{name}.csv")
    for crit in ["entropy", "log_loss"]:
        for name in ["wine", "digits"]:
            add(est, f"input_files/{name}.csv", ["--criterion", crit])
        add(est, f"{FIXTURE_DIR}/missing_many.csv", ["--criterion", crit])
    for s in SCORERS:
        add(est, "input_files/iris.csv", ["--scoring", s])
        add(est, "input_files/breast_cancer.csv", ["--scoring", s])
    for s in ["roc_auc", "neg_log_loss", "f1", "balanced_accuracy"]:
        add(est, f"{FIXTURE_DIR}/binary_rare_positive.csv", ["--scoring", s])
        add(est, f"{FIXTURE_DIR}/missing_many.csv", ["--scoring", s])
    for extra in [
        ["--bootstrap"], ["--no-bootstrap"], ["--max-depth", "3"], ["--min-samples-leaf", "3"],
        ["--min-samples-split", "6"], ["--max-features", "all"], ["--max-features", "0.5"],
        ["--max-features", "log2"], ["--max-features", "2"], ["--n-estimators", "1"],
        ["--n-estimators", "25"], ["--random-state", "42"], ["--cv", "3"], ["--cv", "10"],
        ["--bootstrap", "--max-features", "all", "--criterion", "entropy"],
    ]:
        add(est, "input_files/wine.csv", extra)
    for extra in [["--bootstrap"], ["--max-features", "all"], ["--min-samples-leaf", "2", "--max-depth", "8"]]:
        add(est, "input_files/digits.csv", extra)
        add(est, f"{FIXTURE_DIR}/ties_constant.csv", extra)
        add(est, f"{FIXTURE_DIR}/missing_many.csv", extra)
    # Classifiers on a continuous target, and regression criteria on a classifier: refused.
    for est in CLASSIFIERS:
        add(est, reg("wine_alcohol"))
        add(est, "input_files/iris.csv", ["--criterion", "squared_error"])
        add(est, "input_files/iris.csv", ["--criterion", "poisson"])
        add(est, "input_files/iris.csv", ["--criterion", "absolute_error"])
    # `--estimator RandomForestClassifier` is the default, spelled out.
    est = "RandomForestClassifier"
    for name in ["iris", "digits", "breast_cancer"]:
        add(est, f"input_files/{name}.csv", tag="estimator")
    add(est, "input_files/wine.csv", ["--bootstrap"])
    add(est, "input_files/wine.csv", ["--bootstrap", "--max-features", "all"])
    # The default classifier on the regression fixtures: integral targets are classes (rare ones
    # warn), a continuous target is refused.
    for name in ["wine_alcohol", "integer_targets", "diabetes", "counts", "bool_target",
                 "constant_target", "bad_nan_target", "bad_string_target", "tiny_7"]:
        add(est, reg(name), flag=False)
    add(est, reg("diabetes_raw_int"), ["--cv", "3"], flag=False)
    add(est, reg("counts"), ["--scoring", "neg_mean_absolute_error"], flag=False)
    add(est, reg("counts"), ["--scoring", "f1_macro"], flag=False)
    return out


FIXTURE_INTRO = [
    "# Regression fixtures",
    "",
    "Generated by `scripts/oracle/estimator_golden.py` (run `scripts/regen-golden.sh`); do not",
    "edit by hand. Real data comes from the datasets shipped inside the scikit-learn package,",
    "synthetic data from fixed seeds. Expected results (scikit-learn 1.9.1 / pandas 3.1.1) are",
    "in `tests/golden/estimators.json`. Files named `bad_*` must be refused by the regressors",
    "(exit 1, one line, nothing written).",
]


def main():
    preview = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--all" else None
    if len(sys.argv) > 1 and not preview:
        raise SystemExit("usage: estimator_golden.py [--all FILE]")
    fx = fixtures()
    write_fixtures(fx, REG_DIR, FIXTURE_INTRO)
    all_cases = cases(fx)
    names = [c[0] for c in all_cases]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate case names: {sorted(dup)}"
    results, withheld, failures = [], {}, []
    for name, csv, args in all_cases:
        missing = requires(args) - LANDED
        if name in KNOWN_MISMATCHES and not preview:
            missing = {f"a fix: {KNOWN_MISMATCHES[name]}"}
        if missing and not preview:
            key = ", ".join(sorted(missing))
            withheld[key] = withheld.get(key, 0) + 1
            continue
        status, output, warning, python_error, folds = run_reference_folds(csv, args)
        base = os.path.basename(csv)[:-4]
        regressor = any(r in args for r in REGRESSORS)
        if csv.startswith(REG_DIR) and regressor and len(args) == 2:
            designed_error = base.startswith("bad_") or base == "tiny_4"
            if designed_error != (status == "error"):
                failures.append(f"{name}: status {status}, but the fixture was designed otherwise: "
                                f"{python_error or output}")
        case = dict(name=name, csv=csv, args=args, status=status, output=output,
                    warning=warning, python_error=python_error)
        if status == "error" and python_error.startswith("refused (issue 14: --scoring"):
            case["error_mentions"] = "--scoring " + args[args.index("--scoring") + 1]
        if folds is not None and all(map(math.isfinite, folds)):
            # The --json report's fold_scores must be these doubles (nan/inf ones are left out:
            # JSON has no such numbers).
            case["fold_scores"] = [repr(v) for v in folds]
        if status == "error" and "InvalidParameterError: The 'criterion'" in python_error:
            # A refused flag, not a refused file: the one error line names the value instead.
            case["error_mentions"] = args[args.index("--criterion") + 1]
        results.append(case)
        shown = output if status == "ok" else python_error
        print(f"{status:5} {name:60} {shown[:100]}" + ("  [warning]" if warning else ""))

    if preview:
        write_json(preview, results)
        results = [c for c in results
                   if not requires(c["args"]) - LANDED and c["name"] not in KNOWN_MISMATCHES]
    write_json(os.path.join(ROOT, GOLDEN_PATH), results)
    per = {}
    for c in results:
        a = c["args"]
        est = a[a.index("--estimator") + 1] if "--estimator" in a else "RandomForestClassifier (no --estimator)"
        per[est] = per.get(est, 0) + 1
    n_ok = sum(c["status"] == "ok" for c in results)
    print(f"\n{len(results)} cases ({n_ok} ok, {len(results) - n_ok} error): "
          + ", ".join(f"{k} {v}" for k, v in sorted(per.items()))
          + f"; {len(fx)} fixtures in {REG_DIR}; wrote {GOLDEN_PATH}")
    for key, n in sorted(withheld.items()):
        print(f"withheld until on main ({key}): {n} cases")
    return exit_status(failures)


if __name__ == "__main__":
    sys.exit(main())
