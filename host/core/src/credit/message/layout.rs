//! The one codec behind every credit message (spec §3): a message type is its layout and
//! nothing else.
//!
//! [`credit_message!`] takes a type's table — type byte, length, key, the tag's offset (= the length of the MAC'd prefix), then one
//! `name @ offset as OFF_NAME: Type` row per body field — and generates the
//! struct, its offset constants, `build` / `signed_bytes` / `to_bytes` / `parse` / `verify`
//! and a [`CreditMessage`] impl. How each field type sits on the wire is [`Field`]; the header,
//! the frame checks and the tag are [`CreditMessage`]'s default methods, written once. A
//! compile-time check refuses a table whose rows leave a gap or overlap. This module must not
//! decide authenticity, addressing or windows: that is [`super::super::module`] and
//! [`super::super::server`].

use crate::crypto::mac::{MacKey, verify_profile_tag};
use crate::crypto::{CryptoError, ModuleKeys, Profile};

use super::super::{Limits, ModuleId, Tag, array_at, be_i32, be_u32};
use super::{
    GrantStatus, HEADER_LEN, KeyRole, MessageError, MessageType, OFF_ALG, OFF_MODULE_ID, OFF_TYPE,
    OFF_VERSION, VERSION,
};

/// How one body field is laid out: its width and its big-endian encoding. `read` sees a frame
/// whose length is already checked, but still never panics on a short slice.
pub trait Field: Sized {
    /// Bytes the field takes on the wire.
    const WIDTH: usize;
    /// Writes the field at `off` of `out`.
    fn write(&self, out: &mut [u8], off: usize);
    /// Reads the field at `off`; `Err` when the bytes are not a valid value of the field.
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError>;
}

fn put(out: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = out.get_mut(off..off + src.len()) {
        dst.copy_from_slice(src);
    }
}

impl Field for u32 {
    const WIDTH: usize = 4;
    fn write(&self, out: &mut [u8], off: usize) {
        put(out, off, &self.to_be_bytes());
    }
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError> {
        Ok(be_u32(bytes, off))
    }
}

impl Field for i32 {
    const WIDTH: usize = 4;
    fn write(&self, out: &mut [u8], off: usize) {
        put(out, off, &self.to_be_bytes());
    }
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError> {
        Ok(be_i32(bytes, off))
    }
}

impl Field for Tag {
    const WIDTH: usize = crate::crypto::TAG_LEN;
    fn write(&self, out: &mut [u8], off: usize) {
        put(out, off, self);
    }
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError> {
        Ok(array_at(bytes, off))
    }
}

/// A completion ack's status byte (spec §3.5): `00` granted (`false`), `01` declined (`true`).
impl Field for bool {
    const WIDTH: usize = 1;
    fn write(&self, out: &mut [u8], off: usize) {
        put(out, off, &[u8::from(*self)]);
    }
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError> {
        match bytes.get(off).copied().unwrap_or(0xFF) {
            0x00 => Ok(false),
            0x01 => Ok(true),
            other => Err(MessageError::BadStatus(other)),
        }
    }
}

/// A grant's status ‖ reason (spec §3.3), checked by [`GrantStatus::from_bytes`].
impl Field for GrantStatus {
    const WIDTH: usize = 2;
    fn write(&self, out: &mut [u8], off: usize) {
        put(out, off, &[self.status_byte(), self.reason_byte()]);
    }
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError> {
        GrantStatus::from_bytes(
            bytes.get(off).copied().unwrap_or(0xFF),
            bytes.get(off + 1).copied().unwrap_or(0xFF),
        )
    }
}

/// `m ‖ M ‖ U ‖ L` (spec §3.6), carried as is: validity is the module's check, after the tag.
impl Field for Limits {
    const WIDTH: usize = Limits::LEN;
    fn write(&self, out: &mut [u8], off: usize) {
        put(out, off, &self.to_bytes());
    }
    fn read(bytes: &[u8], off: usize) -> Result<Self, MessageError> {
        Ok(Limits::from_bytes(&array_at(bytes, off)))
    }
}

/// What every credit message shares: the header, the frame checks, the tag. A type supplies its
/// table (through [`credit_message!`]); everything else is a default method here.
pub trait CreditMessage: Sized {
    /// The type byte.
    const TYPE: MessageType;
    /// Length on the wire, tag included.
    const LEN: usize;
    /// Offset of the tag = length of the MAC'd prefix.
    const OFF_TAG: usize;

