//! Status words (SW1-SW2) of response APDUs.
//!
//! This module owns the mapping between the two trailer bytes of a response APDU and their
//! meaning: the interindustry values of ISO/IEC 7816-4 (§5.1.3, tables 5 and 6) and the
//! applet-specific values of the simkit credit module (`9Cxx`) and backup store (`9Dxx`).
//!
//! [`Sw`] is one enum with a variant per listed value, parameterised variants for the families
//! that carry a number (`61xx`, `63Cx`, `6Cxx`) and [`Sw::Unknown`] for everything else, so that
//! `Sw::from_u16(x).to_u16() == x` holds for every `u16`. The applet-specific codes are also
//! listed in the tables [`CREDIT_SW`] and [`BACKUP_SW`] (and the interindustry ones in
//! [`ISO_SW`]) so that tests can check the Java constants against them; the enum and the tables
//! are generated from one list and cannot drift apart.
//!
//! This module must not decide what to do about a status word (retry, GET RESPONSE, give up):
//! that is the caller's policy. It only names them.

use std::borrow::Cow;
use std::fmt;

/// One row of a status-word table: the code, the name of its [`Sw`] variant and its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwEntry {
    /// The status word, SW1 in the high byte.
    pub code: u16,
    /// The name of the [`Sw`] variant (as printed by `Debug`).
    pub name: &'static str,
    /// The meaning printed by `Display` after the four hex digits.
    pub meaning: &'static str,
}

