//! The contract between the config loader and the owners of its sections.
//!
//! Each section of the YAML file belongs to the module that uses it. That module defines the
//! section's serde shape (a named default per key, unknown keys rejected), its validated type,
//! and the check that turns one into the other with a [`Check`] at hand. [`crate::config`] only
//! assembles the sections, so `fraudwall config check` runs exactly the checks `serve` relies
//! on, and the validated types are what the running code uses.

use std::path::{Path, PathBuf};

/// One problem in a config: the dotted key, its line when known, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Collects every problem of a config while its sections validate themselves, and resolves
/// relative paths against the config file's directory.
#[derive(Debug)]
pub struct Check {
    base: PathBuf,
    /// Dotted key of the section being checked (empty at the top).
    scope: String,
    problems: Vec<Problem>,
}

impl Check {
    /// A check for a config whose relative paths are relative to `base`.
    pub fn new(base: &Path) -> Check {
        Check {
            base: base.to_owned(),
            scope: String::new(),
            problems: Vec::new(),
        }
    }

    /// Runs `f` for the section `key` (relative to the current one): keys it reports are
    /// prefixed with it. `key` may carry an index, as in `lists[2]`.
    pub fn section<T>(&mut self, key: &str, f: impl FnOnce(&mut Check) -> T) -> T {
        let outer = self.scope.len();
        if !self.scope.is_empty() {
            self.scope.push('.');
        }
        self.scope.push_str(key);
        let out = f(self);
        self.scope.truncate(outer);
        out
    }

    /// The full dotted key of `key` in the current section (`""`: the section itself).
    pub fn key(&self, key: &str) -> String {
        match (self.scope.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => self.scope.clone(),
            (false, false) => format!("{}.{key}", self.scope),
        }
    }

    /// Reports a problem with `key` of the current section (`""`: the section itself).
    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let key = self.key(key);
        self.problems.push(Problem {
            key,
            line: None,
            message: message.into(),
        });
    }

    /// `path` made absolute against the config file's directory.
    pub fn path(&self, path: &Path) -> PathBuf {
        resolve(&self.base, path)
    }

    /// `path` resolved like [`Check::path`]; a problem with `key` if it is not a file.
    pub fn file(&mut self, key: &str, path: &Path) -> PathBuf {
        let p = self.path(path);
        if !p.is_file() {
            self.problem(key, format!("{}: no such file", p.display()));
        }
        p
    }

    /// Reports a problem with `key` unless `lo <= value <= hi`.
    pub fn range<T: PartialOrd + std::fmt::Display>(&mut self, key: &str, value: T, lo: T, hi: T) {
        if value < lo || value > hi {
            self.problem(key, format!("{value} is not between {lo} and {hi}"));
        }
    }

    /// Whether nothing has been reported so far.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem reported, in order.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

/// `path` made absolute against `base` (left alone when it is absolute already).
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped() {
        let mut c = Check::new(Path::new("/etc/fraudwall"));
        c.problem("listen", "a");
        c.section("resolver", |c| {
            c.problem("timeout_ms", "b");
            c.section("cache", |c| c.problem("", "c"));
        });
        c.section("lists[1]", |c| c.problem("ede", "d"));
        let keys: Vec<String> = c.into_problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "listen",
                "resolver.timeout_ms",
                "resolver.cache",
                "lists[1].ede"
            ]
        );
    }

    #[test]
    fn paths_resolve_against_the_config_dir() {
        let c = Check::new(Path::new("/etc/fraudwall"));
        assert_eq!(
            c.path(Path::new("a.txt")),
            Path::new("/etc/fraudwall/a.txt")
        );
        assert_eq!(c.path(Path::new("/var/x")), Path::new("/var/x"));
    }
}
