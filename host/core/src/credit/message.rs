//! Codecs for the five credit-module messages (spec §3).
//!
//! Every message is `header (11) ‖ body ‖ tag (8)` with one fixed length per type; the tag is the
//! profile MAC over every byte before it, under the module key named for the type
//! ([`KeyRole`]). Parsing here checks *structure only* — length, version, type, a known
//! algorithm id and, for grants, a well-formed status and reason — and never panics; whether a
//! message is authentic, addressed to this module and inside the window is decided by
//! [`super::module`] and [`super::server`], in the order the spec fixes.

use core::fmt;

use crate::crypto::mac::{MacKey, verify_profile_tag};
use crate::crypto::{CryptoError, Profile, TAG_LEN};

use super::{Limits, ModuleId, Tag};

pub mod layout;

use layout::credit_message;
pub use layout::{CreditMessage, Field};

/// Message version byte (spec §1).
pub const VERSION: u8 = 0x01;
/// Length of the common header: version ‖ type ‖ algorithm id ‖ module id (spec §3.1).
pub const HEADER_LEN: usize = 11;

/// Offsets inside the header (spec §3.1).
pub(crate) const OFF_VERSION: usize = 0;
pub(crate) const OFF_TYPE: usize = 1;
pub(crate) const OFF_ALG: usize = 2;
pub(crate) const OFF_MODULE_ID: usize = 3;

/// The message type byte (spec §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `01` reload request, module → server.
    Request,
    /// `02` reload grant, server → module.
    Grant,
    /// `03` provisional ack, server → module.
    ProvisionalAck,
    /// `04` completion ack, module → server.
    CompletionAck,
    /// `05` limit update, server → module.
    LimitUpdate,
}

/// Which of the module's two keys MACs a message (spec §3.1): the module MACs what it sends with
/// K_req, the server what it sends with K_grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// K_req: requests and completion acks.
    Request,
    /// K_grant: grants, provisional acks and limit updates.
    Grant,
}

impl MessageType {
    /// Every type, in wire order.
    pub const ALL: [MessageType; 5] = [
        MessageType::Request,
        MessageType::Grant,
        MessageType::ProvisionalAck,
        MessageType::CompletionAck,
        MessageType::LimitUpdate,
    ];

    /// The type byte.
    pub const fn code(self) -> u8 {
        match self {
            MessageType::Request => 0x01,
            MessageType::Grant => 0x02,
            MessageType::ProvisionalAck => 0x03,
            MessageType::CompletionAck => 0x04,
            MessageType::LimitUpdate => 0x05,
        }
    }

    /// The type with byte `code`, if there is one.
    pub const fn from_code(code: u8) -> Option<MessageType> {
        match code {
            0x01 => Some(MessageType::Request),
            0x02 => Some(MessageType::Grant),
            0x03 => Some(MessageType::ProvisionalAck),
            0x04 => Some(MessageType::CompletionAck),
            0x05 => Some(MessageType::LimitUpdate),
            _ => None,
        }
    }

    /// The one length a message of this type has, tag included.
    pub const fn wire_len(self) -> usize {
        match self {
            MessageType::Request => ReloadRequest::LEN,
            MessageType::Grant => ReloadGrant::LEN,
            MessageType::ProvisionalAck => ProvisionalAck::LEN,
            MessageType::CompletionAck => CompletionAck::LEN,
            MessageType::LimitUpdate => LimitUpdate::LEN,
        }
    }

    /// The key that MACs messages of this type.
    pub const fn key_role(self) -> KeyRole {
        match self {
            MessageType::Request | MessageType::CompletionAck => KeyRole::Request,
            MessageType::Grant | MessageType::ProvisionalAck | MessageType::LimitUpdate => {
                KeyRole::Grant
            }
        }
    }

    /// Human name, as printed by `decode`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::Request => "reload request",
            MessageType::Grant => "reload grant",
            MessageType::ProvisionalAck => "provisional ack",
            MessageType::CompletionAck => "completion ack",
            MessageType::LimitUpdate => "limit update",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:02X})", self.name(), self.code())
    }
}

