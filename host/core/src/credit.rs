//! The credit-module protocol: message codecs and the two protocol state machines.
//!
//! This module owns every rule of `applet-spec/credit-module.md` that is not cryptography:
//!
//! - [`message`]: the five MAC'd messages of spec §3 (fixed lengths, big-endian), typed;
//! - [`module`]: the module side as a pure state machine that mirrors the Java Card applet
//!   (spec §4, §5, §7), used to generate the vectors the applet's tests replay;
//! - [`server`]: the reload server's policy (spec §6) as pure functions the grant signer calls
//!   inside its database transaction;
//! - [`commands`]: one APDU constructor per applet command and the personalisation TLVs;
//! - [`signer`]: the grant signer as the appliance sees it, one trait for every signer.
//!
//! There is exactly one copy of each rule here; the server crate and the CLI call it and must
//! not re-implement it. Nothing in this module does I/O, and every money computation is done in
//! `i64` ("wide arithmetic", spec conventions) so no intermediate result can overflow. MACs come
//! from [`crate::crypto`]; tags are only ever compared there, in constant time.

use serde::{Deserialize, Serialize};

pub mod applet;
pub mod commands;
pub mod message;
pub mod module;
pub mod registration;
pub mod server;
pub mod signer;

/// A module identity: 8 bytes, inside every message (spec §1, §3.1).
pub type ModuleId = [u8; 8];

/// A MAC tag as carried on the wire (always 8 bytes, never truncated).
pub type Tag = [u8; crate::crypto::TAG_LEN];

/// Largest value of the u32 limits `m` and `M`, and of `U` and `L` (2^31 − 1, spec §2).
pub const LIMIT_MAX: u32 = i32::MAX as u32;

/// The module's reload and spending limits (spec §2, §3.6).
///
/// The fields are stored as they travel (`m`, `M` unsigned, `U`, `L` signed) so that a limit
/// update carrying invalid values can be decoded, shown and then refused by [`Limits::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// `m`: the smallest amount one reload request may ask for.
    pub min_reload: u32,
    /// `M`: the largest amount one reload request may ask for.
    pub max_reload: u32,
    /// `U`: the largest balance a reload may produce.
    pub upper: i32,
    /// `L`: how far below zero debits may go while a provisional ack is active.
    pub credit_line: i32,
}

/// Why a set of [`Limits`] is not valid (spec §3.6). The module answers `9C0B` for all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// `m` is zero.
    #[error("min reload m must be at least 1, got 0")]
    MinReloadZero,
    /// `M < m`.
    #[error("max reload M ({max}) is below min reload m ({min})")]
    MaxBelowMin {
        /// `m`.
        min: u32,
        /// `M`.
        max: u32,
    },
    /// `M > 2^31 − 1`.
    #[error("max reload M ({0}) is above 2^31-1")]
    MaxTooLarge(u32),
    /// `U < 0`.
    #[error("upper limit U ({0}) is negative")]
    NegativeUpper(i32),
    /// `L < 0`.
    #[error("credit line L ({0}) is negative")]
    NegativeCreditLine(i32),
}

impl Limits {
    /// Encoded length: `m ‖ M ‖ U ‖ L`, as in a limit update and personalisation tag `85`.
    pub const LEN: usize = 16;

    /// Checks `1 ≤ m ≤ M ≤ 2^31−1`, `0 ≤ U`, `0 ≤ L` (spec §3.6; the upper bounds of `U` and
    /// `L` hold for every `i32`).
    pub fn validate(&self) -> Result<(), LimitsError> {
        if self.min_reload == 0 {
            return Err(LimitsError::MinReloadZero);
        }
        if self.max_reload < self.min_reload {
            return Err(LimitsError::MaxBelowMin {
                min: self.min_reload,
                max: self.max_reload,
            });
        }
        if self.max_reload > LIMIT_MAX {
            return Err(LimitsError::MaxTooLarge(self.max_reload));
        }
        if self.upper < 0 {
            return Err(LimitsError::NegativeUpper(self.upper));
        }
        if self.credit_line < 0 {
            return Err(LimitsError::NegativeCreditLine(self.credit_line));
        }
        Ok(())
    }