    /// The algorithm id in the header.
    fn profile(&self) -> Profile;
    /// The module id in the header.
    fn module_id(&self) -> ModuleId;
    /// The tag carried.
    fn tag(&self) -> &Tag;
    /// Writes the body fields into `out` (the whole message buffer).
    fn write_body(&self, out: &mut [u8]);
    /// Reads the body of a frame already checked by [`CreditMessage::decode`].
    fn read_body(profile: Profile, module_id: ModuleId, bytes: &[u8])
    -> Result<Self, MessageError>;

    /// The key that MACs this type.
    fn key_role() -> KeyRole {
        Self::TYPE.key_role()
    }

    /// Writes header and body (everything the tag covers) into `out[..OFF_TAG]`.
    fn write_signed(&self, out: &mut [u8]) {
        put(
            out,
            OFF_VERSION,
            &[VERSION, Self::TYPE.code(), self.profile().id()],
        );
        put(out, OFF_MODULE_ID, &self.module_id());
        self.write_body(out);
    }

    /// The MAC'd prefix, bytes `0..OFF_TAG`.
    fn signed_vec(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::OFF_TAG];
        self.write_signed(&mut b);
        b
    }

    /// The bytes on the wire.
    fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; Self::LEN];
        self.write_signed(&mut b);
        put(&mut b, Self::OFF_TAG, self.tag());
        b
    }

    /// Checks length, version, type and algorithm id, in that order (spec §3: a message of the
    /// wrong length is rejected before anything else), then reads the body. Does not check the
    /// tag.
    fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let t = Self::TYPE;
        if bytes.len() != Self::LEN {
            return Err(MessageError::WrongLength {
                msg_type: t,
                expected: Self::LEN,
                got: bytes.len(),
            });
        }
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(0);
        if byte(OFF_VERSION) != VERSION {
            return Err(MessageError::UnknownVersion(byte(OFF_VERSION)));
        }
        if byte(OFF_TYPE) != t.code() {
            return Err(match MessageType::from_code(byte(OFF_TYPE)) {
                Some(_) => MessageError::WrongType {
                    expected: t,
                    got: byte(OFF_TYPE),
                },
                None => MessageError::UnknownType(byte(OFF_TYPE)),
            });
        }
        let profile =
            Profile::from_id(byte(OFF_ALG)).ok_or(MessageError::UnknownAlgorithm(byte(OFF_ALG)))?;
        Self::read_body(profile, array_at(bytes, OFF_MODULE_ID), bytes)
    }

    /// Whether the tag verifies under `key` (constant time). `Err` only for a bad key length.
    fn verify_tag(&self, key: &dyn MacKey) -> Result<bool, CryptoError> {
        verify_profile_tag(self.profile(), key, &self.signed_vec(), self.tag())
    }

    /// Verifies the tag under the key of this type's [`KeyRole`], taken from `keys`.
    fn verify_with(&self, keys: &ModuleKeys) -> Result<bool, CryptoError> {
        match Self::key_role() {
            KeyRole::Request => self.verify_tag(&keys.request),
            KeyRole::Grant => self.verify_tag(&keys.grant),
        }
    }
}

/// Whether `rows` (offset, width) tile `HEADER_LEN..off_tag` with no gap or overlap, and the tag
/// ends the message. Evaluated at compile time for every table.
pub(crate) const fn tiles(rows: &[(usize, usize)], off_tag: usize, len: usize) -> bool {
    let mut at = HEADER_LEN;
    let mut i = 0;
    while i < rows.len() {
        if rows[i].0 != at {
            return false;
        }
        at += rows[i].1;
        i += 1;
    }
    at == off_tag && off_tag + crate::crypto::TAG_LEN == len
}

