"""Randomized differential check: `trainer` against scikit-learn on random small CSVs.

Each trial draws an estimator (among those on main: estimator_golden.LANDED), writes a random
CSV (ties, constant columns, missing cells, several label kinds; for a regressor a float target:
ties, integers, counts, constants, huge and tiny values, now and then a NaN/inf/text cell) and
picks random trainer flags (half of the trials with a random --scoring), then compares the trainer's exit status and output bytes with
the reference result computed exactly as golden.py does. Mismatching CSVs are kept for
inspection. Deterministic for a given --seed.

--hostile damages the bytes instead (random bytes, huge fields, control characters, NULs,
invalid UTF-8, deep quoting, stray CRs). The trainer must then never panic, abort or hang: it
either fails with exactly one line on stderr, exit 1 or 2 and no output file, or succeeds with
exactly the reference's output. A trainer error where the reference succeeded is counted and
listed ("refused") but passes: pandas reads some damaged bytes its own way.

Usage (from the repo root, in the oracle venv):
  .venv-oracle/bin/python scripts/oracle/fuzz_compare.py --trainer PATH [--trials 200] [--seed 0]
      [--mutate | --hostile] [--large ROWS]   (--large: CSVs of ROWS/4..ROWS rows, 8..40 features)
Exit status: 0 if every trial matched, 1 otherwise.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.dont_write_bytecode = True  # importing golden.py must not leave __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402  (run_reference: the same in-process reference as the goldens)
from estimator_golden import LANDED, REGRESSION_CRITERIA, REGRESSION_SCORERS, REGRESSORS  # noqa: E402

# Only what the trainer on main supports (estimator_golden.LANDED) is drawn.
ESTIMATORS = ["RandomForestClassifier"] + [
    e for e in ["RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"] if e in LANDED
]
REG_CRITERIA = ["squared_error"] + [c for c in REGRESSION_CRITERIA[1:] if c in LANDED]


def regression_target(rs, n, cols):
    """Float target text: signal plus noise, with ties, integers, signs, constants, huge values."""
    signal = np.zeros(n)
    for c in cols[:3]:
        v = np.array([float(x) if x not in ("", "NA", "nan") else 0.0 for x in c])
        signal += np.nan_to_num(v, posinf=0.0, neginf=0.0)
    kind = rs.choice(["float", "int", "counts", "ties", "const", "huge", "tiny"])
    y = signal + rs.normal(size=n) * rs.uniform(0.1, 3.0)
    if kind == "int":
        return [str(int(v)) for v in np.round(y * 10)]
    if kind == "counts":
        return [str(int(v)) for v in rs.poisson(np.exp(np.clip(signal, -3, 3) / 3))]
    if kind == "ties":
        y = np.round(y)
    elif kind == "const":
        y = np.full(n, float(rs.randint(-2, 3)))
    elif kind == "huge":
        y = y * 10.0 ** rs.choice([100, 150, 300])
    elif kind == "tiny":
        y = y * 10.0 ** rs.choice([-100, -300])
    else:
        y = np.round(y, int(rs.randint(0, 8)))
    return [repr(float(v)) for v in y]


def random_csv(rs, large=0, regression=False):
    if large:
        # Big enough that the trainer's upper nodes are not grown from a subtree copy
        # (tree::Block holds 1 MiB / (4 * p) rows): both paths meet the reference.
        n = int(rs.randint(max(12, large // 4), large + 1))
        p = int(rs.randint(8, 41))
    else:
        n = int(rs.randint(6, 20)) if rs.uniform() < 0.15 else int(rs.randint(12, 300))
        p = int(rs.randint(1, 12))
    k = int(rs.randint(2, 6))
    y = rs.randint(0, k, n)
    cols = []
    for j in range(p):
        kind = rs.choice(["float", "int", "const", "signal"])
        if kind == "float":
            c = np.round(rs.normal(size=n) * 10 ** rs.randint(-3, 4), int(rs.randint(0, 6)))
        elif kind == "int":
            c = rs.randint(0, int(rs.randint(2, 8)), n).astype(float)
        elif kind == "const":
            c = np.full(n, float(rs.randint(-3, 3)))
        else:
            c = np.round(y + rs.normal(size=n) * rs.uniform(0.2, 2.0), 2)
        cols.append([repr(float(v)) for v in c])
    miss = rs.uniform() < 0.4
    if miss:
        rate = rs.choice([0.02, 0.1, 0.4])
        for c in cols:
            for i in range(n):
                if rs.uniform() < rate:
                    c[i] = rs.choice(["", "NA", "nan"])
    if rs.uniform() < 0.05:
        cols[int(rs.randint(0, p))][int(rs.randint(0, n))] = str(rs.choice(["inf", "-inf"]))
    label_kind = rs.choice(["int", "str", "float", "neg", "bool"]) if k == 2 else rs.choice(["int", "str", "float", "neg"])
    names = {
        "int": [str(v) for v in range(k)],
        "str": ["b", "a", "B", "ab", "Z"][:k],
        "float": [f"{v}.0" for v in range(1, k + 1)],
        "neg": [str(v) for v in range(-k, 0)],
        "bool": ["True", "false"],
    }.get(label_kind)
    labels = regression_target(rs, n, cols) if regression else [names[v] for v in y]
    if regression and rs.uniform() < 0.03:
        labels[int(rs.randint(0, n))] = str(rs.choice(["", "NA", "inf", "x"]))
    rows = [",".join([""] + [f"x{j}" for j in range(p)] + ["label"])]
    for i in range(n):
        rows.append(",".join([str(i)] + [c[i] for c in cols] + [labels[i]]))
    eol = "\r\n" if rs.uniform() < 0.1 else "\n"
    return eol.join(rows) + eol


ODD_CELLS = [
    "", " ", "NA", '"NA"', '""', "nan", "None", "#N/A", "inf", "-inf", "1e5", "1E-5", "+1", ".5",
    "5.", "-0", "0x1", "1_0", "True", "false", " 1.5 ", '"2.5"', "1,5", '"1,5"', "a", '"a""b"',
    "1.0000000000000000000001", "1e400", "-1e-400", "00012", "１",
]


def mutate(text, rs):
    """Apply a few random pandas-parsing corner cases to a CSV text."""
    lines = text.split("\n")[:-1]
    for _ in range(int(rs.randint(1, 4))):
        i = int(rs.randint(1, len(lines)))
        fields = lines[i].split(",")
        m = int(rs.randint(0, 9))
        if m == 0:
            lines.insert(i, str(rs.choice(["", "  ", ","])))
        elif m == 1:
            j = int(rs.randint(1, len(fields)))
            fields[j] = '"' + fields[j] + '"'
        elif m in (2, 3, 4):
            j = int(rs.randint(1, len(fields) - 1)) if len(fields) > 2 else 1
            fields[j] = str(rs.choice(ODD_CELLS))
        elif m == 5:
            fields.append(str(rs.choice(["1", "", "x"])))
        elif m == 6 and len(fields) > 2:
            fields.pop()
        elif m == 7:
            fields[-1] = str(rs.choice(["", "NA", "1.5", '"', "x", "True"]))
        elif m == 8:
            fields[0] = str(rs.choice(["", "idx", '"a,b"', "NA"]))
        lines[i] = ",".join(fields)
    out = "\n".join(lines)
    r = rs.uniform()
    if r < 0.2:
        out += "\n"
    elif r < 0.9:
        out += "\n"
    # else: no final newline
    if rs.uniform() < 0.1:
        out = "\ufeff" + out
    return out


CONTROL = bytes(range(0, 32)) + b"\x7f"
# Invalid UTF-8: a lone continuation byte, a truncated sequence, an overlong '/', a surrogate,
# a code point beyond U+10FFFF, bytes that never occur.
BAD_UTF8 = [b"\x80", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\xfe"]
# How big a "huge" field gets; rarely past the trainer's 64 MiB limit on a row.
HUGE = [1 << 10, 1 << 16, 1 << 20, (64 << 20) + 1000]


def hostile(data, rs):
    """Damage CSV bytes the way a hostile or broken producer would."""
    if rs.uniform() < 0.1:
        return bytes(rs.randint(0, 256, int(rs.randint(0, 4096))).astype(np.uint8))
    data = bytearray(data)
    for _ in range(int(rs.randint(1, 4))):
        pos = int(rs.randint(0, len(data) + 1))
        if rs.uniform() < 0.5:
            # The start of a line: the index column (dropped) or a header name, where pandas
            # accepts most damage, so the trainer must then give the same score.
            pos = data.find(b"\n", pos) + 1
        m = int(rs.randint(0, 7))
        if m == 0:
            size = HUGE[int(rs.randint(0, 3))] if rs.uniform() < 0.97 else HUGE[3]
            fill = bytes([int(rs.choice(list(b"7x\x00 ,\"")))])
            data[pos:pos] = fill * size
        elif m == 1:
            data[pos:pos] = bytes(rs.choice(list(CONTROL), int(rs.randint(1, 4))).astype(np.uint8))
        elif m == 2:
            data[pos:pos] = b"\x00" * int(rs.randint(1, 5))
        elif m == 3:
            data[pos:pos] = BAD_UTF8[int(rs.randint(0, len(BAD_UTF8)))]
        elif m == 4:
            depth = int(rs.choice([2, 10, 1000, 100_000]))
            data[pos:pos] = b'"' * depth + b"x" + b'"' * int(rs.choice([depth, depth + 1, 0]))
        elif m == 5:
            data[pos:pos] = bytes([int(rs.choice(list(b"\r\n,\"")))])
        else:
            end = min(len(data), pos + int(rs.randint(1, 64)))
            data[pos:end] = bytes(rs.randint(0, 256, end - pos).astype(np.uint8))
    return bytes(data)


def judge(reference, proc, got, hostile_mode):
    """Whether the trainer's run is acceptable, and a note when it refused what passed."""
    status, output, warning = reference
    if proc is None:
        return False, "timed out"
    one_line_error = (proc.returncode in (1, 2) and got is None
                      and len(proc.stderr.strip().splitlines()) == 1 and "panicked" not in proc.stderr)
    if status == "ok":
        # Each distinct sklearn warning (" | "-joined) must appear in the trainer's stderr.
        warned = all(w in proc.stderr for w in warning.split(" | ")) if warning else True
        if proc.returncode == 0 and got == output and warned:
            return True, None
        if hostile_mode and one_line_error:
            return True, "refused"
        return False, None
    if hostile_mode:
        return one_line_error, None
    return proc.returncode == 1 and got is None, None


