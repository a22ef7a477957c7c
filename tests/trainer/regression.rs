//! The new estimators against scikit-learn 1.9.1: 50 cases (every estimator class, each
//! regression criterion, scorers, flags and refusals) on the regression fixtures, with the
//! expected output, warnings and per-fold scores that `scripts/oracle/estimator_golden.py
//! --all` wrote for them. `tests/golden/estimators.json` takes over as the oracle's goldens
//! name these features; these cases stay as the trainer's own record of what it matched.

use serde_json::Value;

use crate::golden::check_all;
use crate::util::{repo_root, run, stderr};

const CASES: &str = r#"[
 {
  "name": "rfr_diabetes_default",
  "csv": "tests/fixtures/regression/diabetes.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.40430825695233025",
  "warning": null,
  "fold_scores": [
   "0.35700638173126775",
   "0.5234598315414319",
   "0.38941514938603217",
   "0.29797280928247394",
   "0.45368711282044527"
  ]
 },
 {
  "name": "rfr_missing_features_default",
  "csv": "tests/fixtures/regression/missing_features.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.6568305329768565",
  "warning": null,
  "fold_scores": [
   "0.7304610684502721",
   "0.5699273706081276",
   "0.6489737223348067",
   "0.7070251548769384",
   "0.6277653486141378"
  ]
 },
 {
  "name": "rfr_missing_whole_column_default",
  "csv": "tests/fixtures/regression/missing_whole_column.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.8226871912178076",
  "warning": null,
  "fold_scores": [
   "0.8142859805062871",
   "0.8616827925047229",
   "0.8266410424287924",
   "0.7962015877017482",
   "0.8146245529474874"
  ]
 },
 {
  "name": "rfr_constant_target_default",
  "csv": "tests/fixtures/regression/constant_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: 1.0",
  "warning": null,
  "fold_scores": [
   "1.0",
   "1.0",
   "1.0",
   "1.0",
   "1.0"
  ]
 },
 {
  "name": "rfr_huge_targets_default",
  "csv": "tests/fixtures/regression/huge_targets.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: nan",
  "warning": null
 },
 {
  "name": "rfr_ties_default",
  "csv": "tests/fixtures/regression/ties.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.9119928648372039",
  "warning": null,
  "fold_scores": [
   "0.9298341193090821",
   "0.9089370255074726",
   "0.9317054395018787",
   "0.9501166252578794",
   "0.8393711146097066"
  ]
 },
 {
  "name": "rfr_bool_target_default",
  "csv": "tests/fixtures/regression/bool_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.9473870129870129",
  "warning": null,
  "fold_scores": [
   "1.0",
   "1.0",
   "0.7805714285714285",
   "1.0",
   "0.9563636363636363"
  ]
 },
 {
  "name": "rfr_tiny_4_default",
  "csv": "tests/fixtures/regression/tiny_4.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_bad_nan_target_default",
  "csv": "tests/fixtures/regression/bad_nan_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_bad_string_target_default",
  "csv": "tests/fixtures/regression/bad_string_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_bad_infinite_target_default",
  "csv": "tests/fixtures/regression/bad_infinite_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_integer_targets_criterion_friedman_mse",
  "csv": "tests/fixtures/regression/integer_targets.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "friedman_mse"
  ],
  "status": "ok",
  "output": "The model score: 0.9553562356519099",
  "warning": null,
  "fold_scores": [
   "0.9893899700598803",
   "0.9898201895098112",
   "0.9803195380173243",
   "0.8702960136824102",
   "0.946955466990123"
  ]
 },
 {
  "name": "rfr_ties_criterion_absolute_error",
  "csv": "tests/fixtures/regression/ties.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "absolute_error"
  ],
  "status": "ok",
  "output": "The model score: 0.901803060639763",
  "warning": null,
  "fold_scores": [
   "0.9170766319772943",
   "0.9060736902705815",
   "0.9244240282685512",
   "0.9338935230618253",
   "0.827547429620563"
  ]
 },
 {
  "name": "rfr_missing_features_criterion_absolute_error",
  "csv": "tests/fixtures/regression/missing_features.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "absolute_error"
  ],
  "status": "ok",
  "output": "The model score: 0.6517700148070983",
  "warning": null,
  "fold_scores": [
   "0.6885616842295826",
   "0.5254626825178361",
   "0.6086663632261728",
   "0.7553951381487874",
   "0.680764205913112"
  ]
 },
 {
  "name": "rfr_huge_targets_criterion_absolute_error",
  "csv": "tests/fixtures/regression/huge_targets.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "absolute_error"
  ],
  "status": "ok",
  "output": "The model score: nan",
  "warning": null
 },
 {
  "name": "rfr_ties_criterion_poisson",
  "csv": "tests/fixtures/regression/ties.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "ok",
  "output": "The model score: 0.9119928648372039",
  "warning": null,
  "fold_scores": [
   "0.9298341193090821",
   "0.9089370255074726",
   "0.9317054395018787",
   "0.9501166252578794",
   "0.8393711146097066"
  ]
 },
 {
  "name": "rfr_missing_features_criterion_poisson",
  "csv": "tests/fixtures/regression/missing_features.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_integer_targets_criterion_poisson",
  "csv": "tests/fixtures/regression/integer_targets.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "ok",
  "output": "The model score: 0.9509274772637017",
  "warning": null,
  "fold_scores": [
   "0.978431886227545",
   "0.9891128851749608",
   "0.9837844080846968",
   "0.8757531903696881",
   "0.9275550164616185"
  ]
 },
 {
  "name": "rfr_huge_targets_criterion_poisson",
  "csv": "tests/fixtures/regression/huge_targets.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_negative_targets_criterion_poisson",
  "csv": "tests/fixtures/regression/negative_targets.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_large_targets_1e150_criterion_poisson",
  "csv": "tests/fixtures/regression/large_targets_1e150.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "error",
  "output": null,
  "warning": null
 },
 {
  "name": "rfr_make_regression_scoring_explained_variance",
  "csv": "tests/fixtures/regression/make_regression.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--scoring",
   "explained_variance"
  ],
  "status": "ok",
  "output": "The model score: 0.8186150846322079",
  "warning": null,
  "fold_scores": [
   "0.806366835495018",
   "0.8434799088320452",
   "0.788891015527019",
   "0.8168103147265158",
   "0.8375273485804411"
  ]
 },
 {
  "name": "rfr_constant_target_scoring_explained_variance",
  "csv": "tests/fixtures/regression/constant_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--scoring",
   "explained_variance"
  ],
  "status": "ok",
  "output": "The model score: 1.0",
  "warning": null,
  "fold_scores": [
   "1.0",
   "1.0",
   "1.0",
   "1.0",
   "1.0"
  ]
 },
 {
  "name": "rfr_make_regression_scoring_neg_root_mean_squared_error",
  "csv": "tests/fixtures/regression/make_regression.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--scoring",
   "neg_root_mean_squared_error"
  ],
  "status": "ok",
  "output": "The model score: -62.851861927483",
  "warning": null,
  "fold_scores": [
   "-56.841391931006974",
   "-63.22099527625725",
   "-71.41993732359435",
   "-69.26629183460025",
   "-53.510693271956214"
  ]
 },
 {
  "name": "rfr_constant_target_scoring_neg_root_mean_squared_error",
  "csv": "tests/fixtures/regression/constant_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--scoring",
   "neg_root_mean_squared_error"
  ],
  "status": "ok",
  "output": "The model score: 0.0",
  "warning": null,
  "fold_scores": [
   "-0.0",
   "-0.0",
   "-0.0",
   "-0.0",
   "-0.0"
  ]
 },
 {
  "name": "rfr_make_regression_scoring_neg_median_absolute_error",
  "csv": "tests/fixtures/regression/make_regression.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--scoring",
   "neg_median_absolute_error"
  ],
  "status": "ok",
  "output": "The model score: -41.75141639105758",
  "warning": null,
  "fold_scores": [
   "-42.54302701098952",
   "-43.99692314206358",
   "-43.91280322269431",
   "-39.425311666390826",
   "-38.87901691314967"
  ]
 },
 {
  "name": "rfr_constant_target_scoring_neg_median_absolute_error",
  "csv": "tests/fixtures/regression/constant_target.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--scoring",
   "neg_median_absolute_error"
  ],
  "status": "ok",
  "output": "The model score: 0.0",
  "warning": null,
  "fold_scores": [
   "-0.0",
   "-0.0",
   "-0.0",
   "-0.0",
   "-0.0"
  ]
 },
 {
  "name": "rfr_diabetes_max_features_sqrt",
  "csv": "tests/fixtures/regression/diabetes.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--max-features",
   "sqrt"
  ],
  "status": "ok",
  "output": "The model score: 0.4183034186537261",
  "warning": null,
  "fold_scores": [
   "0.34432053895632675",
   "0.454107040207699",
   "0.42686892357086625",
   "0.39377610511210503",
   "0.4724444854216332"
  ]
 },
 {
  "name": "rfr_friedman1_bootstrap_min_samples_leaf_4",
  "csv": "tests/fixtures/regression/friedman1.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--bootstrap",
   "--min-samples-leaf",
   "4"
  ],
  "status": "ok",
  "output": "The model score: 0.7165646028928168",
  "warning": null,
  "fold_scores": [
   "0.6990678513616835",
   "0.6993269153756241",
   "0.7463241833096963",
   "0.7179784722193501",
   "0.7201255921977299"
  ]
 },
 {
  "name": "rfr_tiny_4_cv_2",
  "csv": "tests/fixtures/regression/tiny_4.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--cv",
   "2"
  ],
  "status": "ok",
  "output": "The model score: -0.568562003494788",
  "warning": null,
  "fold_scores": [
   "-1.2528073330775222",
   "0.11568332608794629"
  ]
 },
 {
  "name": "rfr_diabetes_criterion_entropy",
  "csv": "tests/fixtures/regression/diabetes.csv",
  "args": [
   "--estimator",
   "RandomForestRegressor",
   "--criterion",
   "entropy"
  ],
  "status": "error",
  "output": null,
  "warning": null,
  "error_mentions": "entropy"
 },
 {
  "name": "etr_missing_features_default",
  "csv": "tests/fixtures/regression/missing_features.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.7002224019362671",
  "warning": null,
  "fold_scores": [
   "0.6805158900700161",
   "0.6178727483426893",
   "0.6983703069619052",
   "0.7888906445155686",
   "0.7154624197911562"
  ]
 },
 {
  "name": "etr_constant_first_fold_default",
  "csv": "tests/fixtures/regression/constant_first_fold.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor"
  ],
  "status": "ok",
  "output": "The model score: -5.888475593038747",
  "warning": null,
  "fold_scores": [
   "0.0",
   "-10.234953119033884",
   "-5.533514197756997",
   "-6.653506597577259",
   "-7.020404050825594"
  ]
 },
 {
  "name": "etr_huge_features_default",
  "csv": "tests/fixtures/regression/huge_features.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor"
  ],
  "status": "ok",
  "output": "The model score: 0.5690473019703346",
  "warning": null,
  "fold_scores": [
   "0.8486358130769442",
   "0.7517375045697081",
   "0.41385057835616623",
   "0.5682616359301009",
   "0.2627509779187538"
  ]
 },
 {
  "name": "etr_zero_fold_targets_default",
  "csv": "tests/fixtures/regression/zero_fold_targets.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor"
  ],
  "status": "ok",
  "output": "The model score: -0.23845417035072244",
  "warning": null,
  "fold_scores": [
   "0.0",
   "-0.7793103448275875",
   "0.011111111111111183",
   "-0.1826923076923075",
   "-0.2413793103448283"
  ]
 },
 {
  "name": "etr_ties_criterion_squared_error",
  "csv": "tests/fixtures/regression/ties.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--criterion",
   "squared_error"
  ],
  "status": "ok",
  "output": "The model score: 0.9123852613933714",
  "warning": null,
  "fold_scores": [
   "0.9360859396843989",
   "0.9138293975534902",
   "0.9258334703536851",
   "0.9447385661522154",
   "0.8414389332230672"
  ]
 },
 {
  "name": "etr_zero_fold_targets_criterion_squared_error",
  "csv": "tests/fixtures/regression/zero_fold_targets.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--criterion",
   "squared_error"
  ],
  "status": "ok",
  "output": "The model score: -0.23845417035072244",
  "warning": null,
  "fold_scores": [
   "0.0",
   "-0.7793103448275875",
   "0.011111111111111183",
   "-0.1826923076923075",
   "-0.2413793103448283"
  ]
 },
 {
  "name": "etr_counts_criterion_friedman_mse",
  "csv": "tests/fixtures/regression/counts.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--criterion",
   "friedman_mse"
  ],
  "status": "ok",
  "output": "The model score: 0.2994528781683932",
  "warning": null,
  "fold_scores": [
   "0.5022745098039216",
   "0.08982706002034613",
   "-0.033295454545454684",
   "0.389407162202829",
   "0.549051113360324"
  ]
 },
 {
  "name": "etr_ties_criterion_absolute_error",
  "csv": "tests/fixtures/regression/ties.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--criterion",
   "absolute_error"
  ],
  "status": "ok",
  "output": "The model score: 0.8847162446076811",
  "warning": null,
  "fold_scores": [
   "0.9085461999369284",
   "0.9040491268470543",
   "0.8982332155477032",
   "0.8994111874386653",
   "0.8133414932680538"
  ]
 },
 {
  "name": "etr_zero_fold_targets_criterion_absolute_error",
  "csv": "tests/fixtures/regression/zero_fold_targets.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--criterion",
   "absolute_error"
  ],
  "status": "ok",
  "output": "The model score: -0.12069554966106721",
  "warning": null,
  "fold_scores": [
   "0.0",
   "-0.6551724137931048",
   "-0.18888888888888888",
   "-0.10769230769230753",
   "0.3482758620689651"
  ]
 },
 {
  "name": "etr_counts_criterion_poisson",
  "csv": "tests/fixtures/regression/counts.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--criterion",
   "poisson"
  ],
  "status": "ok",
  "output": "The model score: 0.27680235218746085",
  "warning": null,
  "fold_scores": [
   "0.5302046916544395",
   "0.12432913353540831",
   "-0.18513839704442403",
   "0.4237703054639451",
   "0.49084602732793536"
  ]
 },
 {
  "name": "etr_huge_targets_scoring_neg_mean_absolute_error",
  "csv": "tests/fixtures/regression/huge_targets.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--scoring",
   "neg_mean_absolute_error"
  ],
  "status": "ok",
  "output": "The model score: -4.596740734277714e+299",
  "warning": null,
  "fold_scores": [
   "-6.424643458733494e+299",
   "-5.473166231529872e+299",
   "-4.9883043875384824e+299",
   "-3.1868237240926473e+299",
   "-2.9107658694940737e+299"
  ]
 },
 {
  "name": "etr_missing_features_max_features_0.3_max_depth_4",
  "csv": "tests/fixtures/regression/missing_features.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--max-features",
   "0.3",
   "--max-depth",
   "4"
  ],
  "status": "ok",
  "output": "The model score: 0.21315743477831828",
  "warning": null,
  "fold_scores": [
   "0.18669491484751788",
   "0.07403003054917212",
   "0.24024293969941113",
   "0.23498665174196365",
   "0.3298326370535266"
  ]
 },
 {
  "name": "etr_tiny_12_cv_12",
  "csv": "tests/fixtures/regression/tiny_12.csv",
  "args": [
   "--estimator",
   "ExtraTreesRegressor",
   "--cv",
   "12"
  ],
  "status": "ok",
  "output": "The model score: nan",
  "warning": "R^2 score is not well-defined with less than two samples."
 },
 {
  "name": "etc_wine_default",
  "csv": "input_files/wine.csv",
  "args": [
   "--estimator",
   "ExtraTreesClassifier"
  ],
  "status": "ok",
  "output": "The model score: 0.9496825396825397",
  "warning": null,
  "fold_scores": [
   "0.8611111111111112",
   "1.0",
   "0.9444444444444444",
   "1.0",
   "0.9428571428571428"
  ]
 },
 {
  "name": "etc_missing_many_default",
  "csv": "tests/fixtures/trainer/missing_many.csv",
  "args": [
   "--estimator",
   "ExtraTreesClassifier"
  ],
  "status": "ok",
  "output": "The model score: 0.5666666666666667",
  "warning": null,
  "fold_scores": [
   "0.8333333333333334",
   "0.5",
   "0.5555555555555556",
   "0.3333333333333333",
   "0.6111111111111112"
  ]
 },
 {
  "name": "etc_rare_class_default",
  "csv": "tests/fixtures/trainer/rare_class.csv",
  "args": [
   "--estimator",
   "ExtraTreesClassifier"
  ],
  "status": "ok",
  "output": "The model score: 0.5166666666666666",
  "warning": "The least populated class in y has only 3 members, which is less than n_splits=5.",
  "fold_scores": [
   "0.5",
   "0.5",
   "0.6666666666666666",
   "0.4166666666666667",
   "0.5"
  ]
 },
 {
  "name": "etc_labels_bool_default",
  "csv": "tests/fixtures/trainer/labels_bool.csv",
  "args": [
   "--estimator",
   "ExtraTreesClassifier"
  ],
  "status": "ok",
  "output": "The model score: 0.6166666666666667",
  "warning": null,
  "fold_scores": [
   "0.5",
   "0.75",
   "0.5833333333333334",
   "0.5833333333333334",
   "0.6666666666666666"
  ]
 },
 {
  "name": "etc_missing_many_criterion_entropy",
  "csv": "tests/fixtures/trainer/missing_many.csv",
  "args": [
   "--estimator",
   "ExtraTreesClassifier",
   "--criterion",
   "entropy"
  ],
  "status": "ok",
  "output": "The model score: 0.5444444444444444",
  "warning": null,
  "fold_scores": [
   "0.7222222222222222",
   "0.5555555555555556",
   "0.6111111111111112",
   "0.4444444444444444",
   "0.3888888888888889"
  ]
 },
 {
  "name": "etc_iris_scoring_roc_auc",
  "csv": "input_files/iris.csv",
  "args": [
   "--estimator",
   "ExtraTreesClassifier",
   "--scoring",
   "roc_auc"
  ],
  "status": "ok",
  "output": "The model score: nan",
  "warning": "Scoring failed. The score on this train-test partition for these parameters will be set to nan. Details: ValueError: multi_class must be in ('ovo', 'ovr')"
 }
]"#;

