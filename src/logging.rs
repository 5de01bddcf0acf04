//! The `log:` section of the configuration, and setting up `tracing` from it.

use serde::Deserialize;

use crate::section::Check;

/// `log:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `fraudwall=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogConfig {
    /// Validates the section: the level must be a filter `tracing` understands.
    pub fn validate(self, check: &mut Check) -> LogConfig {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            check.problem(
                "level",
                format!("{:?} is not a log filter: {e}", self.level),
            );
        }
        self
    }
}

/// Sets up `tracing`. `RUST_LOG` overrides `log.level`. hickory logs every request at INFO and
/// every lame or failing upstream at WARN, so its crates are held at ERROR unless asked for
/// explicitly. Colours only on a terminal.
pub fn init(cfg: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = if base.contains("hickory") {
        base
    } else {
        format!("{base},hickory_proto=error,hickory_resolver=error,hickory_net=error")
    };
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
