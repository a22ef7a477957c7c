//! The command line: rejected input names, `--dry-run`, configuration precedence, `status`,
//! `cleanup`.

#[path = "util.rs"]
mod util;

use util::{Scratch, show, trainer_bin};

/// A trainer that must never run: it leaves a marker if it does.
fn tripwire(s: &Scratch) -> std::path::PathBuf {
    let marker = s.path().join("trainer-ran");
    s.script(
        "tripwire.sh",
        &format!("touch '{}'\nexit 0\n", marker.display()),
    )
}

fn tripped(s: &Scratch) -> bool {
    s.path().join("trainer-ran").exists()
}

#[cfg(unix)]
#[test]
fn input_names_that_could_escape_or_confuse_are_rejected() {
    use std::os::unix::ffi::OsStrExt;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.csv"), "x\n").unwrap();
    let cases: Vec<(std::ffi::OsString, &str)> = vec![
        ("-rf.csv".into(), "would be read as a flag"),
        ("back\\slash.csv".into(), "could escape its directory"),
        ("new\nline.csv".into(), "control characters"),
        (
            std::ffi::OsStr::from_bytes(b"caf\xe9.csv").to_owned(),
            "not valid UTF-8",
        ),
        ("link.csv".into(), "outside the input directory"),
    ];
    for (name, why) in cases {
        let s = Scratch::new();
        s.copy_input("iris.csv", "iris.csv");
        let path = s.inputs().join(&name);
        if name == "link.csv" {
            std::os::unix::fs::symlink(outside.path().join("secret.csv"), &path).unwrap();
        } else {
            std::fs::write(&path, "a,b\n1,2\n").unwrap();
        }
        let trainer = tripwire(&s);
        let out = s.run(&trainer, &[]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{name:?}: {stderr}");
        assert!(
            stderr.contains("input `"),
            "the message names the file: {stderr}"
        );
        assert!(!tripped(&s), "{name:?}: nothing may run");
        assert!(s.run_dirs().is_empty(), "{name:?}: no run directory");
    }
}

#[test]
fn an_empty_input_directory_is_a_clear_error() {
    let s = Scratch::new();
    s.inputs();
    let out = s.run(&tripwire(&s), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no *.csv files"));
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    s.copy_input("wine.csv", "wine.csv");
    let trainer = tripwire(&s);
    let out = s.run(
        &trainer,
        &[
            "--dry-run",
            "--concurrency",
            "1",
            "--",
            "--n-estimators",
            "7",
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("dry run"), "{plan}");
    assert!(plan.contains("Staged objects (3"), "{plan}");
    assert!(plan.contains("Tasks (2 for 2 inputs)"), "{plan}");
    for name in ["iris.csv", "wine.csv"] {
        let cmd = plan
            .lines()
            .find(|l| l.contains("$ ") && l.contains(name))
            .unwrap_or_else(|| panic!("no command for {name}: {plan}"));
        assert!(cmd.contains("--n-estimators 7 --threads"), "{cmd}");
        assert!(cmd.contains("output.txt"), "{cmd}");
    }
    assert!(!tripped(&s), "the trainer ran");
    assert!(!s.out().exists(), "dry run wrote {}", s.out().display());
}

fn dry_plan(s: &Scratch, extra: &[&str], env: &[(&str, &str)]) -> String {
    let trainer = tripwire(s);
    let mut cmd = s.command();
    cmd.arg("--out")
        .arg(s.out())
        .arg("run")
        .arg(s.inputs())
        .arg("--trainer")
        .arg(&trainer)
        .arg("--dry-run")
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn flags_beat_environment_beats_config_file() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "a.csv");
    s.copy_input("wine.csv", "b.csv");
    s.copy_input("digits.csv", "c.csv");
    std::fs::write(
        s.path().join("orchestrator.toml"),
        "concurrency = 3\nretries = 5\ntimeout = \"7m\"\ntrainer_args = [\"--cv\", \"3\"]\n",
    )
    .unwrap();

    // The file alone.
    let plan = dry_plan(&s, &[], &[]);
    assert!(plan.contains("concurrency: 3 task(s)"), "{plan}");
    assert!(plan.contains("retries:     5; timeout: 420 s"), "{plan}");
    assert!(plan.contains("--cv 3"), "{plan}");

    // Environment over file; flags over both.
    let env = [
        ("ORCHESTRATOR_RETRIES", "4"),
        ("ORCHESTRATOR_CONCURRENCY", "2"),
        ("ORCHESTRATOR_TIMEOUT", "1m"),
    ];
    let plan = dry_plan(&s, &["--timeout", "9m"], &env);
    assert!(plan.contains("concurrency: 2 task(s)"), "{plan}");
    assert!(plan.contains("retries:     4; timeout: 540 s"), "{plan}");

    // Trainer flags after `--` replace the file's.
    let plan = dry_plan(&s, &["--", "--n-estimators", "4"], &[]);
    assert!(
        plan.contains("--n-estimators 4") && !plan.contains("--cv 3"),
        "{plan}"
    );

    // --config names another file instead of ./orchestrator.toml.
    let other = s.path().join("other.toml");
    std::fs::write(&other, "concurrency = 1\n").unwrap();
    let plan = dry_plan(&s, &["--config", other.to_str().unwrap()], &[]);
    assert!(plan.contains("concurrency: 1 task(s)"), "{plan}");
    assert!(
        plan.contains("retries:     2; timeout: none"),
        "defaults: {plan}"
    );
}

#[test]
fn a_misspelt_config_key_is_refused_with_its_name() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    std::fs::write(s.path().join("orchestrator.toml"), "concurency = 3\n").unwrap();
    let out = s.run(&tripwire(&s), &["--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("concurency") && stderr.contains("orchestrator.toml"),
        "{stderr}"
    );
}

/// A backend's table in the file reaches that backend (and only a known backend's table is
/// accepted); here Azure Batch's, seen in the request bodies of its dry run.
#[test]
fn a_backends_table_in_the_config_file_reaches_that_backend() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    let toml = s.path().join("orchestrator.toml");
    std::fs::write(
        &toml,
        "backend = \"azure-batch\"\n[azure_batch]\nvm-size = \"Standard_D4s_v5\"\ntask-slots = 3\n",
    )
    .unwrap();
    // Credentials-shaped values only: a dry run builds the clients and sends nothing.
    let env = [
        (
            "AZURE_BATCH_ACCOUNT_URL",
            "https://acct.westeurope.batch.azure.com",
        ),
        ("AZURE_BATCH_ACCOUNT_KEY", "a2V5"),
        ("AZURE_STORAGE_ACCOUNT", "acct"),
        ("AZURE_STORAGE_KEY", "a2V5"),
    ];
    let plan = dry_plan(&s, &[], &env);
    assert!(
        plan.contains("\"vmSize\": \"Standard_D4s_v5\"")
            && plan.contains("\"taskSlotsPerNode\": 3"),
        "{plan}"
    );
    for (text, want) in [
        ("[slurmm]\npartition = \"x\"\n", "slurmm"),
        ("[local]\nthreads = 2\n", "[local]"),
    ] {
        std::fs::write(&toml, text).unwrap();
        let out = s.run(&tripwire(&s), &["--dry-run"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(want), "{text}: {stderr}");
    }
}

#[test]
fn status_shows_where_a_run_stands_and_cleanup_keeps_shared_objects() {
    let s = Scratch::new();
    s.copy_input("iris.csv", "iris.csv");
    s.write_input("bad.csv", "");
    let out = s.run(&trainer_bin(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let run_dir = s.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();

    let status = s.out_command(&["status", &run_id]);
    assert!(status.status.success(), "{}", show(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("state: finished"), "{text}");
    assert!(text.contains("failed 1, succeeded 1"), "{text}");

    // A second run shares the trainer and iris.csv; only bad.csv's object is this run's own.
    std::fs::remove_file(s.inputs().join("bad.csv")).unwrap();
    let second = s.run(&trainer_bin(), &[]);
    assert!(second.status.success(), "{}", show(&second));
    let objects = || std::fs::read_dir(s.out().join("objects")).unwrap().count();
    assert_eq!(objects(), 3);
    let cleanup = s.out_command(&["cleanup", &run_id]);
    assert!(cleanup.status.success(), "{}", show(&cleanup));
    assert_eq!(objects(), 2, "only the object no other run uses is gone");
    assert!(run_dir.join("report.csv").is_file(), "results are kept");
}

#[test]
fn an_out_directory_that_is_or_holds_the_inputs_is_refused() {
    let s = Scratch::new();
    s.write_input("a.csv", ",x,y\n0,1,a\n");
    let trainer = tripwire(&s);
    for (out, says) in [
        (s.inputs(), "is the input directory"),
        (s.path().to_path_buf(), "contains the input directory"),
    ] {
        let o = s
            .command()
            .arg("--out")
            .arg(&out)
            .arg("run")
            .arg(s.inputs())
            .arg("--trainer")
            .arg(&trainer)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!tripped(&s));
    assert_eq!(
        std::fs::read_dir(s.inputs()).unwrap().count(),
        1,
        "nothing written"
    );
}

/// Trainer stderr reaches the report and the terminal: control characters are escaped in the
/// summary (a raw `\r` or escape sequence rewrote the table) and report.csv cells that a
/// spreadsheet would run as formulas start with `'`.
#[test]
fn untrusted_text_is_escaped_in_the_summary_and_report_csv() {
    let s = Scratch::new();
    s.write_input("=HYPERLINK.csv", ",x,y\n0,1,a\n");
    let trainer = s.script(
        "hostile.sh",
        "printf '=cmd|calc\\nheader \\033[31mred\\rX\\n' >&2\nexit 1\n",
    );
    let out = s.run(&trainer, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\r'),
        "{stdout:?}"
    );
    assert!(stdout.contains(r"header \u{1b}[31mred\rX"), "{stdout}");

    let csv = std::fs::read_to_string(s.run_dir().join("report.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(&row[0], "'=HYPERLINK.csv", "{csv}");
    assert!(row[7].starts_with("'=cmd|calc"), "{csv}");
}