macro_rules! status_words {
    (
        $(
            $(#[$table_attr:meta])*
            $table:ident = [
                $( $name:ident = $code:literal, $meaning:literal; )*
            ];
        )*
    ) => {
        /// A status word: the SW1-SW2 trailer of a response APDU.
        ///
        /// Build one with [`Sw::from_u16`] or [`Sw::from_bytes`]; those never produce
        /// [`Sw::Unknown`] for a code that has its own variant, and the round trip
        /// `Sw::from_u16(x).to_u16() == x` holds for every `x`. Constructing `Unknown` with a
        /// listed code, or `RemainingRetries` with a value above 15, by hand gives a value that
        /// `to_u16` still serialises but that does not compare equal to the parsed one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Sw {
            $( $(
                #[doc = concat!("`", stringify!($code), "`: ", $meaning, ".")]
                $name,
            )* )*
            /// `61xx`: process completed; SW2 more response bytes are available (GET RESPONSE
            /// with Le = SW2; `00` means 256).
            MoreAvailable(u8),
            /// `63Cx`: verification failed; the low nibble is the number of retries left (0..=15).
            RemainingRetries(u8),
            /// `6Cxx`: wrong Le; SW2 is the exact number of bytes available (`00` means 256).
            /// Re-issue the command with [`Command::with_le`](crate::apdu::Command::with_le).
            WrongLe(u8),
            /// Any status word without a variant of its own.
            Unknown(u16),
        }

        $(
            $(#[$table_attr])*
            pub const $table: &[SwEntry] = &[
                $( SwEntry { code: $code, name: stringify!($name), meaning: $meaning }, )*
            ];
        )*

        impl Sw {
            /// The variant of a status word with a fixed code, if it has one.
            const fn fixed_from_u16(sw: u16) -> Option<Sw> {
                match sw {
                    $( $( $code => Some(Sw::$name), )* )*
                    _ => None,
                }
            }

            /// The code and meaning of a fixed-code variant, `None` for the parameterised ones.
            const fn fixed_code_meaning(self) -> Option<(u16, &'static str)> {
                match self {
                    $( $( Sw::$name => Some(($code, $meaning)), )* )*
                    Sw::MoreAvailable(_)
                    | Sw::RemainingRetries(_)
                    | Sw::WrongLe(_)
                    | Sw::Unknown(_) => None,
                }
            }
        }
    };
}

status_words! {
    /// The interindustry status words of ISO/IEC 7816-4 that have a variant with a fixed code.
    /// The parameterised families `61xx`, `63Cx` and `6Cxx` are not listed here.
    ISO_SW = [
        Success = 0x9000, "no error";
        WarningUnchanged = 0x6200, "warning, state unchanged, no information given";
        DataMayBeCorrupted = 0x6281, "part of returned data may be corrupted";
        EndOfFile = 0x6282, "end of file or record reached before reading Ne bytes";
        FileDeactivated = 0x6283, "selected file deactivated";
        FciFormat = 0x6284, "file control information not formatted according to ISO 7816-4";
        FileTerminated = 0x6285, "selected file in termination state";
        NoSensorInput = 0x6286, "no input data available from a sensor on the card";
        WarningChanged = 0x6300, "warning, state changed, no information given";
        FileFilledUp = 0x6381, "file filled up by the last write";
        ExecutionErrorUnchanged = 0x6400, "execution error, state unchanged";
        ImmediateResponseRequired = 0x6401, "immediate response required by the card";
        ExecutionErrorChanged = 0x6500, "execution error, state changed";
        MemoryFailure = 0x6581, "memory failure";
        WrongLength = 0x6700, "wrong length";
        ClaFunctionNotSupported = 0x6800, "functions in CLA not supported";
        LogicalChannelNotSupported = 0x6881, "logical channel not supported";
        SecureMessagingNotSupported = 0x6882, "secure messaging not supported";
        LastCommandOfChainExpected = 0x6883, "last command of the chain expected";
        ChainingNotSupported = 0x6884, "command chaining not supported";
        CommandNotAllowed = 0x6900, "command not allowed, no information given";
        IncompatibleFileStructure = 0x6981, "command incompatible with file structure";
        SecurityStatusNotSatisfied = 0x6982, "security status not satisfied";
        AuthenticationMethodBlocked = 0x6983, "authentication method blocked";
        ReferenceDataNotUsable = 0x6984, "reference data not usable";
        ConditionsOfUseNotSatisfied = 0x6985, "conditions of use not satisfied";
        NoCurrentEf = 0x6986, "command not allowed (no current EF)";
        SmDataObjectsMissing = 0x6987, "expected secure messaging data objects missing";
        SmDataObjectsIncorrect = 0x6988, "incorrect secure messaging data objects";
        IncorrectData = 0x6A80, "incorrect parameters in the command data field";
        FunctionNotSupported = 0x6A81, "function not supported";
        FileNotFound = 0x6A82, "file or application not found";
        RecordNotFound = 0x6A83, "record not found";
        NotEnoughMemory = 0x6A84, "not enough memory space in the file";
        NcInconsistentWithTlv = 0x6A85, "Nc inconsistent with TLV structure";
        IncorrectP1P2 = 0x6A86, "incorrect parameters P1-P2";
        NcInconsistentWithP1P2 = 0x6A87, "Nc inconsistent with parameters P1-P2";
        ReferencedDataNotFound = 0x6A88, "referenced data or reference data not found";
        FileAlreadyExists = 0x6A89, "file already exists";
        DfNameAlreadyExists = 0x6A8A, "DF name already exists";
        WrongP1P2 = 0x6B00, "wrong parameters P1-P2";
        InsNotSupported = 0x6D00, "instruction code not supported or invalid";
        ClaNotSupported = 0x6E00, "class not supported";
        NoPreciseDiagnosis = 0x6F00,
            "no precise diagnosis (on jCardSim: uncaught exception in the applet)";
    ];

    /// The status words of the simkit credit module (range `9Cxx`), as the applet's constants
    /// file must define them.
    CREDIT_SW = [
        ReloadAmountOutOfRange = 0x9C01, "reload amount outside the module's allowed range";
        DifferentReloadPending = 0x9C02, "a different reload is pending";
        NoReloadPending = 0x9C03, "no reload is pending";
        GrantAlreadyApplied = 0x9C04, "grant already applied; nothing changed";
        TransactionOutOfWindow = 0x9C05,
            "transaction number outside the window (registered as fraud)";
        GrantExceedsLimits = 0x9C06, "grant exceeds the request or the upper limit";
        InsufficientBalance = 0x9C07, "balance insufficient for the debit";
        ModuleBlocked = 0x9C08, "module blocked";
        LimitUpdateReplayed = 0x9C09,
            "limit update not newer than the last one (registered as fraud)";
        MessageMismatch = 0x9C0A,
            "message version, type, algorithm or module id does not match";
        InvalidLimits = 0x9C0B, "limits are inconsistent";
        CounterExhausted = 0x9C0C, "transaction number exhausted; module blocked";
        PersonalisationIncomplete = 0x9C0D, "personalisation incomplete";
    ];

    /// The status words of the simkit backup store (range `9Dxx`), as the applet's constants
    /// file must define them.
    BACKUP_SW = [
        NoSession = 0x9D01, "no backup session open";
        CapacityExceeded = 0x9D02, "store capacity exceeded; previous generation kept";
        DigestMismatch = 0x9D03, "record data does not match its declared SHA-256";
        SessionState = 0x9D04, "command not allowed in the current session state";
        StoreEmpty = 0x9D05, "no backup generation stored";
        TooManyRecords = 0x9D06, "record table full";
        PasscodeNotSet = 0x9D07, "passcode not set";
        RecordIncomplete = 0x9D08, "record data shorter than declared";
        TableMismatch = 0x9D09, "staging table does not match the expected digest; session ended";
    ];
}

impl Sw {
    /// The status word for SW1-SW2 given as one `u16` (SW1 in the high byte).
    pub const fn from_u16(sw: u16) -> Sw {
        let [sw1, sw2] = sw.to_be_bytes();
        match sw1 {
            0x61 => return Sw::MoreAvailable(sw2),
            0x6C => return Sw::WrongLe(sw2),
            0x63 if sw2 & 0xF0 == 0xC0 => return Sw::RemainingRetries(sw2 & 0x0F),
            _ => {}
        }
        match Sw::fixed_from_u16(sw) {
            Some(known) => known,
            None => Sw::Unknown(sw),
        }
    }

    /// The status word for the two trailer bytes SW1 and SW2.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Sw {
        Sw::from_u16(u16::from_be_bytes([sw1, sw2]))
    }

    /// SW1-SW2 as one `u16` (SW1 in the high byte). `RemainingRetries` keeps only the low
    /// nibble of its count.
    pub const fn to_u16(self) -> u16 {
        match self {
            Sw::MoreAvailable(n) => 0x6100 | n as u16,
            Sw::RemainingRetries(n) => 0x63C0 | (n & 0x0F) as u16,
            Sw::WrongLe(n) => 0x6C00 | n as u16,
            Sw::Unknown(sw) => sw,
            fixed => match fixed.fixed_code_meaning() {
                Some((code, _)) => code,
                // Unreachable: every other variant has a fixed code.
                None => 0x6F00,
            },
        }
    }

    /// The two trailer bytes `[SW1, SW2]`.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// Whether the command succeeded: `9000`, or `61xx` (success with more data waiting).
    pub const fn is_success(self) -> bool {
        matches!(self, Sw::Success | Sw::MoreAvailable(_))
    }

    /// Whether this is a warning (`62xx` or `63xx`, which includes `63Cx`).
    pub const fn is_warning(self) -> bool {
        matches!(self.to_u16() >> 8, 0x62 | 0x63)
    }

    /// What the status word means, without the hex digits. Parameterised variants include
    /// their number (in decimal), e.g. "verification failed, 2 retries left"; unknown codes
    /// get the meaning of their class if ISO 7816-4 gives one (e.g. "69xx command not
    /// allowed") or "unknown status word".
    pub fn meaning(&self) -> Cow<'static, str> {
        match *self {
            Sw::MoreAvailable(n) => Cow::Owned(format!("{} bytes still available", short_len(n))),
            Sw::RemainingRetries(n) => {
                Cow::Owned(format!("verification failed, {} retries left", n & 0x0F))
            }
            Sw::WrongLe(n) => Cow::Owned(format!("wrong Le, {} bytes available", short_len(n))),
            Sw::Unknown(sw) => Cow::Borrowed(class_meaning(sw)),
            fixed => match fixed.fixed_code_meaning() {
                Some((_, meaning)) => Cow::Borrowed(meaning),
                None => Cow::Borrowed("unknown status word"),
            },
        }
    }
}