/// Declares a credit message from its layout table. `normalize` (optional) adjusts a value
/// before `build` MACs it; `check` (optional) refuses a decoded body on a cross-field rule.
macro_rules! credit_message {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            type: $mtype:ident, len: $len:literal, key: $key:ident, tag at: $off_tag:literal
            $(, normalize: $normalize:path)? $(, check: $check:path)?;
            $( $(#[$fmeta:meta])* $field:ident @ $off:literal as $off_name:ident : $fty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Algorithm id: the module's profile.
            pub profile: Profile,
            /// The module id in the header.
            pub module_id: ModuleId,
            $( $(#[$fmeta])* pub $field: $fty, )*
            #[doc = concat!("MAC over bytes 0..", stringify!($off_tag), ".")]
            pub tag: Tag,
        }

        impl $name {
            /// Length on the wire.
            pub const LEN: usize = $len;
            $( #[allow(dead_code)] pub(crate) const $off_name: usize = $off; )*
            #[allow(dead_code)]
            pub(crate) const OFF_TAG: usize = $off_tag;

            #[doc = concat!("Builds and MACs a ", stringify!($name), " with ", stringify!($key),
                ". `Err` only for a key of the wrong length.")]
            #[allow(clippy::too_many_arguments)] // one argument per field of the spec's table
            pub fn build(
                profile: Profile,
                module_id: ModuleId,
                $( $field: $fty, )*
                $key: &dyn MacKey,
            ) -> Result<Self, CryptoError> {
                #[allow(unused_mut)]
                let mut m = $name { profile, module_id, $( $field, )* tag: [0; TAG_LEN] };
                $( $normalize(&mut m); )?
                m.tag = $key.profile_tag(profile, &m.signed_bytes())?;
                Ok(m)
            }

            #[doc = concat!("The bytes the tag covers (0..", stringify!($off_tag), ").")]
            pub fn signed_bytes(&self) -> [u8; $off_tag] {
                let mut b = [0u8; $off_tag];
                CreditMessage::write_signed(self, &mut b);
                b
            }

            #[doc = concat!("The ", stringify!($len), " bytes on the wire.")]
            pub fn to_bytes(&self) -> [u8; $len] {
                let mut b = [0u8; $len];
                CreditMessage::write_signed(self, &mut b);
                b[$off_tag..].copy_from_slice(&self.tag);
                b
            }

            /// Decodes the structure (length, version, type, algorithm id, then each field in
            /// wire order). Does not check the tag.
            pub fn parse(bytes: &[u8]) -> Result<Self, MessageError> {
                <Self as CreditMessage>::decode(bytes)
            }

            #[doc = concat!("Whether the tag verifies under `", stringify!($key),
                "` (constant time). `Err` only for a bad key length.")]
            pub fn verify(&self, $key: &dyn MacKey) -> Result<bool, CryptoError> {
                CreditMessage::verify_tag(self, $key)
            }
        }

        const _: () = assert!(
            $crate::credit::message::layout::tiles(
                &[$( ($off, <$fty as $crate::credit::message::layout::Field>::WIDTH), )*],
                $off_tag,
                $len,
            ),
            concat!(stringify!($name), ": fields do not tile the message"),
        );

        impl CreditMessage for $name {
            const TYPE: MessageType = MessageType::$mtype;
            const LEN: usize = $len;
            const OFF_TAG: usize = $off_tag;

            fn profile(&self) -> Profile {
                self.profile
            }
            fn module_id(&self) -> ModuleId {
                self.module_id
            }
            fn tag(&self) -> &Tag {
                &self.tag
            }
            fn write_body(&self, _out: &mut [u8]) {
                $( $crate::credit::message::layout::Field::write(&self.$field, _out, $off); )*
            }
            fn read_body(
                profile: Profile,
                module_id: ModuleId,
                _bytes: &[u8],
            ) -> Result<Self, MessageError> {
                let m = $name {
                    profile,
                    module_id,
                    $( $field: <$fty as $crate::credit::message::layout::Field>::read(_bytes, $off)?, )*
                    tag: $crate::credit::array_at(_bytes, $off_tag),
                };
                $( $check(&m)?; )?
                Ok(m)
            }
        }
    };
}

pub(crate) use credit_message;

#[cfg(test)]
mod tests {
    use super::super::{
        CompletionAck, LimitUpdate, Message, ProvisionalAck, ReloadGrant, ReloadRequest,
    };
    use super::*;
    use crate::credit::DeclineReason;
    use crate::crypto::{SecretKey, TAG_LEN};
    use hex_literal::hex;

    const ID: ModuleId = hex!("0102030405060708");
    const TAG: Tag = hex!("A1A2A3A4A5A6A7A8");

    fn keys() -> ModuleKeys {
        ModuleKeys {
            request: SecretKey::new(&[0x11; 16]),
            grant: SecretKey::new(&[0x22; 16]),
        }
    }

