//! Golden outputs from the reference (scikit-learn 1.9.1 via `scripts/regen-golden.sh`):
//! every case in `tests/golden/cases.json` (RandomForestClassifier) and
//! `tests/golden/estimators.json` (`--estimator`, regression fixtures) runs through the built
//! binary.

use std::path::Path;

use serde_json::Value;

use crate::util::{repo_root, run, stderr};

/// One case's verdict: `Ok(())` or a description of the difference.
fn check_case(case: &Value, root: &Path, output_override: Option<&str>) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let csv = root.join(case["csv"].as_str().ok_or("case without csv")?);
    let mut args: Vec<&str> = case["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out.txt");
    let report = dir.path().join("report.json");
    let report_arg = report.to_string_lossy().into_owned();
    if case["fold_scores"].is_array() {
        args.extend(["--json", report_arg.as_str()]);
    }
    let o = run(&csv, &out, &args);
    let err = stderr(&o);
    match case["status"].as_str() {
        Some("ok") => {
            let want = output_override
                .or(case["output"].as_str())
                .ok_or("ok case without output")?;
            if o.status.code() != Some(0) {
                return Err(format!("{name}: exit {:?}, stderr: {err}", o.status.code()));
            }
            let got = std::fs::read(&out).map_err(|e| format!("{name}: no output: {e}"))?;
            if got != want.as_bytes() {
                return Err(format!(
                    "{name}: output {:?}, want {want:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
            if let Some(want) = case["fold_scores"].as_array() {
                check_fold_scores(name, want, &report)?;
            }
            // Several distinct warnings are joined by " | "; the trainer prints each on a line.
            for w in case["warning"]
                .as_str()
                .into_iter()
                .flat_map(|w| w.split(" | "))
            {
                if !err.contains(w) {
                    return Err(format!("{name}: stderr lacks warning {w:?}: {err}"));
                }
            }
            Ok(())
        }
        Some("error") => {
            if o.status.code() != Some(1) {
                return Err(format!(
                    "{name}: exit {:?}, want 1; stderr: {err}",
                    o.status.code()
                ));
            }
            if out.exists() {
                return Err(format!("{name}: OUTPUT was created"));
            }
            // A refused file is named; a refused flag value ("error_mentions") is named instead.
            let file_name = csv.file_name().unwrap().to_string_lossy();
            let named = case["error_mentions"].as_str().unwrap_or(&file_name);
            if err.lines().count() != 1 || !err.contains(named) {
                return Err(format!(
                    "{name}: want one stderr line naming {named}: {err:?}"
                ));
            }
            // An existing OUTPUT must survive untouched.
            std::fs::write(&out, "keep").map_err(|e| e.to_string())?;
            let o = run(&csv, &out, &args);
            let kept = std::fs::read_to_string(&out).unwrap_or_default();
            if o.status.code() != Some(1) || kept != "keep" {
                return Err(format!("{name}: existing OUTPUT not left alone ({kept:?})"));
            }
            Ok(())
        }
        other => Err(format!("{name}: unknown status {other:?}")),
    }
}

/// The `--json` report's `fold_scores` against the reference's (Python reprs). The report's
/// numbers are read as text and parsed by `str::parse`, which rounds correctly, so a one-ulp
/// difference in one fold is seen.
fn check_fold_scores(name: &str, want: &[Value], report: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(report).map_err(|e| format!("{name}: no report: {e}"))?;
    let start = text
        .find("\"fold_scores\"")
        .and_then(|i| text[i..].find('[').map(|j| i + j + 1))
        .ok_or_else(|| format!("{name}: report without fold_scores"))?;
    let end = start + text[start..].find(']').ok_or("unterminated fold_scores")?;
    let got: Vec<f64> = text[start..end]
        .split(',')
        .map(|v| v.trim().parse::<f64>().unwrap_or(f64::NAN))
        .collect();
    let want: Vec<f64> = want
        .iter()
        .map(|v| v.as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN))
        .collect();
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.to_bits() == w.to_bits());
    if !same {
        let first = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g.to_bits() != w.to_bits());
        return Err(format!(
            "{name}: fold scores {got:?}, want {want:?} (first differing fold: {first:?})"
        ));
    }
    Ok(())
}

fn cases(file: &str) -> (Vec<Value>, std::path::PathBuf) {
    let root = repo_root();
    let path = root.join("tests/golden").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); run scripts/regen-golden.sh",
            path.display()
        )
    });
    let cases: Vec<Value> = serde_json::from_str(&text).expect("a JSON array of cases");
    assert!(!cases.is_empty(), "{file} has no cases");
    (cases, root)
}

/// Runs every case of `file`; panics listing each one that differs.
fn check_file(file: &str) {
    let (cases, root) = cases(file);
    check_all(&cases, &root, file);
}

/// Runs `cases` (from `what`) on every core (each case is its own process); panics listing
/// each one that differs.
fn check_all(cases: &[Value], root: &Path, what: &str) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = cases.len().div_ceil(workers);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .filter_map(|c| check_case(c, root, None).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a golden worker panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} golden cases in {what} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_golden_case_matches_the_reference() {
    check_file("cases.json");
}

#[test]
fn every_estimator_golden_case_matches_the_reference() {
    check_file("estimators.json");
}

#[test]
fn the_harness_notices_a_single_wrong_byte() {
    // Guard against a harness that cannot fail: flip one byte of an expected output.
    let (cases, root) = cases("cases.json");
    let case = cases
        .iter()
        .find(|c| c["status"] == "ok" && c["warning"].is_null())
        .expect("at least one ok case");
    let mut wrong = case["output"].as_str().unwrap().to_owned().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    assert!(check_case(case, &root, None).is_ok());
    assert!(check_case(case, &root, Some(&wrong)).is_err());
    // And a byte appended (a trailing newline) is noticed too.
    let newline = format!("{}\n", case["output"].as_str().unwrap());
    assert!(check_case(case, &root, Some(&newline)).is_err());
}