/// A one-byte length where `00` stands for 256 (SW2 of `61xx` and `6Cxx`).
fn short_len(n: u8) -> u16 {
    if n == 0 { 256 } else { u16::from(n) }
}

/// The meaning of a status word without a variant of its own, from its class (SW1).
fn class_meaning(sw: u16) -> &'static str {
    match sw >> 8 {
        0x62 => "62xx warning, state unchanged",
        0x63 => "63xx warning, state changed",
        0x64 => "64xx execution error, state unchanged",
        0x65 => "65xx execution error, state changed",
        0x66 => "66xx security-related issue",
        0x68 => "68xx function in CLA not supported",
        0x69 => "69xx command not allowed",
        0x6A => "6Axx wrong parameters",
        0x9C => "9Cxx unknown credit-module status word",
        0x9D => "9Dxx unknown backup-store status word",
        _ => "unknown status word",
    }
}

impl fmt::Display for Sw {
    /// Four upper-case hex digits, a space and the meaning: `6982 security status not
    /// satisfied`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} {}", self.to_u16(), self.meaning())
    }
}

impl std::error::Error for Sw {}

impl From<u16> for Sw {
    fn from(sw: u16) -> Sw {
        Sw::from_u16(sw)
    }
}

impl From<Sw> for u16 {
    fn from(sw: Sw) -> u16 {
        sw.to_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u16_round_trips() {
        for x in 0..=u16::MAX {
            let sw = Sw::from_u16(x);
            assert_eq!(sw.to_u16(), x, "{x:04X} -> {sw:?}");
            let [sw1, sw2] = x.to_be_bytes();
            assert_eq!(Sw::from_bytes(sw1, sw2), sw);
            assert_eq!(sw.to_bytes(), [sw1, sw2]);
        }
    }

    #[test]
    fn every_table_entry_has_its_own_variant() {
        let mut codes = Vec::new();
        for entry in ISO_SW.iter().chain(CREDIT_SW).chain(BACKUP_SW) {
            let sw = Sw::from_u16(entry.code);
            assert!(!matches!(sw, Sw::Unknown(_)), "{:04X}", entry.code);
            assert_eq!(format!("{sw:?}"), entry.name);
            assert_eq!(sw.meaning(), entry.meaning);
            assert_eq!(
                sw.to_string(),
                format!("{:04X} {}", entry.code, entry.meaning)
            );
            codes.push(entry.code);
        }
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "duplicate code in the tables");
        assert_eq!(CREDIT_SW.len(), 13);
        assert_eq!(BACKUP_SW.len(), 9);
        assert!(CREDIT_SW.iter().all(|e| e.code >> 8 == 0x9C));
        assert!(BACKUP_SW.iter().all(|e| e.code >> 8 == 0x9D));
    }

