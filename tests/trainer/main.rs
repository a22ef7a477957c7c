//! The trainer's single integration-test binary (one binary, topical modules).

// Shared helpers: temp dirs and running the built `trainer` binary.
mod util;
// Resource bounds: endless fields, sparse files, huge flags, no threads to start.
mod bounds;
// Command-line behaviour on small inline CSVs: output bytes, errors, exit codes, atomic writes.
mod cli;
// Thread-count independence, the JSON report, sklearn's rare-class warning.
mod determinism;
// Property tests: arbitrary and mutated inputs never panic.
mod fuzz;
// Reference outputs from scikit-learn 1.9.1 for every CSV in input_files/ and the fixtures.
mod golden;
// RandomForestRegressor and the extra trees against scikit-learn 1.9.1; their flags.
mod regression;
// The static release build from scripts/build-static.sh (ELF inspection, runs on iris).
mod static_build;
