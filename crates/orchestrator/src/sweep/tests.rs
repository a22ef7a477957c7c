//! Unit tests of the grid, sampling and best selection.

use super::*;

fn options(axes: &[&str]) -> GridOptions {
    GridOptions {
        axes: axes.iter().map(|a| (*a).to_owned()).collect(),
        ..GridOptions::default()
    }
}

fn message(e: Error) -> String {
    match e {
        Error::Grid(m) => m,
        other => panic!("expected a grid error, got {other}"),
    }
}

#[test]
fn a_product_runs_the_first_flag_slowest_and_sorts_each_setting_by_name() {
    let g = Grid::product(&[
        "n-estimators=10,50",
        "max-depth=none,8",
        "no-bootstrap=on,off",
    ])
    .unwrap();
    assert_eq!(g.flags, ["n-estimators", "max-depth", "no-bootstrap"]);
    assert_eq!(g.len(), 8);
    assert_eq!(g.settings[0], ["10", "none", "on"]);
    assert_eq!(g.settings[1], ["10", "none", "off"]);
    assert_eq!(g.settings[7], ["50", "8", "off"]);
    assert_eq!(g.args(0), ["--n-estimators=10", "--no-bootstrap"]);
    assert_eq!(
        g.args(2),
        ["--max-depth=8", "--n-estimators=10", "--no-bootstrap"]
    );
    assert_eq!(g.label(2), "n-estimators=10 max-depth=8 no-bootstrap=on");
}

#[test]
fn grid_syntax_errors_name_the_option() {
    let cases = [
        (
            vec!["n-estimators"],
            "--grid n-estimators: expected FLAG=VALUE",
        ),
        (vec!["n-estimators="], "no values, so the grid is empty"),
        (vec!["n-estimators=1,,2"], "empty value"),
        (vec!["n-estimators=1,1"], "value `1` is listed twice"),
        (vec!["--n-estimators=1"], "name the flag without its dashes"),
        (vec!["threads=1,2"], "--threads cannot be swept"),
        (vec!["a=1", "a=2"], "--a is swept twice"),
        (vec!["max-depth=none,off"], "run the same trainer flags"),
    ];
    for (axes, expected) in cases {
        let err = message(options(&axes).grid().unwrap_err());
        assert!(err.contains(expected), "{axes:?}: {err}");
    }
    assert!(options(&[]).grid().unwrap().is_none());
}

#[test]
fn fixed_and_swept_flags_may_not_overlap() {
    let g = Grid::product(&["n-estimators=1,2"]).unwrap();
    let fixed = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(g.check_fixed(&fixed(&["--max-depth", "3"])).is_ok());
    for args in [&["--n-estimators", "3"][..], &["--n-estimators=3"][..]] {
        let err = message(g.check_fixed(&fixed(args)).unwrap_err());
        assert!(err.contains("--n-estimators is given both"), "{err}");
    }
}

#[test]
fn samples_are_reproducible_distinct_and_grow_as_supersets() {
    let a = sample_indices(1000, 10, 7).unwrap();
    assert_eq!(a, sample_indices(1000, 10, 7).unwrap());
    assert_ne!(a, sample_indices(1000, 10, 8).unwrap());
    assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
    let b = sample_indices(1000, 20, 7).unwrap();
    assert!(a.iter().all(|i| b.contains(i)), "{a:?} not in {b:?}");
    assert_eq!(sample_indices(5, 5, 1).unwrap(), [0, 1, 2, 3, 4]);
    assert!(sample_indices(5, 6, 1).is_err());
    assert!(sample_indices(5, 0, 1).is_err());
    // A product far too large to list is still sampled.
    let mut big = options(&["a=1,2,3,4,5,6,7,8,9,10"; 1]);
    for flag in ["b", "c", "d", "e", "f"] {
        big.axes.push(format!("{flag}=1,2,3,4,5,6,7,8,9,10"));
    }
    assert!(message(big.grid().unwrap_err()).contains("--sample"));
    big.sample = Some(3);
    assert_eq!(big.grid().unwrap().unwrap().len(), 3);
}

#[test]
fn csv_and_toml_grid_files() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("g.csv");
    std::fs::write(&csv, "n-estimators,max-features\n10,\n50,0.5\n").unwrap();
    let g = read_grid_file(&csv).unwrap();
    assert_eq!(g.flags, ["n-estimators", "max-features"]);
    assert_eq!(g.settings, [["10", "none"], ["50", "0.5"]]);

    let toml = dir.path().join("g.toml");
    std::fs::write(
        &toml,
        "[[setting]]\nn-estimators = 10\nmax-features = 1.0\n\n[[setting]]\nno-bootstrap = true\n",
    )
    .unwrap();
    let g = read_grid_file(&toml).unwrap();
    assert_eq!(g.flags, ["max-features", "n-estimators", "no-bootstrap"]);
    assert_eq!(g.settings, [["1.0", "10", "none"], ["none", "none", "on"]]);

    std::fs::write(&csv, "n-estimators\n").unwrap();
    assert!(message(read_grid_file(&csv).unwrap_err()).contains("no settings"));
    std::fs::write(&csv, "n-estimators,criterion\n10\n").unwrap();
    assert!(message(read_grid_file(&csv).unwrap_err()).contains("line 2"));
}

#[test]
fn best_goes_to_the_highest_score_and_ties_to_the_first_setting() {
    let g = Grid::product(&["n-estimators=1,2,3"]).unwrap();
    let cell = |input, setting, score| Cell {
        input,
        setting,
        task_id: "t",
        score,
    };
    let cells = [
        cell("a.csv", 0, Some("0.5")),
        cell("a.csv", 1, Some("0.9")),
        cell("a.csv", 2, Some("0.9")),
        cell("b.csv", 0, None),
        cell("b.csv", 1, None),
        cell("b.csv", 2, None),
    ];
    let best = best_per_input(&g, &cells);
    assert_eq!(best[0].label.as_deref(), Some("n-estimators=2"));
    assert_eq!(best[0].score.as_deref(), Some("0.9"));
    assert_eq!(
        (best[1].input.as_str(), best[1].score.as_ref()),
        ("b.csv", None)
    );
    let means = means_per_flag(&g, &cells);
    assert_eq!(means[0].values[1].mean, Some(0.9));
    assert_eq!(means[0].values[0].scored, 1);
}