    #[test]
    fn listed_interindustry_values_are_known() {
        let listed: &[u16] = &[
            0x9000, 0x6200, 0x6281, 0x6282, 0x6283, 0x6284, 0x6285, 0x6286, 0x6300, 0x6381, 0x6400,
            0x6401, 0x6500, 0x6581, 0x6700, 0x6800, 0x6881, 0x6882, 0x6883, 0x6884, 0x6900, 0x6981,
            0x6982, 0x6983, 0x6984, 0x6985, 0x6986, 0x6987, 0x6988, 0x6A80, 0x6A81, 0x6A82, 0x6A83,
            0x6A84, 0x6A85, 0x6A86, 0x6A87, 0x6A88, 0x6A89, 0x6A8A, 0x6B00, 0x6D00, 0x6E00, 0x6F00,
        ];
        for &code in listed {
            assert!(!matches!(Sw::from_u16(code), Sw::Unknown(_)), "{code:04X}");
        }
        for x in 0..=0xFF_u16 {
            assert!(!matches!(Sw::from_u16(0x6100 | x), Sw::Unknown(_)));
            assert!(!matches!(Sw::from_u16(0x6C00 | x), Sw::Unknown(_)));
        }
        for x in 0..=0x0F_u16 {
            assert_eq!(Sw::from_u16(0x63C0 | x), Sw::RemainingRetries(x as u8));
        }
    }

    #[test]
    fn pinned_display_strings() {
        let cases: &[(u16, &str)] = &[
            (0x9000, "9000 no error"),
            (0x6982, "6982 security status not satisfied"),
            (0x6110, "6110 16 bytes still available"),
            (0x6100, "6100 256 bytes still available"),
            (0x63C2, "63C2 verification failed, 2 retries left"),
            (0x63C0, "63C0 verification failed, 0 retries left"),
            (0x6C10, "6C10 wrong Le, 16 bytes available"),
            (0x6C00, "6C00 wrong Le, 256 bytes available"),
            (
                0x6F00,
                "6F00 no precise diagnosis (on jCardSim: uncaught exception in the applet)",
            ),
            (0x9C07, "9C07 balance insufficient for the debit"),
            (
                0x9D02,
                "9D02 store capacity exceeded; previous generation kept",
            ),
            (0x9F12, "9F12 unknown status word"),
            (0x6287, "6287 62xx warning, state unchanged"),
            (0x6310, "6310 63xx warning, state changed"),
            (0x6402, "6402 64xx execution error, state unchanged"),
            (0x6501, "6501 65xx execution error, state changed"),
            (0x6885, "6885 68xx function in CLA not supported"),
            (0x6989, "6989 69xx command not allowed"),
            (0x6A00, "6A00 6Axx wrong parameters"),
            (0x9C0E, "9C0E 9Cxx unknown credit-module status word"),
            (0x9D00, "9D00 9Dxx unknown backup-store status word"),
        ];
        for &(code, text) in cases {
            assert_eq!(Sw::from_u16(code).to_string(), text);
        }
    }

    #[test]
    fn classification() {
        assert!(Sw::Success.is_success());
        assert!(Sw::MoreAvailable(0).is_success());
        assert!(!Sw::WrongLe(4).is_success());
        assert!(Sw::from_u16(0x6281).is_warning());
        assert!(Sw::RemainingRetries(3).is_warning());
        assert!(Sw::from_u16(0x6300).is_warning());
        assert!(!Sw::from_u16(0x6982).is_warning());
        assert!(!Sw::Success.is_warning());
    }

    #[test]
    fn is_an_error_source() {
        let err: Box<dyn std::error::Error> = Box::new(Sw::from_u16(0x6982));
        assert_eq!(err.to_string(), "6982 security status not satisfied");
    }
}
