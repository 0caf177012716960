//! Transfer plans: how one record's data is cut into WRITE DATA and READ DATA APDUs.
//!
//! The plan depends only on the record length and on what the reader and the card can carry
//! ([`Transport`]); it holds offsets and lengths, never data, so it is computed before a byte is
//! read from disk and drives the progress bar (spec §7).
//!
//! Chunk sizes minimise the number of APDUs, the cost that dominates card transfers (each APDU is
//! a round trip through reader, card OS and applet):
//! - **extended length available**: one extended APDU per chunk, each carrying
//!   `command_limit − 4` record bytes after its 4-byte offset; reads ask for `response_limit`
//!   bytes per APDU;
//! - **short APDUs only**: the whole record is one logical WRITE DATA (offset 0) sent as one ISO
//!   7816-4 command chain of full segments, so the 4-byte offset is paid once per record rather
//!   than once per APDU (`⌈(len + 4) / 255⌉` APDUs instead of `⌈len / 251⌉`); a record whose
//!   `len + 4` fits one segment goes unchained. Reads are never chained (ISO 7816-4 has no
//!   response chaining): each READ DATA asks for 256 bytes (Le `00`), so no `61xx` / GET RESPONSE
//!   round trip is needed.

use super::BackupError;
use super::commands::BackupStatus;
use super::manifest::ManifestEntry;

/// Bytes of WRITE DATA's data field taken by the record offset.
pub const OFFSET_LEN: usize = 4;
/// Largest data field of a short command APDU.
pub const SHORT_MAX_COMMAND_DATA: usize = 255;
/// Largest response data of a short APDU (Le `00`).
pub const SHORT_MAX_RESPONSE_DATA: usize = 256;
/// Largest data field of an extended command APDU.
pub const EXTENDED_MAX_COMMAND_DATA: usize = 65_535;
/// Largest response data of an extended APDU (Le `0000`).
pub const EXTENDED_MAX_RESPONSE_DATA: usize = 65_536;
/// Smallest command data limit the applet can work with: a BEGIN RECORD with a 64-byte name.
pub const MIN_COMMAND_DATA: usize = ManifestEntry::MAX_ENCODED_LEN;
/// Smallest response limit the applet can work with: a GET MANIFEST page holding its 8-byte
/// header and one entry with a 64-byte name.
pub const MIN_RESPONSE_DATA: usize = 8 + ManifestEntry::MAX_ENCODED_LEN;

/// What one APDU exchange can carry between this host and the card: the reader's limits combined
/// with the card's (see [`Transport::negotiate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// True when both the reader and the card accept extended-length APDUs.
    pub extended_length: bool,
    /// Largest command data field (Nc) one APDU may carry: 255 for short APDUs, up to 65 535
    /// extended.
    pub max_command_data: usize,
    /// Largest response data (Ne) one APDU may return: 256 short, up to 65 536 extended.
    pub max_response_data: usize,
}

impl Transport {
    /// Short APDUs only, at their full size: what every reader and card supports.
    pub const SHORT: Transport = Transport {
        extended_length: false,
        max_command_data: SHORT_MAX_COMMAND_DATA,
        max_response_data: SHORT_MAX_RESPONSE_DATA,
    };

    /// Extended-length APDUs with the given limits.
    #[must_use]
    pub const fn extended(max_command_data: usize, max_response_data: usize) -> Self {
        Self {
            extended_length: true,
            max_command_data,
            max_response_data,
        }
    }

    /// This reader's limits narrowed to what the card reports in GET STATUS (spec §5.2: its
    /// largest command data and response data per APDU).
    #[must_use]
    pub fn negotiate(self, card: &BackupStatus) -> Transport {
        let max_command_data = self
            .max_command_data
            .min(usize::from(card.max_command_data));
        let max_response_data = self
            .max_response_data
            .min(usize::from(card.max_response_data));
        let extended_length = self.extended_length
            && (max_command_data > SHORT_MAX_COMMAND_DATA
                || max_response_data > SHORT_MAX_RESPONSE_DATA);
        Transport {
            extended_length,
            max_command_data,
            max_response_data,
        }
    }

    /// The command data limit actually usable: `max_command_data` capped at what the APDU form
    /// allows (255 short, 65 535 extended).
    #[must_use]
    pub fn command_limit(&self) -> usize {
        let cap = if self.extended_length {
            EXTENDED_MAX_COMMAND_DATA
        } else {
            SHORT_MAX_COMMAND_DATA
        };
        self.max_command_data.min(cap)
    }

