//! Checked settings for one command, and the optional TOML file they may come from.
//!
//! Precedence is flags, then `ORCHESTRATOR_*` environment variables (both resolved by clap in
//! `cli.rs`), then the TOML file (`--config PATH`, else `./orchestrator.toml` if present), then
//! the defaults documented on each field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backend::BackendKind;
use crate::{Error, Result};

/// Default number of extra attempts for a task whose failure may be transient.
pub const DEFAULT_RETRIES: u32 = 2;
/// Default output directory.
pub const DEFAULT_OUT: &str = "runs";
/// Configuration file read when `--config` is not given and the file exists.
pub const DEFAULT_CONFIG_FILE: &str = "orchestrator.toml";

/// The optional TOML configuration file. Every key is optional; flags and environment
/// variables win over it.
///
/// ```toml
/// backend = "local"
/// out = "runs"
/// trainer = "target/release/trainer"
/// concurrency = 2
/// retries = 2
/// timeout = "10m"
/// trainer_args = ["--n-estimators", "20"]
///
/// [slurm]            # each backend's own table, named in `backend::backends!`
/// partition = "debug"
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `local`, `azure-batch` or `slurm`.
    pub backend: Option<String>,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Trainer executable.
    pub trainer: Option<PathBuf>,
    /// Tasks at once.
    pub concurrency: Option<usize>,
    /// Extra attempts for retryable failures.
    pub retries: Option<u32>,
    /// Per-attempt time limit, e.g. `"90s"`, `"10m"`.
    pub timeout: Option<String>,
    /// Trainer flags used when none are given after `--`.
    pub trainer_args: Option<Vec<String>>,
    /// Each backend's table (`[slurm]`, `[azure_batch]`), by its name; read by that backend's
    /// own code.
    #[serde(skip)]
    pub backend_tables: BTreeMap<String, toml::Table>,
}

impl FileConfig {
    /// Reads `explicit`, or `./orchestrator.toml` when it exists, or nothing.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => return Err(Error::io("read configuration file", path, e)),
        };
        Self::parse(&text).map_err(|e| Error::Config(format!("`{}`: {e}", path.display())))
    }

    /// Parses the file's text: the backends' tables are set aside by name, and every other
    /// key must be one of the fields above.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut backend_tables = BTreeMap::new();
        for name in BackendKind::TABLES {
            match doc.remove(*name) {
                None => {}
                Some(toml::Value::Table(t)) => {
                    backend_tables.insert((*name).to_owned(), t);
                }
                Some(_) => return Err(format!("`{name}` must be a table (`[{name}]`)")),
            }
        }
        let mut config: Self =
            toml::Value::Table(doc)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    format!(
                        "{} (or a backend's table: {})",
                        e.message().trim_end_matches('\n'),
                        BackendKind::TABLES.join(", ")
                    )
                })?;
        config.backend_tables = backend_tables;
        Ok(config)
    }

    /// The table of the backend whose table is called `name`, if the file has one.
    pub fn backend_table(&self, name: &str) -> Option<&toml::Table> {
        self.backend_tables.get(name)
    }
}

/// Everything `orchestrator run` needs, checked.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Directory holding the input CSVs.
    pub input_dir: PathBuf,
    /// Output directory: runs live in `out/<run-id>/`, staged objects in `out/objects/`.
    pub out_dir: PathBuf,
    /// The engine.
    pub backend: BackendKind,
    /// Trainer executable, if given; otherwise discovered (see `input::find_trainer`).
    pub trainer: Option<PathBuf>,
    /// Tasks at once; `None` sizes it from the worker's cores and the trainer's threads.
    pub concurrency: Option<usize>,
    /// Extra attempts for retryable failures.
    pub retries: u32,
    /// Per-attempt time limit.
    pub timeout: Option<Duration>,
    /// Print the plan and run nothing.
    pub dry_run: bool,
    /// Use this run id instead of the one derived from the inputs, flags and trainer.
    pub run_id: Option<String>,
    /// Flags passed to the trainer after `INPUT OUTPUT` (in a sweep: the fixed ones).
    pub trainer_args: Vec<String>,
    /// A sweep's settings: every input runs once per setting. `None` runs each input once.
    pub grid: Option<crate::sweep::Grid>,
}

/// Settings a `resume` may change; everything else comes from the run's manifest.
#[derive(Debug, Clone, Default)]
pub struct ResumeOverrides {
    /// Tasks at once.
    pub concurrency: Option<usize>,
    /// Extra attempts for retryable failures.
    pub retries: Option<u32>,
    /// Per-attempt time limit.
    pub timeout: Option<Duration>,
}

/// Parses `90`, `90s`, `1.5m`, `2h`, `500ms` into a duration; a bare number is seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 90s, 10m, 1h, 500ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use ms, s, m or h)"
            ));
        }
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let err = FileConfig::parse("concurency = 3").unwrap_err();
        assert!(err.contains("concurency"), "{err}");
        let err = FileConfig::parse("[slurmm]\npartition = \"x\"").unwrap_err();
        assert!(
            err.contains("slurmm") && err.contains("azure_batch"),
            "{err}"
        );
        let err = FileConfig::parse("slurm = 3").unwrap_err();
        assert!(err.contains("must be a table"), "{err}");
        let ok = FileConfig::parse("concurrency = 3\ntimeout = \"5m\"").unwrap();
        assert_eq!(ok.concurrency, Some(3));
    }

    #[test]
    fn each_backend_table_is_kept_for_its_backend() {
        let c = FileConfig::parse("backend = \"slurm\"\n[slurm]\npartition = \"debug\"\n").unwrap();
        assert_eq!(c.backend.as_deref(), Some("slurm"));
        let t = c.backend_table(BackendKind::Slurm.table()).unwrap();
        assert_eq!(t["partition"].as_str(), Some("debug"));
        assert!(c.backend_table(BackendKind::AzureBatch.table()).is_none());
    }
}
