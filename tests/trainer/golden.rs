//! Golden outputs from the reference (scikit-learn 1.9.1 via `scripts/regen-golden.sh`):
//! every case in `tests/golden/cases.json` runs through the built binary.

use std::path::Path;

use serde_json::Value;

use crate::util::{repo_root, run, stderr};

/// One case's verdict: `Ok(())` or a description of the difference.
fn check_case(case: &Value, root: &Path, output_override: Option<&str>) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let csv = root.join(case["csv"].as_str().ok_or("case without csv")?);
    let args: Vec<&str> = case["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("out.txt");
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
            let file_name = csv.file_name().unwrap().to_string_lossy();
            if err.lines().count() != 1 || !err.contains(file_name.as_ref()) {
                return Err(format!(
                    "{name}: want one stderr line naming {file_name}: {err:?}"
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

fn cases() -> (Vec<Value>, std::path::PathBuf) {
    let root = repo_root();
    let path = root.join("tests/golden/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); run scripts/regen-golden.sh",
            path.display()
        )
    });
    let cases: Vec<Value> = serde_json::from_str(&text).expect("cases.json is a JSON array");
    assert!(!cases.is_empty(), "cases.json has no cases");
    (cases, root)
}

#[test]
fn every_golden_case_matches_the_reference() {
    let (cases, root) = cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_case(c, &root, None).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_harness_notices_a_single_wrong_byte() {
    // Guard against a harness that cannot fail: flip one byte of an expected output.
    let (cases, root) = cases();
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
