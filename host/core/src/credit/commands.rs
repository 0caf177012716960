//! Credit-module APDU commands (spec §1, §4): identifiers, INS values, one constructor per
//! command, and the personalisation data of PERSONALISE (spec §4.11).
//!
//! The constants here are the Rust half of the INS table; the applet's `Constants` class is the
//! Java half, and a test checks them against each other through `applet-spec/`. This module
//! only builds bytes; sending them and checking status words is the card-access layer's job.

use crate::apdu::Command;
use crate::crypto::{ModuleKeys, Profile, SecretKey};

use super::message::{CompletionAck, ReloadRequest};
use super::module::{SERVER_ADDRESS_MAX, Status};
use super::{Limits, ModuleId, array_at, be_i32, be_u16, be_u32};

/// Package AID: `F0` proprietary ‖ ASCII `SIMKIT` ‖ `01` (spec §1).
pub const PACKAGE_AID: [u8; 8] = [0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0x01];
/// Applet AID: the package AID ‖ `01` (spec §1).
pub const APPLET_AID: [u8; 9] = [0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0x01, 0x01];

/// CLA of every proprietary command.
pub const CLA: u8 = 0x80;
/// CLA of SELECT.
pub const CLA_ISO: u8 = 0x00;

/// SELECT (ISO, CLA `00`, P1 `04`).
pub const INS_SELECT: u8 = 0xA4;
/// GET STATUS (§4.2).
pub const INS_GET_STATUS: u8 = 0x10;
/// GET SERVER ADDRESS (§4.3).
pub const INS_GET_SERVER_ADDRESS: u8 = 0x12;
/// INITIATE RELOAD (§4.4).
pub const INS_INITIATE_RELOAD: u8 = 0x20;
/// APPLY GRANT (§4.5).
pub const INS_APPLY_GRANT: u8 = 0x22;
/// APPLY PROVISIONAL ACK (§4.6).
pub const INS_APPLY_PROVISIONAL_ACK: u8 = 0x24;
/// GET LAST COMPLETION (§4.7).
pub const INS_GET_LAST_COMPLETION: u8 = 0x26;
/// DEBIT (§4.8).
pub const INS_DEBIT: u8 = 0x30;
/// APPLY LIMIT UPDATE (§4.9).
pub const INS_APPLY_LIMIT_UPDATE: u8 = 0x32;
/// GET FRAUD LOG (§4.10).
pub const INS_GET_FRAUD_LOG: u8 = 0x34;
/// PERSONALISE (§4.11).
pub const INS_PERSONALISE: u8 = 0x50;
/// LOCK (§4.12).
pub const INS_LOCK: u8 = 0x5E;

/// Every INS with its spec name, for tables and the cross-language constants check.
pub const INS_TABLE: [(u8, &str); 12] = [
    (INS_SELECT, "SELECT"),
    (INS_GET_STATUS, "GET STATUS"),
    (INS_GET_SERVER_ADDRESS, "GET SERVER ADDRESS"),
    (INS_INITIATE_RELOAD, "INITIATE RELOAD"),
    (INS_APPLY_GRANT, "APPLY GRANT"),
    (INS_APPLY_PROVISIONAL_ACK, "APPLY PROVISIONAL ACK"),
    (INS_GET_LAST_COMPLETION, "GET LAST COMPLETION"),
    (INS_DEBIT, "DEBIT"),
    (INS_APPLY_LIMIT_UPDATE, "APPLY LIMIT UPDATE"),
    (INS_GET_FRAUD_LOG, "GET FRAUD LOG"),
    (INS_PERSONALISE, "PERSONALISE"),
    (INS_LOCK, "LOCK"),
];

/// Ne for responses of variable length up to 256 bytes (short Le `00`).
const LE_ANY: u32 = 256;

/// §4.1 SELECT: `00 A4 04 00 09 <applet AID>`. Response: no data, `9000`.
pub fn select() -> Command {
    Command::new(CLA_ISO, INS_SELECT, 0x04, 0x00).data(APPLET_AID.to_vec())
}

/// §4.2 GET STATUS: `80 10 00 00 31`. Response: 49 bytes ([`Status::parse`]).
pub fn get_status() -> Command {
    Command::new(CLA, INS_GET_STATUS, 0, 0).le(Status::LEN as u32)
}