def run_trainer(trainer, csv, out, args):
    if os.path.exists(out):
        os.remove(out)
    try:
        proc = subprocess.run([trainer, csv, out] + args, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, None
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    got = open(out).read() if os.path.exists(out) else None
    return proc, got


def random_args(rs, estimator="RandomForestClassifier"):
    args = []
    # The default estimator is spelled out half of the time (no draw while it is the only one).
    if len(ESTIMATORS) > 1 and (estimator != "RandomForestClassifier" or rs.uniform() < 0.5):
        args = ["--estimator", estimator]
    if rs.uniform() < 0.3:
        args += ["--n-estimators", str(rs.choice([1, 3, 10, 17]))]
    if rs.uniform() < 0.3:
        args += ["--max-depth", str(rs.randint(1, 8))]
    if rs.uniform() < 0.3:
        args += ["--min-samples-split", str(rs.randint(2, 10))]
    if rs.uniform() < 0.3:
        args += ["--min-samples-leaf", str(rs.randint(1, 6))]
    if rs.uniform() < 0.4:
        args += ["--max-features", str(rs.choice(["sqrt", "log2", "all", "1", "2", "0.3", "0.75"]))]
    if rs.uniform() < 0.3:
        crit = REG_CRITERIA if estimator in REGRESSORS else ["gini", "entropy", "log_loss"]
        args += ["--criterion", str(rs.choice(crit))]
    if rs.uniform() < 0.2:
        args += ["--no-bootstrap"]
    elif "--bootstrap" in LANDED and rs.uniform() < 0.2:
        args += ["--bootstrap"]
    if rs.uniform() < 0.3:
        args += ["--random-state", str(rs.randint(0, 10_000))]
    if rs.uniform() < 0.3:
        args += ["--cv", str(rs.choice([2, 3, 4, 6]))]
    if rs.uniform() < 0.5:
        # A regressor mostly gets a regression scorer (the others score nan on every fold).
        names = golden.SCORERS
        if estimator in REGRESSORS and rs.uniform() < 0.8:
            names = REGRESSION_SCORERS
        args += ["--scoring", str(rs.choice(names))]
    return args


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mutate", action="store_true", help="also apply random parsing corner cases")
    ap.add_argument("--hostile", action="store_true",
                    help="damage the bytes (never a panic, abort or hang; one-line errors)")
    ap.add_argument("--large", type=int, default=0, metavar="ROWS",
                    help="large CSVs (ROWS/4..ROWS rows, 8..40 features) instead of small ones")
    ap.add_argument("--keep", default="target/fuzz-compare", help="where mismatching CSVs are kept")
    a = ap.parse_args()
    rs = np.random.RandomState(a.seed)
    tmp = tempfile.mkdtemp(prefix="fuzz-")
    bad = 0
    counts = {"ok": 0, "error": 0, "warning": 0, "refused": 0}
    for t in range(a.trials):
        csv = os.path.join(tmp, "in.csv")
        # One draw more only once a second estimator is on main (old seeds stay as they were).
        estimator = str(rs.choice(ESTIMATORS)) if len(ESTIMATORS) > 1 else ESTIMATORS[0]
        text = random_csv(rs, a.large, regression=estimator in REGRESSORS)
        if a.hostile:
            data = hostile(text.encode(), rs)
        elif a.mutate:
            data = mutate(text.replace("\r\n", "\n"), rs).encode()
        else:
            data = text.encode()
        with open(csv, "wb") as fh:
            fh.write(data)
        args = random_args(rs, estimator) if not (a.mutate or a.hostile) or rs.uniform() < 0.3 else []
        if estimator != "RandomForestClassifier" and "--estimator" not in args:
            args = ["--estimator", estimator] + args
        # Folds beyond the smallest class make sklearn raise; keep those as error trials.
        status, output, warning, python_error = golden.run_reference(csv, args)
        counts[status] += 1
        counts[estimator] = counts.get(estimator, 0) + 1
        counts["warning"] += bool(warning)
        out = os.path.join(tmp, "out.txt")
        proc, got = run_trainer(a.trainer, csv, out, args)
        good, note = judge((status, output, warning), proc, got, a.hostile)
        if note == "refused":
            counts["refused"] += 1
            print(f"refused trial {t} (reference: {output}): {proc.stderr.strip()[:300]}")
        if not good:
            bad += 1
            os.makedirs(a.keep, exist_ok=True)
            keep = os.path.join(a.keep, f"trial_{a.seed}_{t}.csv")
            os.replace(csv, keep)
            trainer = f"rc={proc.returncode} {got!r} {proc.stderr.strip()[:300]}" if proc else note
            print(f"MISMATCH trial {t}: {keep} args={args}\n  reference: {status} {output or python_error}\n"
                  f"  trainer:   {trainer}")
    per = ", ".join(f"{e} {counts.get(e, 0)}" for e in ESTIMATORS)
    print(f"{a.trials - bad} passed, {bad} failed  (reference: {counts['ok']} ok of which {counts['warning']} warned, "
          f"{counts['error']} error; trainer refused {counts['refused']} the reference accepted; {per})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
