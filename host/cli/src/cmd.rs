//! One module per subcommand.

pub(crate) mod backup;
pub(crate) mod credit;
pub(crate) mod decode;
pub(crate) mod demo;
pub(crate) mod import;
pub(crate) mod kcv;
pub(crate) mod kdf;
pub(crate) mod mac;
pub(crate) mod personalise;
pub(crate) mod readers;
pub(crate) mod serve;
pub(crate) mod server;
pub(crate) mod server_bench;
pub(crate) mod server_crash;
pub(crate) mod server_sim;
pub(crate) mod sim;
pub(crate) mod sw;
pub(crate) mod test;
