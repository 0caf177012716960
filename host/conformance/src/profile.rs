//! Card profiles (`apdu-tests/cards/*.toml`): what a card can do, its known quirks and the
//! variables the suites use with it. Capabilities are declared, never guessed from the card.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::expr::{Vars, parse_expr_line};
use crate::source::LogicalLine;

/// The bundled simulator's profile (`apdu-tests/cards/jcardsim.toml`), compiled in.
pub const JCARDSIM_TOML: &str = include_str!("../../../apdu-tests/cards/jcardsim.toml");

/// A card profile.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CardProfile {
    /// A name for reports.
    pub name: String,
    /// Capabilities, e.g. `extended-length`, `aes-cmac`, `tear`, `power`, `fresh`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Longest command APDU the card (and reader) accept, in bytes.
    pub max_command_len: Option<usize>,
    /// Longest response APDU, in bytes.
    pub max_response_len: Option<usize>,
    /// Known quirk IDs.
    #[serde(default)]
    pub quirks: Vec<String>,
    /// Variables preset for every test, as script expressions (hex, `"text"`, calls).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// A profile that cannot be read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read card profile {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Not valid TOML or wrong fields.
    #[error("card profile {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A `[vars]` value that is not an expression.
    #[error("card profile {path}: [vars] {name}: {reason}")]
    Var {
        /// The file.
        path: String,
        /// The variable.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl CardProfile {
    /// Parses profile text; `path` names it in errors.
    ///
    /// # Errors
    /// [`ProfileError::Parse`].
    pub fn parse(path: &str, text: &str) -> Result<CardProfile, ProfileError> {
        toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_owned(),
            reason: e.to_string().trim().to_owned(),
        })
    }

    /// Reads a profile file.
    ///
    /// # Errors
    /// [`ProfileError::Read`], [`ProfileError::Parse`].
    pub fn load(path: &Path) -> Result<CardProfile, ProfileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        CardProfile::parse(&shown, &text)
    }

    /// The bundled simulator's profile.
    ///
    /// # Errors
    /// Only if the compiled-in file were broken (a test pins that it is not).
    pub fn jcardsim() -> Result<CardProfile, ProfileError> {
        CardProfile::parse("apdu-tests/cards/jcardsim.toml", JCARDSIM_TOML)
    }

    /// A card nothing is known about: no capabilities, no limits.
    pub fn unknown(name: &str) -> CardProfile {
        CardProfile {
            name: name.to_owned(),
            ..CardProfile::default()
        }
    }

    /// Whether the card has capability `cap`.
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }

    /// Whether the card lists quirk `id`.
    pub fn has_quirk(&self, id: &str) -> bool {
        self.quirks.iter().any(|q| q == id)
    }

    /// The `[vars]`, evaluated.
    ///
    /// # Errors
    /// [`ProfileError::Var`] naming the variable.
    pub fn eval_vars(&self, path: &str) -> Result<Vars, ProfileError> {
        let mut out = Vars::new();
        for (name, text) in &self.vars {
            let err = |reason: String| ProfileError::Var {
                path: path.to_owned(),
                name: name.clone(),
                reason,
            };
            let line = LogicalLine::single(path, 0, text);
            let e = parse_expr_line(&line).map_err(|e| err(e.message))?;
            let v = e.eval(&out).map_err(|e| err(e.message))?;
            out.insert(name.clone(), v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_profile_parses_with_every_capability() {
        let p = CardProfile::jcardsim().unwrap();
        for cap in [
            "extended-length",
            "aes-cmac",
            "retail-mac",
            "desx-cbc",
            "tear",
            "power",
            "fresh",
        ] {
            assert!(p.has(cap), "{cap}");
        }
        assert!(!p.has("pcsc"));
    }

    #[test]
    fn vars_are_expressions_and_errors_name_the_field() {
        let p = CardProfile::parse(
            "c.toml",
            "name = \"c\"\ncapabilities = []\nquirks = [\"Q1\"]\n[vars]\nmaster = \"0011\"\nprofile = '\"aes-cmac\"'\n",
        )
        .unwrap();
        assert!(p.has_quirk("Q1"));
        let v = p.eval_vars("c.toml").unwrap();
        assert_eq!(v["master"], vec![0x00, 0x11]);
        assert_eq!(v["profile"], b"aes-cmac".to_vec());
        let bad = CardProfile::parse("c.toml", "name = \"c\"\n[vars]\nk = \"ABC\"\n").unwrap();
        assert_eq!(
            bad.eval_vars("c.toml").unwrap_err().to_string(),
            "card profile c.toml: [vars] k: odd number of hex digits in \"ABC\""
        );
        let e = CardProfile::parse("c.toml", "nam = 1")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("card profile c.toml: "), "{e}");
    }
}
