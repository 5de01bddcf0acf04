//! The sinkhole: where blocked names lead. [`page`] is the warning page HTTP server that the
//! sinkhole address leads browsers to. (The blocked DNS answer itself is written on the ground
//! floor, in [`crate::dns::blocked`].)
pub mod page;