/// §4.3 GET SERVER ADDRESS: `80 12 00 00 00`. Response: 0..64 bytes.
pub fn get_server_address() -> Command {
    Command::new(CLA, INS_GET_SERVER_ADDRESS, 0, 0).le(LE_ANY)
}

/// §4.4 INITIATE RELOAD: `80 20 00 00 04 <R> 1F`. Response: the 31-byte request.
pub fn initiate_reload(requested: u32) -> Command {
    Command::new(CLA, INS_INITIATE_RELOAD, 0, 0)
        .data(requested.to_be_bytes().to_vec())
        .le(ReloadRequest::LEN as u32)
}

/// §4.5 APPLY GRANT: `80 22 00 00 25 <grant> 28`. Response: the 40-byte completion ack.
/// Takes any bytes so that conformance suites can send malformed grants.
pub fn apply_grant(grant: &[u8]) -> Command {
    Command::new(CLA, INS_APPLY_GRANT, 0, 0)
        .data(grant.to_vec())
        .le(CompletionAck::LEN as u32)
}

/// §4.6 APPLY PROVISIONAL ACK: `80 24 00 00 1F <ack>`. Response: no data.
pub fn apply_provisional_ack(ack: &[u8]) -> Command {
    Command::new(CLA, INS_APPLY_PROVISIONAL_ACK, 0, 0).data(ack.to_vec())
}

/// §4.7 GET LAST COMPLETION: `80 26 00 00 28`. Response: the 40-byte completion ack.
pub fn get_last_completion() -> Command {
    Command::new(CLA, INS_GET_LAST_COMPLETION, 0, 0).le(CompletionAck::LEN as u32)
}

/// §4.8 DEBIT: `80 30 00 00 04 <amount> 04`. Response: the new balance (i32).
pub fn debit(amount: u32) -> Command {
    Command::new(CLA, INS_DEBIT, 0, 0)
        .data(amount.to_be_bytes().to_vec())
        .le(4)
}

/// §4.9 APPLY LIMIT UPDATE: `80 32 00 00 27 <update>`. Response: no data.
pub fn apply_limit_update(update: &[u8]) -> Command {
    Command::new(CLA, INS_APPLY_LIMIT_UPDATE, 0, 0).data(update.to_vec())
}

/// §4.10 GET FRAUD LOG: `80 34 00 00 00`. Response: count ‖ 9-byte entries
/// ([`super::module::FraudEntry::parse_log`]).
pub fn get_fraud_log() -> Command {
    Command::new(CLA, INS_GET_FRAUD_LOG, 0, 0).le(LE_ANY)
}

/// §4.11 PERSONALISE: `80 50 00 00 Lc <TLV objects>`. Response: no data.
pub fn personalise(data: &PersonalisationData) -> Command {
    Command::new(CLA, INS_PERSONALISE, 0, 0).data(data.to_tlv())
}

/// §4.12 LOCK: `80 5E 00 00`. Response: no data.
pub fn lock() -> Command {
    Command::new(CLA, INS_LOCK, 0, 0)
}

/// Personalisation tag `81`: module id (8 bytes).
pub const TAG_MODULE_ID: u8 = 0x81;
/// Personalisation tag `82`: profile id (1 byte, `01`..`03`).
pub const TAG_PROFILE: u8 = 0x82;
/// Personalisation tag `83`: K_req (the profile's key length).
pub const TAG_K_REQ: u8 = 0x83;
/// Personalisation tag `84`: K_grant (the profile's key length).
pub const TAG_K_GRANT: u8 = 0x84;
/// Personalisation tag `85`: m ‖ M ‖ U ‖ L (16 bytes).
pub const TAG_LIMITS: u8 = 0x85;
/// Personalisation tag `86`: initial balance (i32) ‖ initial N (u32).
pub const TAG_INITIAL: u8 = 0x86;
/// Personalisation tag `87`: fraud threshold (u16, ≥ 1).
pub const TAG_THRESHOLD: u8 = 0x87;
/// Personalisation tag `88`: server address (0..64 bytes).
pub const TAG_SERVER_ADDRESS: u8 = 0x88;

