"""Whole-process timing harness behind scripts/bench-vs-sklearn.sh.

Modes:
  pairs   time the static trainer against `python main.py` and `python main_njobs.py`
          (main.py with only n_jobs=-1 added), alternately, run by run, on each CSV;
          print medians, paired ratios (trainer/reference per round, then the median),
          peak memory, and check that every output file is byte-identical.
  growth  time the trainer alone over a list of CSVs (rows or features growing).

Each run is one child process started with subprocess.Popen and reaped with os.wait4, so
wall time, CPU time (user+sys) and peak RSS (ru_maxrss: the largest single process in the
child's tree that was reaped) belong to that run alone. A sampler also sums the resident
memory of the child and all its descendants every 100 ms ("tree MiB"), because loky's worker
processes under n_jobs=-1 are separate processes that ru_maxrss does not add up.
"""

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def descendants(pid):
    """pid and every live descendant, from /proc/*/stat parent links."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_rss_kib(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def run_once(cmd, out_path):
    """Run cmd once; return dict(wall, cpu, maxrss_mib, tree_mib, rc, output)."""
    if os.path.exists(out_path):
        os.remove(out_path)
    peak_tree = [0]
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def sample():
        while not done.wait(0.1):
            peak_tree[0] = max(peak_tree[0], tree_rss_kib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = proc.stderr.read()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = open(out_path, "rb").read() if os.path.exists(out_path) else None
    return dict(
        wall=wall,
        cpu=ru.ru_utime + ru.ru_stime,
        maxrss_mib=ru.ru_maxrss / 1024,
        tree_mib=max(peak_tree[0], ru.ru_maxrss) / 1024,
        rc=proc.returncode,
        output=output,
        stderr=stderr.decode(errors="replace")[-2000:],
    )


def fail(msg):
    print(f"\nBENCHMARK FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def check_ok(label, csv, r):
    if r["rc"] != 0 or r["output"] is None:
        fail(f"{label} on {csv} exited {r['rc']} (output written: {r['output'] is not None})\n{r['stderr']}")


def med(xs):
    return statistics.median(xs)


def spread(xs):
    return f"{min(xs):.3g}-{max(xs):.3g}"


def mode_pairs(args):
    programs = [
        ("trainer", [args.trainer] + shlex.split(args.trainer_args)),
        ("main.py", [args.python, args.main_py]),
        ("main.py n_jobs=-1", [args.python, args.main_njobs]),
    ]
    tmp = tempfile.mkdtemp(prefix="bench-")
    summary = []
    for csv in args.csv:
        name = os.path.basename(csv)
        print(f"\n== {name}: {args.pairs} rounds (+{args.warmup} warm-up), order per round: "
              + ", ".join(p[0] for p in programs), flush=True)
        runs = {label: [] for label, _ in programs}
        for rnd in range(args.warmup + args.pairs):
            counted = rnd >= args.warmup
            for label, cmd in programs:
                out = os.path.join(tmp, f"{label.replace(' ', '_')}.txt")
                r = run_once(cmd + [csv, out], out)
                check_ok(label, name, r)
                if counted:
                    runs[label].append(r)
                print(f"  {'round ' + str(rnd - args.warmup + 1) if counted else 'warm-up':8} {label:18} "
                      f"wall {r['wall']:8.3f} s  cpu {r['cpu']:8.3f} s  peak {r['maxrss_mib']:7.1f} MiB  "
                      f"tree {r['tree_mib']:7.1f} MiB", flush=True)
        outputs = {r["output"] for rs in runs.values() for r in rs}
        if len(outputs) != 1:
            detail = {label: sorted({r["output"].decode() for r in rs}) for label, rs in runs.items()}
            fail(f"outputs differ on {name}: {json.dumps(detail, indent=1)}")
        output = outputs.pop().decode()
        t = runs["trainer"]
        row = dict(csv=name, output=output, pairs=args.pairs)
        for label, rs in runs.items():
            row[label] = dict(
                wall_median=med([r["wall"] for r in rs]),
                wall_spread=spread([r["wall"] for r in rs]),
                cpu_median=med([r["cpu"] for r in rs]),
                peak_mib=max(r["maxrss_mib"] for r in rs),
                tree_mib=max(r["tree_mib"] for r in rs),
            )
        for label in ("main.py", "main.py n_jobs=-1"):
            ratios = [a["wall"] / b["wall"] for a, b in zip(t, runs[label])]
            cpu_ratios = [a["cpu"] / b["cpu"] for a, b in zip(t, runs[label])]
            row[f"ratio vs {label}"] = dict(median=med(ratios), spread=spread(ratios), cpu_median=med(cpu_ratios))
        summary.append(row)
        print(f"  outputs identical: {output!r}")
        for label in runs:
            s = row[label]
            print(f"  {label:18} wall median {s['wall_median']:8.3f} s ({s['wall_spread']})  cpu median "
                  f"{s['cpu_median']:8.3f} s  peak {s['peak_mib']:7.1f} MiB  tree peak {s['tree_mib']:7.1f} MiB")
        for label in ("main.py", "main.py n_jobs=-1"):
            s = row[f"ratio vs {label}"]
            print(f"  trainer / {label:18} paired wall ratio median {s['median']:.4f} ({s['spread']}), "
                  f"cpu ratio median {s['cpu_median']:.4f}")

    print("\n| CSV | trainer wall s | main.py wall s | n_jobs=-1 wall s | trainer/main.py | "
          "trainer/n_jobs=-1 | trainer peak MiB | main.py peak MiB | n_jobs=-1 tree peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in summary:
        t, p, j = row["trainer"], row["main.py"], row["main.py n_jobs=-1"]
        print(f"| {row['csv']} | {t['wall_median']:.3f} | {p['wall_median']:.3f} | {j['wall_median']:.3f} | "
              f"{row['ratio vs main.py']['median']:.4f} | {row['ratio vs main.py n_jobs=-1']['median']:.4f} | "
              f"{t['peak_mib']:.1f} | {p['peak_mib']:.1f} | {j['tree_mib']:.1f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)


def mode_growth(args):
    tmp = tempfile.mkdtemp(prefix="bench-")
    out = os.path.join(tmp, "out.txt")
    rows = []
    for csv in args.csv:
        rs = []
        for _ in range(args.pairs):
            r = run_once([args.trainer] + shlex.split(args.trainer_args) + [csv, out], out)
            check_ok("trainer", os.path.basename(csv), r)
            rs.append(r)
        n, p = csv_shape(csv)
        wall = med([r["wall"] for r in rs])
        rows.append((os.path.basename(csv), n, p, wall, med([r["cpu"] for r in rs]), max(r["maxrss_mib"] for r in rs)))
        print(f"  {os.path.basename(csv):24} rows {n:7d} features {p:4d}  wall {wall:8.3f} s  peak "
              f"{rows[-1][5]:7.1f} MiB", flush=True)
    # CPU time is the steadier measure on a shared machine; dividing by n·log2(n) shows whether
    # the cost grows faster than n log n in rows (the column stays flat if it does not).
    print("\n| CSV | rows | features | wall median s | cpu median s | peak MiB | "
          "cpu / (rows·log2 rows) ns |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n, p, wall, cpu, peak in rows:
        norm = cpu / (n * math.log2(n)) * 1e9
        print(f"| {name} | {n} | {p} | {wall:.3f} | {cpu:.3f} | {peak:.1f} | {norm:.1f} |")


def csv_shape(csv):
    """(rows, features) from the bench file name synth_<rows>_<features>.csv (or regression_)."""
    parts = os.path.basename(csv)[: -len(".csv")].split("_")
    return int(parts[1]), int(parts[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["pairs", "growth"])
    ap.add_argument("csv", nargs="+")
    ap.add_argument("--trainer", required=True)
    ap.add_argument("--trainer-args", default="", help="flags for the trainer (e.g. --estimator NAME)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--main-py")
    ap.add_argument("--main-njobs")
    ap.add_argument("--pairs", type=int, default=5, help="counted rounds (runs per program in growth mode)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    if args.mode == "pairs":
        if not (args.main_py and args.main_njobs):
            ap.error("pairs needs --main-py and --main-njobs")
        mode_pairs(args)
    else:
        mode_growth(args)


if __name__ == "__main__":
    main()
