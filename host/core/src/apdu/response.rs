//! Response APDUs: response data followed by the status word SW1-SW2.
//!
//! This module owns the split of a response into data and [`Sw`]. It must not interpret the
//! data or act on the status word (GET RESPONSE loops belong to the card-access layer).

use std::fmt;

use super::ApduError;
use super::command::MAX_EXTENDED_LE;
use crate::hexutil::to_hex_spaced;
use crate::status::Sw;

/// A response APDU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Response {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// The status word.
    pub sw: Sw,
}

impl Response {
    /// A response with the given data and status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: Sw) -> Response {
        Response {
            data: data.into(),
            sw,
        }
    }

    /// Splits response bytes into data and the last two bytes, the status word.
    ///
    /// ```
    /// # use simkit_core::{apdu::Response, status::Sw};
    /// let r = Response::parse(&[0x01, 0x02, 0x90, 0x00])?;
    /// assert_eq!((r.data.as_slice(), r.sw), (&[0x01, 0x02][..], Sw::Success));
    /// # Ok::<(), simkit_core::apdu::ApduError>(())
    /// ```
    ///
    /// # Errors
    /// [`ApduError::ResponseTooShort`] below 2 bytes; [`ApduError::ResponseTooLong`] above
    /// 65536 data bytes (the most an extended Le can ask for).
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        let Some((data, [sw1, sw2])) = bytes.split_last_chunk::<2>() else {
            return Err(ApduError::ResponseTooShort { len: bytes.len() });
        };
        if data.len() > MAX_EXTENDED_LE as usize {
            return Err(ApduError::ResponseTooLong { len: bytes.len() });
        }
        Ok(Response {
            data: data.to_vec(),
            sw: Sw::from_bytes(*sw1, *sw2),
        })
    }

    /// The response bytes: data then SW1 SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }

    /// Whether the status word is `9000`.
    pub fn is_ok(&self) -> bool {
        self.sw == Sw::Success
    }

    /// The data if the status word is `9000`, otherwise the status word as the error (`61xx`
    /// is an error here too: fetch the rest with GET RESPONSE first).
    ///
    /// # Errors
    /// The status word, if it is not `9000`.
    pub fn into_result(self) -> Result<Vec<u8>, Sw> {
        if self.is_ok() {
            Ok(self.data)
        } else {
            Err(self.sw)
        }
    }
}

impl fmt::Display for Response {
    /// Spaced upper-case hex of the data, then the status word with its meaning:
    /// `01 02 9000 no error`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.data.is_empty() {
            write!(f, "{} ", to_hex_spaced(&self.data))?;
        }
        write!(f, "{}", self.sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn parse_and_serialise() {
        let r = Response::parse(&hex!("9000")).unwrap();
        assert_eq!(r, Response::new([], Sw::Success));
        assert!(r.is_ok());
        assert_eq!(r.to_bytes(), hex!("9000"));

        let r = Response::parse(&hex!("CAFE 6982")).unwrap();
        assert_eq!(r.data, hex!("CAFE"));
        assert_eq!(r.sw, Sw::SecurityStatusNotSatisfied);
        assert!(!r.is_ok());
        assert_eq!(r.to_bytes(), hex!("CAFE 6982"));
        assert_eq!(r.to_string(), "CA FE 6982 security status not satisfied");
        assert_eq!(r.into_result(), Err(Sw::SecurityStatusNotSatisfied));

        let r = Response::parse(&hex!("01 6110")).unwrap();
        assert_eq!(r.sw, Sw::MoreAvailable(0x10));
        assert_eq!(r.into_result(), Err(Sw::MoreAvailable(0x10)));

        assert_eq!(
            Response::parse(&hex!("0102 9000")).unwrap().into_result(),
            Ok(hex!("0102").to_vec())
        );
    }

    #[test]
    fn length_errors() {
        assert_eq!(
            Response::parse(&[]).unwrap_err(),
            ApduError::ResponseTooShort { len: 0 }
        );
        assert_eq!(
            Response::parse(&[0x90]).unwrap_err().to_string(),
            "response APDU too short: 1 bytes, SW1-SW2 needs 2"
        );
        let mut max = vec![0; 65536];
        max.extend_from_slice(&hex!("9000"));
        assert_eq!(Response::parse(&max).unwrap().data.len(), 65536);
        max.insert(0, 0);
        assert_eq!(
            Response::parse(&max).unwrap_err(),
            ApduError::ResponseTooLong { len: 65539 }
        );
    }
}