/// Why bytes are not a well-formed message. Each variant names the offending byte and value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Too short to carry the version and type bytes.
    #[error("message of {len} bytes is too short to hold a version and a type byte")]
    Truncated {
        /// Length received.
        len: usize,
    },
    /// The length is not the one length of the message's type.
    #[error("{msg_type} must be {expected} bytes, got {got}")]
    WrongLength {
        /// The type the bytes were parsed as.
        msg_type: MessageType,
        /// Its fixed length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// Byte 0 is not version `01`.
    #[error("byte 0 (version) is {0:02X}, expected 01")]
    UnknownVersion(u8),
    /// Byte 1 is not a message type.
    #[error("byte 1 (type) is {0:02X}, expected 01..05")]
    UnknownType(u8),
    /// Byte 1 is a message type, but not the one expected.
    #[error("byte 1 (type) is {got:02X}, expected {expected}")]
    WrongType {
        /// The type that was expected.
        expected: MessageType,
        /// The type byte found.
        got: u8,
    },
    /// Byte 2 is not a known crypto profile id.
    #[error(
        "byte 2 (algorithm id) is {0:02X}, expected 01 (aes-cmac), 02 (retail-mac) or 03 (desx-cbc)"
    )]
    UnknownAlgorithm(u8),
    /// A grant's status byte (offset 15) is neither `00` nor `01`; or a completion ack's (15).
    #[error("byte 15 (status) is {0:02X}, expected 00 (granted) or 01 (declined)")]
    BadStatus(u8),
    /// A grant's reason byte (offset 16) does not fit its status.
    #[error(
        "byte 16 (reason) is {reason:02X}, which is not valid with status {status:02X} (granted: 00; declined: 01..05)"
    )]
    BadReason {
        /// The status byte.
        status: u8,
        /// The reason byte.
        reason: u8,
    },
    /// A declined grant carries a non-zero amount (offset 17).
    #[error("bytes 17..21 (G) are {0}, but a declined grant must carry 0")]
    DeclinedWithAmount(u32),
}

/// Verifies the tag at the end of raw `bytes` (already known to be the right length) under
/// `key`. Used by the module, which must check the tag before it looks at the body (spec §4.5).
pub(crate) fn verify_raw(
    profile: Profile,
    key: &dyn MacKey,
    bytes: &[u8],
) -> Result<bool, CryptoError> {
    let split = bytes.len().saturating_sub(TAG_LEN);
    let (signed, tag) = bytes.split_at(split);
    verify_profile_tag(profile, key, signed, tag)
}

fn hex8(b: &[u8]) -> String {
    hex::encode_upper(b)
}

// ---------------------------------------------------------------------------------------------

credit_message! {
    /// Reload request, type `01`, 31 bytes, MAC'd with K_req (spec §3.2).
    pub struct ReloadRequest {
        type: Request, len: 31, key: k_req, tag at: 23;
        /// N: the module transaction number.
        n @ 11 as OFF_N: u32,
        /// R: requested credits.
        requested @ 15 as OFF_R: u32,
        /// B: the balance when the request was first built.
        balance @ 19 as OFF_B: i32,
    }
}

/// Status of a grant (spec §3.3 bytes 15–16).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantStatus {
    /// `00 00`: credits granted.
    Granted,
    /// `01 rr`: declined for the reason `rr`.
    Declined(super::DeclineReason),
}

impl GrantStatus {
    /// The status byte (`00` granted, `01` declined).
    pub const fn status_byte(self) -> u8 {
        match self {
            GrantStatus::Granted => 0x00,
            GrantStatus::Declined(_) => 0x01,
        }
    }

    /// The reason byte (`00` when granted).
    pub const fn reason_byte(self) -> u8 {
        match self {
            GrantStatus::Granted => 0x00,
            GrantStatus::Declined(r) => r.code(),
        }
    }

    /// Decodes status and reason; `Err` for any combination spec §3.3 does not allow.
    pub fn from_bytes(status: u8, reason: u8) -> Result<Self, MessageError> {
        match status {
            0x00 if reason == 0x00 => Ok(GrantStatus::Granted),
            0x01 => super::DeclineReason::from_code(reason)
                .map(GrantStatus::Declined)
                .ok_or(MessageError::BadReason { status, reason }),
            0x00 => Err(MessageError::BadReason { status, reason }),
            other => Err(MessageError::BadStatus(other)),
        }
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantStatus::Granted => f.write_str("granted (00)"),
            GrantStatus::Declined(r) => {
                write!(f, "declined (01), reason {:02X} {}", r.code(), r.describe())
            }
        }
    }
}