    /// Through the shared code only: encode/decode round trip, the MAC'd prefix, the tag under
    /// the type's key, and every one-bit change of the tag (and the other key) refused — also
    /// through [`Message`]'s dispatch.
    fn shared_code_checks<M>(m: M, wrap: fn(M) -> Message)
    where
        M: CreditMessage + Clone + PartialEq + core::fmt::Debug,
    {
        let keys = keys();
        let bytes = m.encode();
        assert_eq!(bytes.len(), M::LEN);
        assert_eq!(bytes.len(), M::TYPE.wire_len());
        assert_eq!(bytes[OFF_TYPE], M::TYPE.code());
        assert_eq!(M::decode(&bytes).as_ref(), Ok(&m));
        assert_eq!(bytes[..M::OFF_TAG], m.signed_vec()[..]);
        assert_eq!(&bytes[M::OFF_TAG..], &m.tag()[..]);
        assert_eq!(m.verify_with(&keys), Ok(true));
        assert_eq!(Message::parse(&bytes), Ok(wrap(m.clone())));
        assert_eq!(wrap(m.clone()).to_bytes(), bytes);
        assert_eq!(wrap(m.clone()).verify(&keys), Ok(true));

        let swapped = ModuleKeys {
            request: SecretKey::new(&[0x22; 16]),
            grant: SecretKey::new(&[0x11; 16]),
        };
        assert_eq!(
            m.verify_with(&swapped),
            Ok(false),
            "{:?} under the other key",
            M::TYPE
        );

        for bit in 0..TAG_LEN * 8 {
            let mut b = bytes.clone();
            b[M::OFF_TAG + bit / 8] ^= 0x80 >> (bit % 8);
            let flipped = M::decode(&b).expect("a tag bit does not change the structure");
            assert_eq!(
                flipped.verify_with(&keys),
                Ok(false),
                "{:?} bit {bit}",
                M::TYPE
            );
            let any = Message::parse(&b).expect("structure unchanged");
            assert_eq!(any.verify(&keys), Ok(false), "{:?} bit {bit}", M::TYPE);
        }
        // A body bit flipped under the same tag is refused too.
        let mut b = bytes.clone();
        b[OFF_MODULE_ID] ^= 0x01;
        let moved = M::decode(&b).expect("module id is not checked by structure");
        assert_eq!(moved.verify_with(&keys), Ok(false));
    }

    #[test]
    fn every_type_round_trips_and_refuses_a_flipped_tag_bit() {
        let k = keys();
        let p = Profile::AesCmac;
        let req = ReloadRequest::build(p, ID, 7, 500, -2, &k.request).unwrap();
        shared_code_checks(req, Message::Request);
        let grant = ReloadGrant::build(p, ID, 8, GrantStatus::Granted, 500, TAG, &k.grant).unwrap();
        shared_code_checks(grant, Message::Grant);
        let declined = ReloadGrant::build(
            p,
            ID,
            8,
            GrantStatus::Declined(DeclineReason::AtUpperLimit),
            500,
            TAG,
            &k.grant,
        )
        .unwrap();
        assert_eq!(declined.granted, 0, "build zeroes G in a decline");
        shared_code_checks(declined, Message::Grant);
        let prov = ProvisionalAck::build(p, ID, 8, TAG, &k.grant).unwrap();
        shared_code_checks(prov, Message::ProvisionalAck);
        let ack = CompletionAck::build(p, ID, 8, true, 0, 42, TAG, &k.request).unwrap();
        shared_code_checks(ack, Message::CompletionAck);
        let limits = Limits::from_bytes(&hex!("00000001 000003E8 00002710 00000064"));
        let lu = LimitUpdate::build(p, ID, 3, limits, &k.grant).unwrap();
        shared_code_checks(lu, Message::LimitUpdate);
    }

    #[test]
    fn tiles_refuses_gaps_overlaps_and_a_short_tag() {
        assert!(tiles(&[(11, 4), (15, 4)], 19, 27));
        assert!(tiles(&[], HEADER_LEN, HEADER_LEN + TAG_LEN));
        assert!(!tiles(&[(11, 4), (16, 4)], 20, 28), "gap at 15");
        assert!(!tiles(&[(11, 4), (14, 4)], 18, 26), "overlap at 14");
        assert!(!tiles(&[(12, 4)], 16, 24), "gap after the header");
        assert!(!tiles(&[(11, 4)], 16, 24), "gap before the tag");
        assert!(!tiles(&[(11, 4)], 15, 22), "tag shorter than 8");
    }

    #[test]
    fn field_codecs_pin_their_bytes() {
        let mut b = [0u8; 6];
        (-2i32).write(&mut b, 1);
        assert_eq!(b, hex!("00 FFFFFFFE 00"));
        assert_eq!(i32::read(&b, 1), Ok(-2));
        GrantStatus::Declined(DeclineReason::AtUpperLimit).write(&mut b, 4);
        assert_eq!(b[4..], hex!("01 05"));
        true.write(&mut b, 0);
        assert_eq!(b[0], 0x01);
        assert_eq!(bool::read(&[0x02], 0), Err(MessageError::BadStatus(0x02)));
        // Short input never panics: missing bytes read as zeros / FF as before.
        assert_eq!(u32::read(&[1, 2], 0), Ok(0));
        assert_eq!(bool::read(&[], 0), Err(MessageError::BadStatus(0xFF)));
        // Writing past the end is a no-op, not a panic.
        let mut short = [0u8; 2];
        7u32.write(&mut short, 0);
        assert_eq!(short, [0, 0]);
    }
}