    /// `m ‖ M ‖ U ‖ L`, big-endian.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0..4].copy_from_slice(&self.min_reload.to_be_bytes());
        out[4..8].copy_from_slice(&self.max_reload.to_be_bytes());
        out[8..12].copy_from_slice(&self.upper.to_be_bytes());
        out[12..16].copy_from_slice(&self.credit_line.to_be_bytes());
        out
    }

    /// Decodes `m ‖ M ‖ U ‖ L` (no validity check: see [`Limits::validate`]).
    pub fn from_bytes(b: &[u8; Self::LEN]) -> Self {
        Limits {
            min_reload: be_u32(b, 0),
            max_reload: be_u32(b, 4),
            upper: be_i32(b, 8),
            credit_line: be_i32(b, 12),
        }
    }
}

/// The reload range an appliance may offer the user (spec §4.2, claims 9–10):
/// `[m, min(M, U − B)]` in wide arithmetic, or `None` when it is empty (`U − B < m`, or the
/// limits are inconsistent).
pub fn allowed_range(balance: i32, limits: &Limits) -> Option<(u32, u32)> {
    let headroom = i64::from(limits.upper) - i64::from(balance);
    let top = headroom.min(i64::from(limits.max_reload));
    let bottom = i64::from(limits.min_reload);
    if top < bottom {
        return None;
    }
    // top ≤ M ≤ u32::MAX and top ≥ bottom ≥ 0, so the conversion cannot fail.
    let top = u32::try_from(top).ok()?;
    Some((limits.min_reload, top))
}

/// Whether `balance + amount ≤ upper`, in wide arithmetic (spec §4.4 step 3, §4.5 step 8).
pub fn fits_under_upper(balance: i32, amount: u32, upper: i32) -> bool {
    i64::from(balance) + i64::from(amount) <= i64::from(upper)
}

/// The reason byte of a declined grant (spec §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeclineReason {
    /// `01`: the amount (requested, or capped by the upper limit) is below the minimum reload.
    BelowMinimum,
    /// `02`: the requested amount is above the maximum reload.
    AboveMaximum,
    /// `03`: the account has insufficient funds.
    InsufficientFunds,
    /// `04`: the financial authority refused the debit.
    Refused,
    /// `05`: the balance is already at (or above) the upper limit.
    AtUpperLimit,
}

impl DeclineReason {
    /// Every reason, in wire order.
    pub const ALL: [DeclineReason; 5] = [
        DeclineReason::BelowMinimum,
        DeclineReason::AboveMaximum,
        DeclineReason::InsufficientFunds,
        DeclineReason::Refused,
        DeclineReason::AtUpperLimit,
    ];

    /// The reason byte on the wire.
    pub const fn code(self) -> u8 {
        match self {
            DeclineReason::BelowMinimum => 0x01,
            DeclineReason::AboveMaximum => 0x02,
            DeclineReason::InsufficientFunds => 0x03,
            DeclineReason::Refused => 0x04,
            DeclineReason::AtUpperLimit => 0x05,
        }
    }

    /// The reason with wire byte `code`, if there is one (`00` is not a decline reason).
    pub const fn from_code(code: u8) -> Option<DeclineReason> {
        match code {
            0x01 => Some(DeclineReason::BelowMinimum),
            0x02 => Some(DeclineReason::AboveMaximum),
            0x03 => Some(DeclineReason::InsufficientFunds),
            0x04 => Some(DeclineReason::Refused),
            0x05 => Some(DeclineReason::AtUpperLimit),
            _ => None,
        }
    }

    /// A short human description.
    pub const fn describe(self) -> &'static str {
        match self {
            DeclineReason::BelowMinimum => "below minimum reload",
            DeclineReason::AboveMaximum => "above maximum reload",
            DeclineReason::InsufficientFunds => "insufficient funds",
            DeclineReason::Refused => "refused by the financial authority",
            DeclineReason::AtUpperLimit => "balance already at the upper limit",
        }
    }
}

/// Kind of a fraud-log entry (spec §4.10, §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FraudKind {
    /// `01`: a tag that does not verify.
    BadTag,
    /// `02`: a message outside the window (S′ ≠ N+1, no pending request, wrong request tag).
    Window,
    /// `03`: a limit update whose sequence is not above the stored one.
    LimitReplay,
    /// `04`: a grant beyond the limits (G > R, B + G > U, or G = 0).
    GrantBeyondLimits,
}

impl FraudKind {
    /// The kind byte in the fraud log.
    pub const fn code(self) -> u8 {
        match self {
            FraudKind::BadTag => 0x01,
            FraudKind::Window => 0x02,
            FraudKind::LimitReplay => 0x03,
            FraudKind::GrantBeyondLimits => 0x04,
        }
    }

