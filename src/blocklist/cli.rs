//! CLI helpers