    /// The response data limit actually usable: `max_response_data` capped at 256 short or
    /// 65 536 extended.
    #[must_use]
    pub fn response_limit(&self) -> usize {
        let cap = if self.extended_length {
            EXTENDED_MAX_RESPONSE_DATA
        } else {
            SHORT_MAX_RESPONSE_DATA
        };
        self.max_response_data.min(cap)
    }

    /// Checks that the applet can be driven at all through this transport.
    ///
    /// # Errors
    /// [`BackupError::InvalidTransport`] when the limits are below [`MIN_COMMAND_DATA`] or
    /// [`MIN_RESPONSE_DATA`].
    pub fn validate(&self) -> Result<(), BackupError> {
        if self.command_limit() < MIN_COMMAND_DATA {
            return Err(BackupError::InvalidTransport(
                "command data limit below 102 bytes",
            ));
        }
        if self.response_limit() < MIN_RESPONSE_DATA {
            return Err(BackupError::InvalidTransport(
                "response data limit below 110 bytes",
            ));
        }
        Ok(())
    }
}

impl Default for Transport {
    fn default() -> Self {
        Transport::SHORT
    }
}

/// How one WRITE DATA chunk travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFraming {
    /// One short APDU (`4 + len ≤ 255`).
    Short,
    /// One extended-length APDU.
    Extended,
    /// One command chain of short APDUs: the logical data field `offset ‖ bytes` cut into
    /// segments of `segment_len` bytes (the last one shorter), CLA `0x90` on all but the last.
    Chained {
        /// Data bytes per segment (all but the last segment carry exactly this many).
        segment_len: usize,
    },
}

/// One logical WRITE DATA command: record bytes `offset .. offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteChunk {
    /// Offset of the first record byte.
    pub offset: u32,
    /// Number of record bytes.
    pub len: u32,
    /// How the command travels.
    pub framing: WriteFraming,
}

impl WriteChunk {
    /// Length of the logical data field: offset plus record bytes.
    #[must_use]
    pub fn data_len(&self) -> usize {
        OFFSET_LEN.saturating_add(usize::try_from(self.len).unwrap_or(usize::MAX))
    }

    /// Number of APDUs this chunk takes.
    #[must_use]
    pub fn apdu_count(&self) -> usize {
        match self.framing {
            WriteFraming::Short | WriteFraming::Extended => 1,
            WriteFraming::Chained { segment_len } => self.data_len().div_ceil(segment_len.max(1)),
        }
    }

    /// The record byte range this chunk covers.
    #[must_use]
    pub fn range(&self) -> std::ops::Range<u64> {
        u64::from(self.offset)..u64::from(self.offset) + u64::from(self.len)
    }
}

/// One READ DATA command: asks for record bytes `offset .. offset + len` with Le = `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadChunk {
    /// Offset of the first record byte.
    pub offset: u32,
    /// Number of bytes asked for (Ne); the card returns exactly this many.
    pub len: u32,
}

impl ReadChunk {
    /// True when Le needs the extended form (more than 256 bytes).
    #[must_use]
    pub fn extended(&self) -> bool {
        usize::try_from(self.len).map_or(true, |n| n > SHORT_MAX_RESPONSE_DATA)
    }

    /// The record byte range this chunk covers.
    #[must_use]
    pub fn range(&self) -> std::ops::Range<u64> {
        u64::from(self.offset)..u64::from(self.offset) + u64::from(self.len)
    }
}

/// Cuts `0..total` into consecutive pieces of at most `step` bytes.
fn pieces(total: u32, step: usize) -> impl Iterator<Item = (u32, u32)> {
    let step = u32::try_from(step).unwrap_or(u32::MAX).max(1);
    let mut offset = 0u32;
    std::iter::from_fn(move || {
        if offset >= total {
            return None;
        }
        let len = step.min(total - offset);
        let piece = (offset, len);
        offset += len;
        Some(piece)
    })
}

/// The WRITE DATA chunks for a record of `record_len` bytes, in order (empty for an empty
/// record: BEGIN RECORD then END RECORD).
///
/// # Errors
/// [`BackupError::InvalidTransport`] when `transport` fails [`Transport::validate`].
pub fn write_plan(record_len: u32, transport: &Transport) -> Result<Vec<WriteChunk>, BackupError> {
    transport.validate()?;
    let limit = transport.command_limit();
    if transport.extended_length && limit > SHORT_MAX_COMMAND_DATA {
        let chunks = pieces(record_len, limit - OFFSET_LEN)
            .map(|(offset, len)| {
                let short =
                    usize::try_from(len).is_ok_and(|n| n + OFFSET_LEN <= SHORT_MAX_COMMAND_DATA);
                let framing = if short {
                    WriteFraming::Short
                } else {
                    WriteFraming::Extended
                };
                WriteChunk {
                    offset,
                    len,
                    framing,
                }
            })
            .collect();
        return Ok(chunks);
    }
    if record_len == 0 {
        return Ok(Vec::new());
    }
    let chunk = WriteChunk {
        offset: 0,
        len: record_len,
        framing: WriteFraming::Short,
    };
    let framing = if chunk.data_len() <= limit {
        WriteFraming::Short
    } else {
        WriteFraming::Chained { segment_len: limit }
    };
    Ok(vec![WriteChunk { framing, ..chunk }])
}

