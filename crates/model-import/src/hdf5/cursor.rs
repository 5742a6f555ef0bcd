//! A bounds-checked little-endian reader over the HDF5 file held in memory.
//!
//! Every read checks the remaining length first and reports what it was reading and where,
//! so a truncated or corrupt file becomes an [`ErrorKind`], never a panic.

use crate::error::ErrorKind;

/// The file's address and length widths from the superblock, and its base address.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    /// Size of offsets (addresses) in bytes: 2, 4 or 8.
    pub(super) offset: usize,
    /// Size of lengths in bytes: 2, 4 or 8.
    pub(super) length: usize,
    /// Absolute position of address 0.
    pub(super) base: u64,
}

/// A position in a byte slice; reads advance it.
#[derive(Debug, Clone)]
pub(super) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What is being read, for error messages (`object header at 0x60`).
    what: &'static str,
    /// Absolute file position of `buf[0]`, for error messages.
    origin: u64,
}

pub(super) fn truncated(what: &str, at: u64, need: usize) -> ErrorKind {
    ErrorKind::Truncated(format!(
        "{what}: {need} bytes needed at 0x{at:x} run past the end of the data"
    ))
}

pub(super) fn malformed(msg: impl Into<String>) -> ErrorKind {
    ErrorKind::Malformed(msg.into())
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, which sits at absolute file position `origin`.
    pub(super) fn new(buf: &'a [u8], origin: u64, what: &'static str) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            what,
            origin,
        }
    }

    /// A cursor over the whole file starting at absolute position `at`.
    pub(super) fn at(file: &'a [u8], at: u64, what: &'static str) -> Result<Cursor<'a>, ErrorKind> {
        let start = usize::try_from(at)
            .ok()
            .filter(|s| *s <= file.len())
            .ok_or_else(|| {
                ErrorKind::Truncated(format!(
                    "{what} at 0x{at:x} lies beyond the end of the file ({} bytes)",
                    file.len()
                ))
            })?;
        Ok(Cursor {
            buf: &file[start..],
            pos: 0,
            what,
            origin: at,
        })
    }

    /// Absolute file position of the next byte.
    pub(super) fn position(&self) -> u64 {
        self.origin + self.pos as u64
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ErrorKind> {
        if n > self.remaining() {
            return Err(truncated(self.what, self.position(), n));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<(), ErrorKind> {
        self.bytes(n).map(|_| ())
    }

    pub(super) fn u8(&mut self) -> Result<u8, ErrorKind> {
        Ok(self.bytes(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, ErrorKind> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self) -> Result<u32, ErrorKind> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An unsigned little-endian integer of `n` bytes (n ≤ 8).
    pub(super) fn uint(&mut self, n: usize) -> Result<u64, ErrorKind> {
        if n > 8 {
            return Err(malformed(format!("{}: integer of {n} bytes", self.what)));
        }
        let b = self.bytes(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte)))
    }

    /// An address (size of offsets); `None` for the undefined address (all bits set).
    pub(super) fn address(&mut self, sizes: &Sizes) -> Result<Option<u64>, ErrorKind> {
        let raw = self.uint(sizes.offset)?;
        let undefined = if sizes.offset == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * sizes.offset)) - 1
        };
        if raw == undefined {
            return Ok(None);
        }
        raw.checked_add(sizes.base).map(Some).ok_or_else(|| {
            malformed(format!(
                "{}: address 0x{raw:x} overflows with base 0x{:x}",
                self.what, sizes.base
            ))
        })
    }

    /// A length (size of lengths).
    pub(super) fn length(&mut self, sizes: &Sizes) -> Result<u64, ErrorKind> {
        self.uint(sizes.length)
    }

    /// Checks a 4-byte signature.
    pub(super) fn signature(&mut self, sig: &[u8; 4]) -> Result<(), ErrorKind> {
        let at = self.position();
        let got = self.bytes(4)?;
        if got != sig {
            return Err(malformed(format!(
                "{} at 0x{at:x}: expected signature {:?}, found {:?}",
                self.what,
                String::from_utf8_lossy(sig),
                String::from_utf8_lossy(got)
            )));
        }
        Ok(())
    }
}

/// The slice `[at, at + len)` of the file, or a `Truncated` error naming `what`.
pub(super) fn slice<'a>(
    file: &'a [u8],
    at: u64,
    len: u64,
    what: &str,
) -> Result<&'a [u8], ErrorKind> {
    let end = at.checked_add(len);
    match (
        usize::try_from(at),
        end.and_then(|e| usize::try_from(e).ok()),
    ) {
        (Ok(s), Some(e)) if e <= file.len() => Ok(&file[s..e]),
        _ => Err(ErrorKind::Truncated(format!(
            "{what}: {len} bytes at 0x{at:x} run past the end of the file ({} bytes)",
            file.len()
        ))),
    }
}
