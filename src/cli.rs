//! The command line: `serve`, `compile`, `check`, `config check`. Every exit code is decided here.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// fraudwall: a recursive DNS resolver that blocks fraud sites.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the resolver (with no --config: the embedded default, 127.0.0.1:5353).
    Serve {
        /// YAML config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Compile list files into one .fst blocklist.
    Compile {
        /// Where to write the compiled blocklist.
        #[arg(long, short)]
        out: PathBuf,
        /// Take the lists from this config instead of (or as well as) SOURCE files.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// List files (format from extension or content).
        sources: Vec<PathBuf>,
    },
    /// Say for each NAME whether it is blocked, and why.
    Check {
        /// A compiled blocklist.
        #[arg(long, conflicts_with = "config")]
        fst: Option<PathBuf>,
        /// Compile the lists of this config first (default: the embedded default's lists).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Explain the verdicts for this client address: its policy group and the lists that
        /// apply to it (the config's `policy:`).
        #[arg(long, conflicts_with = "fst")]
        client: Option<std::net::IpAddr>,
        /// Names to check.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// `fraudwall config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and report every problem.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::embedded_default(),
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config } => {
            let config = match load_config(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("fraudwall: {e}");
                    return ExitCode::from(2);
                }
            };
            crate::logging::init(&config.log);
            crate::process::tune_allocator();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("fraudwall: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let serve = async {
                let listeners = crate::app::bind(&config)?;
                crate::app::serve(config, listeners, crate::process::shutdown_signal()).await
            };
            match runtime.block_on(serve) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("fraudwall: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Compile {
            out,
            config,
            sources,
        } => {
            let mut specs = Vec::new();
            let mut guard = crate::blocklist::Guard::builtin();
            if let Some(p) = &config {
                match Config::load(p) {
                    Ok(c) => {
                        specs.extend(crate::lists::specs(&c.blocklists));
                        guard = c.blocklists.guard;
                    }
                    Err(e) => {
                        eprintln!("fraudwall: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            specs.extend(sources.iter().map(|p| crate::blocklist::ListSpec {
                guard: guard.clone(),
                ..crate::blocklist::ListSpec::from_path(p)
            }));
            if specs.is_empty() {
                eprintln!("fraudwall: nothing to compile: give SOURCE files or --config");
                return ExitCode::from(2);
            }
            let mut stdout = std::io::stdout().lock();
            match crate::blocklist::cli::compile_cmd(&out, &specs, &mut stdout) {
                // The others were compiled, but a list that could not be used is a failure.
                Ok(r) if !r.failed.is_empty() => ExitCode::FAILURE,
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fraudwall: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check {
            fst,
            config,
            client,
            names,
        } => {
            // With a config, its lists are compiled here and their refused entries explained.
            let mut specs = Vec::new();
            let mut policy = None;
            let bl = match fst {
                Some(p) => crate::blocklist::Blocklist::open(&p).map_err(|e| e.to_string()),
                None => load_config(config.as_ref())
                    .map_err(|e| e.to_string())
                    .and_then(|c| {
                        specs = crate::lists::specs(&c.blocklists);
                        policy = Some(crate::policy::Policy::new(&c.policy));
                        crate::lists::load(&c.blocklists).map_err(|e| format!("{e:#}"))
                    }),
            };
            let bl = match bl {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("fraudwall: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut stdout = std::io::stdout().lock();
            if let (Some(ip), Some(policy)) = (client, &policy) {
                let mut canon = Vec::new();
                for name in &names {
                    let mut c = String::new();
                    match crate::blocklist::normalize::normalize_into(name, &mut c) {
                        Ok(_) => canon.push(c),
                        Err(e) => {
                            eprintln!("fraudwall: {name}: invalid name: {e}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                return match policy.explain(&bl, ip, &canon, &mut stdout) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("fraudwall: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            match crate::blocklist::cli::check_cmd(&bl, &specs, &names, &mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fraudwall: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}