/// The READ DATA commands for a record of `record_len` bytes, in order.
///
/// # Errors
/// [`BackupError::InvalidTransport`] when `transport` fails [`Transport::validate`].
pub fn read_plan(record_len: u32, transport: &Transport) -> Result<Vec<ReadChunk>, BackupError> {
    transport.validate()?;
    Ok(pieces(record_len, transport.response_limit())
        .map(|(offset, len)| ReadChunk { offset, len })
        .collect())
}

/// Total APDUs of a write plan.
#[must_use]
pub fn write_apdu_count(plan: &[WriteChunk]) -> usize {
    plan.iter().map(WriteChunk::apdu_count).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_transport_chains_the_whole_record() {
        assert_eq!(write_plan(0, &Transport::SHORT).unwrap(), vec![]);
        assert_eq!(
            write_plan(251, &Transport::SHORT).unwrap(),
            vec![WriteChunk {
                offset: 0,
                len: 251,
                framing: WriteFraming::Short
            }]
        );
        let plan = write_plan(252, &Transport::SHORT).unwrap();
        assert_eq!(
            plan,
            vec![WriteChunk {
                offset: 0,
                len: 252,
                framing: WriteFraming::Chained { segment_len: 255 }
            }]
        );
        assert_eq!(write_apdu_count(&plan), 2);
        // 300 000 bytes + 4 offset bytes in 255-byte segments.
        assert_eq!(
            write_apdu_count(&write_plan(300_000, &Transport::SHORT).unwrap()),
            1177
        );
    }

    #[test]
    fn extended_transport_sends_full_extended_apdus() {
        let t = Transport::extended(32_767, 32_767);
        let plan = write_plan(70_000, &t).unwrap();
        assert_eq!(
            plan,
            vec![
                WriteChunk {
                    offset: 0,
                    len: 32_763,
                    framing: WriteFraming::Extended
                },
                WriteChunk {
                    offset: 32_763,
                    len: 32_763,
                    framing: WriteFraming::Extended
                },
                WriteChunk {
                    offset: 65_526,
                    len: 4_474,
                    framing: WriteFraming::Extended
                },
            ]
        );
        let small = write_plan(10, &t).unwrap();
        assert_eq!(
            small,
            vec![WriteChunk {
                offset: 0,
                len: 10,
                framing: WriteFraming::Short
            }]
        );
    }

    #[test]
    fn read_plans_use_matching_le() {
        assert_eq!(
            read_plan(600, &Transport::SHORT).unwrap(),
            vec![
                ReadChunk {
                    offset: 0,
                    len: 256
                },
                ReadChunk {
                    offset: 256,
                    len: 256
                },
                ReadChunk {
                    offset: 512,
                    len: 88
                },
            ]
        );
        let ext = read_plan(40_000, &Transport::extended(65_535, 65_536)).unwrap();
        assert_eq!(
            ext,
            vec![ReadChunk {
                offset: 0,
                len: 40_000
            }]
        );
        assert!(ext[0].extended());
        assert!(read_plan(0, &Transport::SHORT).unwrap().is_empty());
    }

    #[test]
    fn transports_too_small_for_the_applet_are_refused() {
        let tiny = Transport {
            extended_length: false,
            max_command_data: 64,
            max_response_data: 256,
        };
        assert!(matches!(
            write_plan(10, &tiny),
            Err(BackupError::InvalidTransport(_))
        ));
        let tiny = Transport {
            extended_length: false,
            max_command_data: 255,
            max_response_data: 100,
        };
        assert!(matches!(
            read_plan(10, &tiny),
            Err(BackupError::InvalidTransport(_))
        ));
        // A short transport claiming more than 255 bytes is capped, not trusted.
        let loose = Transport {
            extended_length: false,
            max_command_data: 1000,
            max_response_data: 1000,
        };
        assert_eq!(loose.command_limit(), 255);
        assert_eq!(loose.response_limit(), 256);
    }
}