    /// The kind with log byte `code`, if there is one.
    pub const fn from_code(code: u8) -> Option<FraudKind> {
        match code {
            0x01 => Some(FraudKind::BadTag),
            0x02 => Some(FraudKind::Window),
            0x03 => Some(FraudKind::LimitReplay),
            0x04 => Some(FraudKind::GrantBeyondLimits),
            _ => None,
        }
    }
}

pub(crate) fn be_u32(b: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

pub(crate) fn be_i32(b: &[u8], off: usize) -> i32 {
    i32::from_be_bytes(be_u32(b, off).to_be_bytes())
}

pub(crate) fn be_u16(b: &[u8], off: usize) -> u16 {
    let mut w = [0u8; 2];
    if let Some(s) = b.get(off..off + 2) {
        w.copy_from_slice(s);
    }
    u16::from_be_bytes(w)
}

/// Copies `N` bytes at `off`; zeros when out of range (callers check lengths first, and a wrong
/// offset must never panic on an input path).
pub(crate) fn array_at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(off..off + N) {
        out.copy_from_slice(s);
    }
    out
}

/// Serde helper: fixed-size byte arrays as upper-case hex strings (serde's derive only covers
/// arrays up to 32 elements, and hex is what people compare by eye in vectors).
pub(crate) mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(D::Error::custom)?;
        let len = v.len();
        v.try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes of hex, got {len}")))
    }
}

/// Serde helper: `Option` of a fixed-size byte array as hex or `null`.
pub(crate) mod hex_array_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        v: &Option<[u8; N]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&hex::encode_upper(v)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let v = hex::decode(&s).map_err(D::Error::custom)?;
        let len = v.len();
        v.try_into()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected {N} bytes of hex, got {len}")))
    }
}

/// Serde helper: variable-length bytes as hex.
pub(crate) mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn limits(m: u32, mm: u32, u: i32, l: i32) -> Limits {
        Limits {
            min_reload: m,
            max_reload: mm,
            upper: u,
            credit_line: l,
        }
    }

    #[test]
    fn limits_layout_and_validity() {
        let l = limits(1, 0x7FFF_FFFF, 0x7FFF_FFFF, 0);
        assert_eq!(l.to_bytes(), hex!("00000001 7FFFFFFF 7FFFFFFF 00000000"));
        assert_eq!(Limits::from_bytes(&l.to_bytes()), l);
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(
            limits(0, 1, 0, 0).validate(),
            Err(LimitsError::MinReloadZero)
        );
        assert_eq!(
            limits(5, 4, 0, 0).validate(),
            Err(LimitsError::MaxBelowMin { min: 5, max: 4 })
        );
        assert_eq!(
            limits(1, 0x8000_0000, 0, 0).validate(),
            Err(LimitsError::MaxTooLarge(0x8000_0000))
        );
        assert_eq!(
            limits(1, 1, -1, 0).validate(),
            Err(LimitsError::NegativeUpper(-1))
        );
        assert_eq!(
            limits(1, 1, 0, -1).validate(),
            Err(LimitsError::NegativeCreditLine(-1))
        );
    }

    #[test]
    fn allowed_range_is_wide() {
        let l = limits(10, 500, 1000, 100);
        assert_eq!(allowed_range(0, &l), Some((10, 500)));
        assert_eq!(allowed_range(700, &l), Some((10, 300)));
        assert_eq!(allowed_range(990, &l), Some((10, 10)));
        assert_eq!(allowed_range(991, &l), None);
        assert_eq!(allowed_range(2000, &l), None);
        // U − B overflows i32 here; wide arithmetic keeps it right.
        let big = limits(1, LIMIT_MAX, i32::MAX, i32::MAX);
        assert_eq!(allowed_range(-i32::MAX, &big), Some((1, LIMIT_MAX)));
        assert_eq!(allowed_range(i32::MIN, &big), Some((1, LIMIT_MAX)));
        assert_eq!(allowed_range(i32::MAX, &big), None);
        assert!(fits_under_upper(i32::MAX - 1, 1, i32::MAX));
        assert!(!fits_under_upper(i32::MAX, u32::MAX, i32::MAX));
    }

    #[test]
    fn reason_and_kind_codes_round_trip() {
        for r in DeclineReason::ALL {
            assert_eq!(DeclineReason::from_code(r.code()), Some(r));
        }
        assert_eq!(DeclineReason::from_code(0), None);
        assert_eq!(DeclineReason::from_code(6), None);
        for c in 1..=4 {
            assert_eq!(FraudKind::from_code(c).map(FraudKind::code), Some(c));
        }
        assert_eq!(FraudKind::from_code(5), None);
    }
}
