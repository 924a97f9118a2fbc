//! The one error type of the crate.

use core::fmt;

/// Why a buffer could not be viewed as a given header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the fixed header, or than a length field says.
    Truncated,
    /// A field holds a value the format does not allow (bad option length,
    /// unsupported hardware type, too many extension headers, ...).
    Malformed,
    /// The IP version nibble is wrong for the view.
    BadVersion,
    /// A header length field is too small or points past the buffer.
    BadHeaderLen,
    /// A total/payload length field is too small or points past the buffer.
    BadTotalLen,
    /// A checksum did not verify.
    Checksum,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Truncated => "buffer truncated",
            Error::Malformed => "malformed header",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLen => "bad header length",
            Error::BadTotalLen => "bad total length",
            Error::Checksum => "bad checksum",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// Result with the crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_distinct_per_variant() {
        let all = [
            Error::Truncated,
            Error::Malformed,
            Error::BadVersion,
            Error::BadHeaderLen,
            Error::BadTotalLen,
            Error::Checksum,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.to_string(), b.to_string());
            }
        }
        let e: &dyn std::error::Error = &Error::Checksum;
        assert_eq!(e.to_string(), "bad checksum");
    }
}
