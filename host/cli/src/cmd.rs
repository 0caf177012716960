//! One module per subcommand.

pub(crate) mod decode;
pub(crate) mod demo;
pub(crate) mod kcv;
pub(crate) mod kdf;
pub(crate) mod mac;
pub(crate) mod sw;
