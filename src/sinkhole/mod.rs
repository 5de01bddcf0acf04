//! The sinkhole: where blocked names lead. `page` is the warning page HTTP server.
pub mod page;
