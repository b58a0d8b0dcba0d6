//! A bounded structural check of a Parquet file's footer (its Thrift compact-protocol
//! `FileMetaData`) before the Parquet decoder reads it.
//!
//! The decoder trusts the element counts a footer claims: a corrupt or hostile 1.8 KB file
//! (found by the `views` fuzz target) made it loop for about 1.5 s of CPU skipping elements
//! that are not there. This walk visits every value of the footer once, refuses any
//! collection that claims more elements than bytes remain (every element of the compact
//! protocol takes at least one byte), unknown type ids and nesting deeper than
//! [`MAX_DEPTH`], so its cost, and that of a footer that passes it, follows the footer's
//! length.

/// Nesting limit of structs and collections (Parquet's own footers nest about six deep).
pub const MAX_DEPTH: usize = 64;

/// Why a footer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterError(pub String);

impl std::fmt::Display for FooterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks the footer of the Parquet file `file` (the whole file's bytes). Files too short to
/// hold a footer pass: the decoder names those itself.
pub fn check(file: &[u8]) -> Result<(), FooterError> {
    let n = file.len();
    if n < 12 || &file[n - 4..] != b"PAR1" {
        return Ok(());
    }
    let len = u32::from_le_bytes([file[n - 8], file[n - 7], file[n - 6], file[n - 5]]) as usize;
    let Some(start) = (n - 8).checked_sub(len) else {
        return Ok(());
    };
    let mut walk = Walk {
        bytes: &file[start..n - 8],
        at: 0,
    };
    walk.value(STRUCT, 0)
}

const STRUCT: u8 = 12;

struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Walk<'_> {
    fn fail(&self, what: &str) -> FooterError {
        FooterError(format!("corrupt footer at byte {}: {what}", self.at))
    }

    fn byte(&mut self) -> Result<u8, FooterError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| self.fail("ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, FooterError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift < 64 {
                value |= u64::from(b & 0x7f) << shift;
            }
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.fail("a varint longer than ten bytes"))
    }

    fn skip(&mut self, n: u64) -> Result<(), FooterError> {
        let remaining = (self.bytes.len() - self.at) as u64;
        if n > remaining {
            return Err(self.fail(&format!("{n} bytes claimed, {remaining} left")));
        }
        self.at += n as usize;
        Ok(())
    }

    /// Elements claimed by a collection: at most one per remaining byte.
    fn count(&mut self, n: u64) -> Result<u64, FooterError> {
        let remaining = (self.bytes.len() - self.at) as u64;
        if n > remaining {
            return Err(self.fail(&format!("{n} elements claimed, {remaining} bytes left")));
        }
        Ok(n)
    }

    /// One value of compact type `kind`. Booleans inside a struct live in the field header
    /// (`in_header`); inside collections they take a byte.
    fn value(&mut self, kind: u8, depth: usize) -> Result<(), FooterError> {
        if depth > MAX_DEPTH {
            return Err(self.fail("nested too deep"));
        }
        match kind {
            1..=3 => self.byte().map(|_| ()),
            4..=6 => self.varint().map(|_| ()),
            7 => self.skip(8),
            8 => {
                let len = self.varint()?;
                self.skip(len)
            }
            9 | 10 => {
                let header = self.byte()?;
                let short = u64::from(header >> 4);
                let n = if short == 15 { self.varint()? } else { short };
                let element = header & 0x0f;
                for _ in 0..self.count(n)? {
                    self.value(element, depth + 1)?;
                }
                Ok(())
            }
            11 => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                for _ in 0..self.count(n)? {
                    self.value(types >> 4, depth + 1)?;
                    self.value(types & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            STRUCT => loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                if header >> 4 == 0 {
                    self.varint()?; // a long-form field id (zigzag i16)
                }
                match header & 0x0f {
                    1 | 2 => {} // a boolean field: its value is the type
                    field => self.value(field, depth + 1)?,
                }
            },
            other => Err(self.fail(&format!("unknown type id {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(footer: &[u8]) -> Vec<u8> {
        let mut f = b"PAR1".to_vec();
        f.extend_from_slice(footer);
        f.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        f.extend_from_slice(b"PAR1");
        f
    }

    #[test]
    fn footers_the_parquet_writer_makes_pass() {
        use arrow::array::{Int64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
            ],
        )
        .unwrap();
        let bytes = crate::parquet_file::encode_parquet(schema, &[batch], "t").unwrap();
        assert_eq!(check(&bytes), Ok(()));
    }

    #[test]
    fn a_collection_claiming_more_elements_than_bytes_is_refused() {
        // A struct whose field 1 is a list of i32 claiming 2^31 elements.
        let footer = [0x19, 0xf5, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00];
        let err = check(&file(&footer)).unwrap_err();
        assert!(err.0.contains("2147483648 elements claimed"), "{err}");
    }

    #[test]
    fn unknown_types_deep_nesting_and_short_footers_are_refused() {
        assert!(check(&file(&[0x1d, 0x00]))
            .unwrap_err()
            .0
            .contains("type id 13"));
        let deep: Vec<u8> = std::iter::repeat_n(0x1c, 100).collect();
        assert!(check(&file(&deep))
            .unwrap_err()
            .0
            .contains("nested too deep"));
        assert!(check(&file(&[0x18, 0x05, b'a']))
            .unwrap_err()
            .0
            .contains("5 bytes claimed"));
        // Not Parquet at all: left to the decoder, which names it.
        assert_eq!(check(b"not parquet"), Ok(()));
    }
}