credit_message! {
    /// Reload grant, type `02`, 37 bytes, MAC'd with K_grant (spec §3.3). `build` always
    /// puts G = 0 in a declined grant and `parse` refuses a declined grant with G ≠ 0, so
    /// neither can make a malformed grant.
    pub struct ReloadGrant {
        type: Grant, len: 37, key: k_grant, tag at: 29,
            normalize: ReloadGrant::zero_declined, check: ReloadGrant::check_declined;
        /// S′ = N + 1: the module's new transaction number.
        s_next @ 11 as OFF_S: u32,
        /// Granted or declined, with the reason (bytes 15–16).
        status @ 15 as OFF_STATUS: GrantStatus,
        /// G: granted credits (0 when declined).
        granted @ 17 as OFF_G: u32,
        /// The tag of the request this grant answers.
        request_tag @ 21 as OFF_REQ_TAG: Tag,
    }
}

impl ReloadGrant {
    /// Offset of the reason byte, the second byte of the status field.
    pub(crate) const OFF_REASON: usize = Self::OFF_STATUS + 1;

    fn zero_declined(&mut self) {
        if matches!(self.status, GrantStatus::Declined(_)) {
            self.granted = 0;
        }
    }

    /// Spec §4.5 step 7: a declined grant carries G = 0.
    fn check_declined(&self) -> Result<(), MessageError> {
        if matches!(self.status, GrantStatus::Declined(_)) && self.granted != 0 {
            return Err(MessageError::DeclinedWithAmount(self.granted));
        }
        Ok(())
    }
}

credit_message! {
    /// Provisional ack, type `03`, 31 bytes, MAC'd with K_grant (spec §3.4).
    pub struct ProvisionalAck {
        type: ProvisionalAck, len: 31, key: k_grant, tag at: 23;
        /// S′ = N + 1 of the pending request.
        s_next @ 11 as OFF_S: u32,
        /// The tag of the pending request.
        request_tag @ 15 as OFF_REQ_TAG: Tag,
    }
}

credit_message! {
    /// Completion ack, type `04`, 40 bytes, MAC'd with K_req (spec §3.5).
    pub struct CompletionAck {
        type: CompletionAck, len: 40, key: k_req, tag at: 32;
        /// N′: the module transaction number after applying the grant (= S′).
        n_next @ 11 as OFF_N: u32,
        /// Whether the applied grant was a grant (`false`) or a decline (`true`): the status
        /// byte copied from the grant. The reason is not copied (spec §3.5).
        declined @ 15 as OFF_STATUS: bool,
        /// G credited (0 for a decline).
        granted @ 16 as OFF_G: u32,
        /// Balance right after applying.
        balance @ 20 as OFF_B: i32,
        /// The tag of the grant applied.
        grant_tag @ 24 as OFF_GRANT_TAG: Tag,
    }
}

credit_message! {
    /// Limit update, type `05`, 39 bytes, MAC'd with K_grant (spec §3.6). Limits are carried
    /// as is; the module validates them after the tag.
    pub struct LimitUpdate {
        type: LimitUpdate, len: 39, key: k_grant, tag at: 31;
        /// Sequence, strictly greater than the module's limit sequence.
        sequence @ 11 as OFF_SEQ: u32,
        /// The new limits, as carried (validity is checked by the module after the tag).
        limits @ 15 as OFF_LIMITS: Limits,
    }
}

// ---------------------------------------------------------------------------------------------

/// Any of the five messages, for tools that get bytes of unknown type (the CLI's `decode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Type `01`.
    Request(ReloadRequest),
    /// Type `02`.
    Grant(ReloadGrant),
    /// Type `03`.
    ProvisionalAck(ProvisionalAck),
    /// Type `04`.
    CompletionAck(CompletionAck),
    /// Type `05`.
    LimitUpdate(LimitUpdate),
}