#[test]
fn regression_and_extra_trees_cases_match_the_reference() {
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("cases parse");
    assert_eq!(cases.len(), 50);
    check_all(&cases, &repo_root(), "tests/trainer/regression.rs");
}

#[test]
fn a_scorer_that_cannot_score_a_regressor_is_refused_up_front() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/diabetes.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    for scoring in ["accuracy", "roc_auc", "neg_log_loss"] {
        let o = run(
            &csv,
            &out,
            &["--estimator", "ExtraTreesRegressor", "--scoring", scoring],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{scoring}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("does not fit ExtraTreesRegressor"), "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn each_estimator_has_its_own_defaults_and_the_report_names_them() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/diabetes.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let json = dir.path().join("r.json");
    let json_arg = json.to_str().unwrap();
    let o = run(
        &csv,
        &out,
        &["--estimator", "ExtraTreesRegressor", "--json", json_arg],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let p = &v["parameters"];
    assert_eq!(p["estimator"], "ExtraTreesRegressor");
    assert_eq!(p["criterion"], "squared_error");
    assert_eq!(p["max_features"], "1.0");
    assert_eq!(p["bootstrap"], false);
    assert_eq!(p["scoring"], "r2");
    assert_eq!(v["fold_scores"].as_array().unwrap().len(), 5);
    let flags: Vec<String> = serde_json::from_value(v["flags"].clone()).unwrap();
    assert_eq!(flags[0], "--estimator=ExtraTreesRegressor");
    assert!(!flags.iter().any(|f| f.contains("bootstrap")), "{flags:?}");
    // Running with the report's flags gives the same bytes.
    let again = dir.path().join("again.txt");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let o = run(&csv, &again, &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
    // --bootstrap turns it on, and the report says so with the flag.
    let o = run(
        &csv,
        &out,
        &[
            "--estimator",
            "ExtraTreesRegressor",
            "--bootstrap",
            "--json",
            json_arg,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["parameters"]["bootstrap"], true);
    assert!(
        v["flags"]
            .as_array()
            .unwrap()
            .contains(&"--bootstrap".into())
    );
}

#[test]
fn estimator_flags_are_checked_in_one_line() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/diabetes.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    for args in [
        &[
            "--estimator",
            "RandomForestRegressor",
            "--criterion",
            "gini",
        ][..],
        &["--criterion", "poisson"][..],
        &["--estimator", "GradientBoosting"][..],
        &["--bootstrap", "--no-bootstrap"][..],
    ] {
        let o = run(&csv, &out, args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!out.exists());
    }
}

#[test]
fn a_classifier_on_a_continuous_target_points_to_the_regressor() {
    let root = repo_root();
    let csv = root.join("tests/fixtures/regression/make_regression.csv");
    let dir = tempfile::tempdir().unwrap();
    let o = run(&csv, &dir.path().join("out.txt"), &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--estimator RandomForestRegressor"), "{err}");
}
