//! The trainer's single integration-test binary (one binary, topical modules).

// Shared helpers: temp dirs and running the built `trainer` binary.
mod util;
// Command-line behaviour on small inline CSVs: output bytes, errors, exit codes, atomic writes.
mod cli;