impl Message {
    /// Decodes any message, dispatching on the type byte: version first, then type, then the
    /// type's length and the rest of its structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
        let (Some(&version), Some(&ty)) = (bytes.get(OFF_VERSION), bytes.get(OFF_TYPE)) else {
            return Err(MessageError::Truncated { len: bytes.len() });
        };
        if version != VERSION {
            return Err(MessageError::UnknownVersion(version));
        }
        match MessageType::from_code(ty) {
            Some(MessageType::Request) => ReloadRequest::parse(bytes).map(Message::Request),
            Some(MessageType::Grant) => ReloadGrant::parse(bytes).map(Message::Grant),
            Some(MessageType::ProvisionalAck) => {
                ProvisionalAck::parse(bytes).map(Message::ProvisionalAck)
            }
            Some(MessageType::CompletionAck) => {
                CompletionAck::parse(bytes).map(Message::CompletionAck)
            }
            Some(MessageType::LimitUpdate) => LimitUpdate::parse(bytes).map(Message::LimitUpdate),
            None => Err(MessageError::UnknownType(ty)),
        }
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Request(_) => MessageType::Request,
            Message::Grant(_) => MessageType::Grant,
            Message::ProvisionalAck(_) => MessageType::ProvisionalAck,
            Message::CompletionAck(_) => MessageType::CompletionAck,
            Message::LimitUpdate(_) => MessageType::LimitUpdate,
        }
    }

    /// The message's profile (algorithm id).
    pub fn profile(&self) -> Profile {
        match self {
            Message::Request(m) => m.profile,
            Message::Grant(m) => m.profile,
            Message::ProvisionalAck(m) => m.profile,
            Message::CompletionAck(m) => m.profile,
            Message::LimitUpdate(m) => m.profile,
        }
    }

    /// The module id in the header.
    pub fn module_id(&self) -> ModuleId {
        match self {
            Message::Request(m) => m.module_id,
            Message::Grant(m) => m.module_id,
            Message::ProvisionalAck(m) => m.module_id,
            Message::CompletionAck(m) => m.module_id,
            Message::LimitUpdate(m) => m.module_id,
        }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(m) => m.encode(),
            Message::Grant(m) => m.encode(),
            Message::ProvisionalAck(m) => m.encode(),
            Message::CompletionAck(m) => m.encode(),
            Message::LimitUpdate(m) => m.encode(),
        }
    }

    /// Verifies the tag with the key of the message's [`KeyRole`], taken from `keys`.
    pub fn verify(&self, keys: &crate::crypto::ModuleKeys) -> Result<bool, CryptoError> {
        match self {
            Message::Request(m) => m.verify_with(keys),
            Message::Grant(m) => m.verify_with(keys),
            Message::ProvisionalAck(m) => m.verify_with(keys),
            Message::CompletionAck(m) => m.verify_with(keys),
            Message::LimitUpdate(m) => m.verify_with(keys),
        }
    }

    /// Every field as `(name, value)`, in wire order, values formatted for people (hex for
    /// bytes, decimal for numbers).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("version", format!("{VERSION:02X}")),
            ("type", self.message_type().to_string()),
            (
                "algorithm",
                format!("{:02X} ({})", self.profile().id(), self.profile().name()),
            ),
            ("module id", hex8(&self.module_id())),
        ];
        match self {
            Message::Request(m) => {
                f.push(("N", m.n.to_string()));
                f.push(("R", m.requested.to_string()));
                f.push(("B", m.balance.to_string()));
                f.push(("tag", hex8(&m.tag)));
            }
            Message::Grant(m) => {
                f.push(("S'", m.s_next.to_string()));
                f.push(("status", m.status.to_string()));
                f.push(("G", m.granted.to_string()));
                f.push(("request tag", hex8(&m.request_tag)));
                f.push(("tag", hex8(&m.tag)));
            }
            Message::ProvisionalAck(m) => {
                f.push(("S'", m.s_next.to_string()));
                f.push(("request tag", hex8(&m.request_tag)));
                f.push(("tag", hex8(&m.tag)));
            }
            Message::CompletionAck(m) => {
                f.push(("N'", m.n_next.to_string()));
                f.push((
                    "status",
                    if m.declined {
                        "declined (01)"
                    } else {
                        "granted (00)"
                    }
                    .to_owned(),
                ));
                f.push(("G", m.granted.to_string()));
                f.push(("balance", m.balance.to_string()));
                f.push(("grant tag", hex8(&m.grant_tag)));
                f.push(("tag", hex8(&m.tag)));
            }
            Message::LimitUpdate(m) => {
                f.push(("sequence", m.sequence.to_string()));
                f.push(("m", m.limits.min_reload.to_string()));
                f.push(("M", m.limits.max_reload.to_string()));
                f.push(("U", m.limits.upper.to_string()));
                f.push(("L", m.limits.credit_line.to_string()));
                f.push(("tag", hex8(&m.tag)));
            }
        }
        f
    }
}