/// Initial balance and transaction number (personalisation tag `86`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct InitialCounters {
    /// Initial balance B; must lie in `[−L, U]`.
    pub balance: i32,
    /// Initial N; the server registers S = N.
    pub n: u32,
}

/// The data of one PERSONALISE command (spec §4.11): any subset of the objects.
///
/// `Debug` shows keys as key check values only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonalisationData {
    /// `81` module id.
    pub module_id: Option<ModuleId>,
    /// `82` profile.
    pub profile: Option<Profile>,
    /// `83` K_req.
    pub k_req: Option<SecretKey>,
    /// `84` K_grant.
    pub k_grant: Option<SecretKey>,
    /// `85` limits.
    pub limits: Option<Limits>,
    /// `86` initial balance and N.
    pub initial: Option<InitialCounters>,
    /// `87` fraud threshold.
    pub threshold: Option<u16>,
    /// `88` server address.
    pub server_address: Option<Vec<u8>>,
}

/// Why PERSONALISE data is malformed (structure only; all answer `6A80`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PersonalisationError {
    /// An object's tag, length or value runs past the end of the data.
    #[error("object at offset {offset} runs past the end of the data")]
    Truncated {
        /// Offset of the object's tag.
        offset: usize,
    },
    /// A tag outside `81`..`88`.
    #[error("unknown tag {tag:02X} at offset {offset}")]
    UnknownTag {
        /// The tag.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// The same tag twice in one command.
    #[error("tag {0:02X} appears twice")]
    DuplicateTag(u8),
    /// A BER long-form length (first length byte ≥ `80`): every value here is shorter than 128
    /// bytes, so the short form is the only one accepted.
    #[error(
        "tag {tag:02X} has a long-form length byte {length_byte:02X}; only one-byte lengths are accepted"
    )]
    LongFormLength {
        /// The tag.
        tag: u8,
        /// The length byte.
        length_byte: u8,
    },
    /// A fixed-length object of another length.
    #[error("tag {tag:02X} must be {expected} bytes, got {got}")]
    WrongLength {
        /// The tag.
        tag: u8,
        /// The accepted length(s).
        expected: &'static str,
        /// The length found.
        got: usize,
    },
    /// Tag `82` with a value that is not a profile id.
    #[error("tag 82 (profile) is {0:02X}, expected 01..03")]
    BadProfile(u8),
    /// Tag `87` with value 0.
    #[error("tag 87 (fraud threshold) must be at least 1")]
    ZeroThreshold,
}

impl PersonalisationData {
    /// Everything LOCK needs for a module: identity, profile, both keys, limits and threshold,
    /// with balance and N left at their defaults (0) and no server address.
    pub fn complete(
        profile: Profile,
        module_id: ModuleId,
        keys: &ModuleKeys,
        limits: Limits,
        threshold: u16,
    ) -> Self {
        PersonalisationData {
            module_id: Some(module_id),
            profile: Some(profile),
            k_req: Some(keys.request.clone()),
            k_grant: Some(keys.grant.clone()),
            limits: Some(limits),
            initial: None,
            threshold: Some(threshold),
            server_address: None,
        }
    }

