//! The sinkhole: where blocked names lead. [`answer`] writes the blocked DNS answer; [`page`] is
//! the warning page HTTP server the sinkhole address leads browsers to.
pub mod answer;
pub mod page;