impl fmt::Display for Message {
    /// One `name: value` line per field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.fields().iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{name:<12} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credit::DeclineReason;
    use hex_literal::hex;

    const ID: ModuleId = hex!("0102030405060708");
    const TAG: Tag = hex!("A1A2A3A4A5A6A7A8");
    const TAG2: Tag = hex!("B1B2B3B4B5B6B7B8");

    #[test]
    fn request_layout() {
        let m = ReloadRequest {
            profile: Profile::AesCmac,
            module_id: ID,
            n: 0x1122_3344,
            requested: 500,
            balance: -2,
            tag: TAG,
        };
        let b = m.to_bytes();
        assert_eq!(
            b,
            hex!("01 01 01 0102030405060708 11223344 000001F4 FFFFFFFE A1A2A3A4A5A6A7A8")
        );
        assert_eq!(ReloadRequest::parse(&b).unwrap(), m);
        assert_eq!(m.signed_bytes(), b[..23]);
    }

    #[test]
    fn grant_layout() {
        let m = ReloadGrant {
            profile: Profile::RetailMac,
            module_id: ID,
            s_next: 8,
            status: GrantStatus::Granted,
            granted: 0x0100,
            request_tag: TAG,
            tag: TAG2,
        };
        let b = m.to_bytes();
        assert_eq!(
            b,
            hex!(
                "01 02 02 0102030405060708 00000008 00 00 00000100 A1A2A3A4A5A6A7A8 B1B2B3B4B5B6B7B8"
            )
        );
        assert_eq!(ReloadGrant::parse(&b).unwrap(), m);
        let d = ReloadGrant {
            status: GrantStatus::Declined(DeclineReason::AtUpperLimit),
            granted: 0,
            ..m
        };
        let db = d.to_bytes();
        assert_eq!(db[15..21], hex!("01 05 00000000"));
        assert_eq!(ReloadGrant::parse(&db).unwrap(), d);
    }

    #[test]
    fn grant_status_rules() {
        let base = ReloadGrant {
            profile: Profile::AesCmac,
            module_id: ID,
            s_next: 1,
            status: GrantStatus::Granted,
            granted: 1,
            request_tag: TAG,
            tag: TAG2,
        }
        .to_bytes();
        let with = |s: u8, r: u8, g: u32| {
            let mut b = base;
            b[15] = s;
            b[16] = r;
            b[17..21].copy_from_slice(&g.to_be_bytes());
            ReloadGrant::parse(&b)
        };
        assert_eq!(with(2, 0, 0), Err(MessageError::BadStatus(2)));
        assert_eq!(
            with(0, 1, 5),
            Err(MessageError::BadReason {
                status: 0,
                reason: 1
            })
        );
        assert_eq!(
            with(1, 0, 0),
            Err(MessageError::BadReason {
                status: 1,
                reason: 0
            })
        );
        assert_eq!(
            with(1, 6, 0),
            Err(MessageError::BadReason {
                status: 1,
                reason: 6
            })
        );
        assert_eq!(with(1, 3, 7), Err(MessageError::DeclinedWithAmount(7)));
        // Granted with G = 0 is well-formed; the module refuses it as beyond limits (step 8).
        assert!(with(0, 0, 0).is_ok());
    }

    #[test]
    fn provisional_layout() {
        let m = ProvisionalAck {
            profile: Profile::DesxCbc,
            module_id: ID,
            s_next: 0xFFFF_FFFF,
            request_tag: TAG,
            tag: TAG2,
        };
        let b = m.to_bytes();
        assert_eq!(
            b,
            hex!("01 03 03 0102030405060708 FFFFFFFF A1A2A3A4A5A6A7A8 B1B2B3B4B5B6B7B8")
        );
        assert_eq!(ProvisionalAck::parse(&b).unwrap(), m);
    }