    /// The objects present, as BER-TLV in tag order (`81` first). Values are written as given
    /// (no validity check), so tests can build refused data too. Keys appear in the output: it
    /// is the one place where key bytes leave [`SecretKey`], because PERSONALISE carries them.
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |tag: u8, value: &[u8]| {
            out.push(tag);
            // Lengths above 127 cannot be personalised; the applet refuses them as long-form
            // lengths, which is what writing the low byte here makes it do.
            out.push(u8::try_from(value.len()).unwrap_or(0xFF));
            out.extend_from_slice(value);
        };
        if let Some(id) = &self.module_id {
            put(TAG_MODULE_ID, id);
        }
        if let Some(p) = self.profile {
            put(TAG_PROFILE, &[p.id()]);
        }
        if let Some(k) = &self.k_req {
            put(TAG_K_REQ, k.expose_secret());
        }
        if let Some(k) = &self.k_grant {
            put(TAG_K_GRANT, k.expose_secret());
        }
        if let Some(l) = &self.limits {
            put(TAG_LIMITS, &l.to_bytes());
        }
        if let Some(i) = &self.initial {
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&i.balance.to_be_bytes());
            v[4..].copy_from_slice(&i.n.to_be_bytes());
            put(TAG_INITIAL, &v);
        }
        if let Some(t) = self.threshold {
            put(TAG_THRESHOLD, &t.to_be_bytes());
        }
        if let Some(a) = &self.server_address {
            put(TAG_SERVER_ADDRESS, a);
        }
        out
    }

    /// Parses PERSONALISE data (structure only, spec §4.11): known tags, each at most once,
    /// short-form lengths, fixed lengths, profile id and threshold values, nothing trailing.
    /// Key lengths depend on the profile in force and are checked by the module.
    pub fn parse(data: &[u8]) -> Result<Self, PersonalisationError> {
        let mut d = PersonalisationData::default();
        let mut seen = [false; 8];
        let mut off = 0usize;
        while off < data.len() {
            let (Some(&tag), Some(&len_byte)) = (data.get(off), data.get(off + 1)) else {
                return Err(PersonalisationError::Truncated { offset: off });
            };
            let slot = match tag {
                TAG_MODULE_ID..=TAG_SERVER_ADDRESS => usize::from(tag - TAG_MODULE_ID),
                _ => return Err(PersonalisationError::UnknownTag { tag, offset: off }),
            };
            if len_byte >= 0x80 {
                return Err(PersonalisationError::LongFormLength {
                    tag,
                    length_byte: len_byte,
                });
            }
            let len = usize::from(len_byte);
            let value = data
                .get(off + 2..off + 2 + len)
                .ok_or(PersonalisationError::Truncated { offset: off })?;
            if seen.get(slot).copied().unwrap_or(true) {
                return Err(PersonalisationError::DuplicateTag(tag));
            }
            if let Some(s) = seen.get_mut(slot) {
                *s = true;
            }
            let fixed = |expected: usize, what: &'static str| {
                if len == expected {
                    Ok(())
                } else {
                    Err(PersonalisationError::WrongLength {
                        tag,
                        expected: what,
                        got: len,
                    })
                }
            };
            match tag {
                TAG_MODULE_ID => {
                    fixed(8, "8")?;
                    d.module_id = Some(array_at(value, 0));
                }
                TAG_PROFILE => {
                    fixed(1, "1")?;
                    let id = value.first().copied().unwrap_or(0);
                    d.profile =
                        Some(Profile::from_id(id).ok_or(PersonalisationError::BadProfile(id))?);
                }
                TAG_K_REQ | TAG_K_GRANT => {
                    if len != 16 && len != 24 {
                        return Err(PersonalisationError::WrongLength {
                            tag,
                            expected: "16 or 24",
                            got: len,
                        });
                    }
                    let key = Some(SecretKey::new(value));
                    if tag == TAG_K_REQ {
                        d.k_req = key;
                    } else {
                        d.k_grant = key;
                    }
                }
                TAG_LIMITS => {
                    fixed(Limits::LEN, "16")?;
                    d.limits = Some(Limits::from_bytes(&array_at(value, 0)));
                }
                TAG_INITIAL => {
                    fixed(8, "8")?;
                    d.initial = Some(InitialCounters {
                        balance: be_i32(value, 0),
                        n: be_u32(value, 4),
                    });
                }
                TAG_THRESHOLD => {
                    fixed(2, "2")?;
                    let t = be_u16(value, 0);
                    if t == 0 {
                        return Err(PersonalisationError::ZeroThreshold);
                    }
                    d.threshold = Some(t);
                }
                _ => {
                    if len > SERVER_ADDRESS_MAX {
                        return Err(PersonalisationError::WrongLength {
                            tag,
                            expected: "0..64",
                            got: len,
                        });
                    }
                    d.server_address = Some(value.to_vec());
                }
            }
            off += 2 + len;
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn aid_spells_simkit() {
        assert_eq!(&PACKAGE_AID[1..7], b"SIMKIT");
        assert_eq!(APPLET_AID[..8], PACKAGE_AID);
        assert_eq!(APPLET_AID[8], 0x01);
    }

    #[test]
    fn command_bytes() {
        use crate::apdu::LengthEncoding::Short;
        let enc = |c: Command| c.to_bytes(Short).unwrap();
        assert_eq!(enc(select()), hex!("00A4040009 F053494D4B49540101"));
        assert_eq!(enc(get_status()), hex!("80100000 31"));
        assert_eq!(enc(get_server_address()), hex!("80120000 00"));
        assert_eq!(enc(initiate_reload(0x64)), hex!("80200000 04 00000064 1F"));
        let g = enc(apply_grant(&[0xAA; 37]));
        assert_eq!(g[..5], hex!("8022000025"));
        assert_eq!(g.len(), 5 + 37 + 1);
        assert_eq!(g[42], 0x28);
        let p = enc(apply_provisional_ack(&[0xAA; 31]));
        assert_eq!(
            (p[..5].to_vec(), p.len()),
            (hex!("802400001F").to_vec(), 36)
        );
        assert_eq!(enc(get_last_completion()), hex!("80260000 28"));
        assert_eq!(enc(debit(5)), hex!("80300000 04 00000005 04"));
        let l = enc(apply_limit_update(&[0xAA; 39]));
        assert_eq!(
            (l[..5].to_vec(), l.len()),
            (hex!("8032000027").to_vec(), 44)
        );
        assert_eq!(enc(get_fraud_log()), hex!("80340000 00"));
        let d = PersonalisationData {
            threshold: Some(3),
            ..PersonalisationData::default()
        };
        assert_eq!(enc(personalise(&d)), hex!("80500000 04 87020003"));
        assert_eq!(enc(lock()), hex!("805E0000"));
    }

    #[test]
    fn tlv_layout_and_round_trip() {
        let d = PersonalisationData {
            module_id: Some(hex!("0102030405060708")),
            profile: Some(Profile::AesCmac),
            k_req: Some(SecretKey::new(&[0x11; 16])),
            k_grant: Some(SecretKey::new(&[0x22; 16])),
            limits: Some(Limits {
                min_reload: 1,
                max_reload: 2,
                upper: 3,
                credit_line: 4,
            }),
            initial: Some(InitialCounters { balance: -1, n: 7 }),
            threshold: Some(3),
            server_address: Some(b"https://r".to_vec()),
        };
        let t = d.to_tlv();
        assert_eq!(t[..13], hex!("81 08 0102030405060708 82 01 01"));
        assert_eq!(t[13..15], hex!("83 10"));
        assert_eq!(t[31..33], hex!("84 10"));
        assert_eq!(
            t[49..],
            hex!(
                "85 10 00000001 00000002 00000003 00000004"
                "86 08 FFFFFFFF 00000007"
                "87 02 0003"
                "88 09 68747470733A2F2F72"
            )
        );
        assert_eq!(PersonalisationData::parse(&t).unwrap(), d);
        assert_eq!(
            PersonalisationData::parse(&[]).unwrap(),
            PersonalisationData::default()
        );
    }

    #[test]
    fn tlv_structure_errors() {
        use PersonalisationError as E;
        let p = PersonalisationData::parse;
        assert_eq!(
            p(&hex!("89 00")),
            Err(E::UnknownTag {
                tag: 0x89,
                offset: 0
            })
        );
        assert_eq!(p(&hex!("82 01 01 82 01 01")), Err(E::DuplicateTag(0x82)));
        assert_eq!(p(&hex!("82 01 01 87")), Err(E::Truncated { offset: 3 }));
        assert_eq!(p(&hex!("82 02 01")), Err(E::Truncated { offset: 0 }));
        assert_eq!(
            p(&hex!("88 81 01 00")),
            Err(E::LongFormLength {
                tag: 0x88,
                length_byte: 0x81
            })
        );
        assert_eq!(p(&hex!("82 01 04")), Err(E::BadProfile(4)));
        assert_eq!(p(&hex!("87 02 0000")), Err(E::ZeroThreshold));
        assert!(matches!(
            p(&hex!("81 07 01020304050607")),
            Err(E::WrongLength { tag: 0x81, .. })
        ));
        assert!(matches!(
            p(&[0x83, 8, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(E::WrongLength { tag: 0x83, .. })
        ));
        let mut long = vec![0x88, 65];
        long.extend_from_slice(&[0x41; 65]);
        assert!(matches!(p(&long), Err(E::WrongLength { tag: 0x88, .. })));
    }
}
