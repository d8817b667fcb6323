//! `decode: base64` on an object or a `jmesPath` entry (an extension of ASCP's syntax): the file
//! holds the decoded bytes instead of the text. The same rule decodes the `b64decode` filter of
//! templates.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// How a value is turned into a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decode {
    /// Standard base64 (RFC 4648 section 4), padded or not; ASCII whitespace (the line breaks
    /// `base64` writes every 76 characters) is ignored.
    Base64,
}

impl FromStr for Decode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "base64" => Ok(Self::Base64),
            other => Err(format!(
                "{other:?} is not known; the only decoding is base64 (decode: base64), or \
                 leave decode out to write the value as it is"
            )),
        }
    }
}

impl fmt::Display for Decode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Base64 => "base64",
        })
    }
}

impl Decode {
    /// The decoded bytes, or `None` when `value` is not in this encoding. Never says why: the
    /// reason could quote the value.
    pub fn apply(self, value: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Base64 => base64_decode(value),
        }
    }
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with or without padding, ASCII whitespace ignored.
pub fn base64_decode(value: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT.decode(compact).ok()
}

/// Standard base64, padded.
pub fn base64_encode(value: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_padded_unpadded_and_wrapped_base64() {
        assert_eq!(base64_decode(b"aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode(b"aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode(b"aGVs\nbG8=\n"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode(b""), Some(Vec::new()));
        assert_eq!(base64_decode(b"not base64!"), None);
        assert_eq!(base64_decode(b"aGVsbG8-"), None);
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(
            base64_decode(base64_encode(&[0, 255, 128]).as_bytes()),
            Some(vec![0, 255, 128])
        );
    }

    #[test]
    fn only_base64_is_known() {
        assert_eq!("base64".parse::<Decode>(), Ok(Decode::Base64));
        let err = "Base64".parse::<Decode>().unwrap_err();
        assert!(err.contains("only decoding is base64"), "{err}");
        assert_eq!(Decode::Base64.to_string(), "base64");
    }
}