    #[test]
    fn completion_layout() {
        let m = CompletionAck {
            profile: Profile::AesCmac,
            module_id: ID,
            n_next: 2,
            declined: true,
            granted: 0,
            balance: 0x7FFF_FFFF,
            grant_tag: TAG,
            tag: TAG2,
        };
        let b = m.to_bytes();
        assert_eq!(
            b,
            hex!(
                "01 04 01 0102030405060708 00000002 01 00000000 7FFFFFFF A1A2A3A4A5A6A7A8 B1B2B3B4B5B6B7B8"
            )
        );
        assert_eq!(CompletionAck::parse(&b).unwrap(), m);
        let mut bad = b;
        bad[15] = 2;
        assert_eq!(CompletionAck::parse(&bad), Err(MessageError::BadStatus(2)));
    }

    #[test]
    fn limit_update_layout() {
        let m = LimitUpdate {
            profile: Profile::AesCmac,
            module_id: ID,
            sequence: 3,
            limits: Limits {
                min_reload: 10,
                max_reload: 1000,
                upper: 5000,
                credit_line: 200,
            },
            tag: TAG2,
        };
        let b = m.to_bytes();
        assert_eq!(
            b,
            hex!(
                "01 05 01 0102030405060708 00000003 0000000A 000003E8 00001388 000000C8 B1B2B3B4B5B6B7B8"
            )
        );
        assert_eq!(LimitUpdate::parse(&b).unwrap(), m);
    }

    #[test]
    fn structure_errors_in_order() {
        let req = ReloadRequest {
            profile: Profile::AesCmac,
            module_id: ID,
            n: 1,
            requested: 1,
            balance: 0,
            tag: TAG,
        }
        .to_bytes();
        // Length is checked first: m ‖ 00 is refused whatever it holds.
        let mut long = req.to_vec();
        long.push(0);
        assert_eq!(
            ReloadRequest::parse(&long),
            Err(MessageError::WrongLength {
                msg_type: MessageType::Request,
                expected: 31,
                got: 32
            })
        );
        let mut b = req;
        b[0] = 2;
        assert_eq!(
            ReloadRequest::parse(&b),
            Err(MessageError::UnknownVersion(2))
        );
        let mut b = req;
        b[1] = 3;
        assert_eq!(
            ReloadRequest::parse(&b),
            Err(MessageError::WrongType {
                expected: MessageType::Request,
                got: 3
            })
        );
        b[1] = 9;
        assert_eq!(ReloadRequest::parse(&b), Err(MessageError::UnknownType(9)));
        let mut b = req;
        b[2] = 0;
        assert_eq!(
            ReloadRequest::parse(&b),
            Err(MessageError::UnknownAlgorithm(0))
        );
        assert_eq!(Message::parse(&[]), Err(MessageError::Truncated { len: 0 }));
        assert_eq!(
            Message::parse(&[1]),
            Err(MessageError::Truncated { len: 1 })
        );
        assert_eq!(Message::parse(&[1, 6]), Err(MessageError::UnknownType(6)));
        assert_eq!(
            Message::parse(&[1, 2]),
            Err(MessageError::WrongLength {
                msg_type: MessageType::Grant,
                expected: 37,
                got: 2
            })
        );
        assert!(matches!(Message::parse(&req), Ok(Message::Request(_))));
        assert_eq!(
            MessageError::UnknownAlgorithm(7).to_string(),
            "byte 2 (algorithm id) is 07, expected 01 (aes-cmac), 02 (retail-mac) or 03 (desx-cbc)"
        );
    }

    #[test]
    fn display_names_every_field() {
        let m = Message::Request(ReloadRequest {
            profile: Profile::AesCmac,
            module_id: ID,
            n: 7,
            requested: 100,
            balance: 5,
            tag: TAG,
        });
        let s = m.to_string();
        for needle in [
            "reload request (01)",
            "aes-cmac",
            "0102030405060708",
            "N ",
            "100",
            "A1A2A3A4A5A6A7A8",
        ] {
            assert!(s.contains(needle), "{s} lacks {needle}");
        }
        assert_eq!(m.fields().len(), 8);
    }
}
