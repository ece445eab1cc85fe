//! One module per command of the `oriel` binary.

pub(crate) mod check_config;
pub(crate) mod delete;
pub(crate) mod deletions;
pub(crate) mod export;
pub(crate) mod generate;
pub(crate) mod import;
pub(crate) mod log;
pub(crate) mod serve;
pub(crate) mod signin;
pub(crate) mod sql;
pub(crate) mod user;
pub(crate) mod version;
