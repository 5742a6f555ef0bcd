//! A small, in-memory zip reader for `.keras` archives.
//!
//! Keras 3.15 writes its archive with Python's `zipfile.ZipFile(..., "w")`, whose default
//! is `ZIP_STORED`: members are stored, so reading them is slicing the buffer. Archives
//! re-zipped with deflate are read with `miniz_oxide`. Nothing is extracted to disk.
//!
//! Hostile input: the central directory is parsed with every offset checked; a stored
//! member must have equal declared sizes and lie inside the buffer; a deflated member's
//! declared size is bounded ([`MAX_RATIO`] × compressed size and [`MAX_INFLATED`]) and
//! inflation stops at declared size + 1 bytes, so a lying size is detected without
//! inflating a bomb; the CRC-32 of every member read is checked. Zip64, encryption and other
//! compression methods are reported as unsupported.

use std::collections::BTreeMap;

use crate::error::ErrorKind;

/// Largest uncompressed size accepted for a deflated member.
pub(super) const MAX_INFLATED: u64 = 1 << 31;
/// Largest ratio of declared uncompressed to compressed size (deflate's own limit is ~1032).
pub(super) const MAX_RATIO: u64 = 1100;

const EOCD_SIG: u32 = 0x0605_4b50;
const CDH_SIG: u32 = 0x0201_4b50;
const LFH_SIG: u32 = 0x0403_4b50;

/// One member as the central directory describes it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) name: String,
    method: u16,
    flags: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_header: u64,
}

/// A parsed archive: its members by name, over the bytes it was read from.
#[derive(Debug)]
pub(super) struct Archive<'a> {
    bytes: &'a [u8],
    pub(super) entries: BTreeMap<String, Entry>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn truncated(msg: impl Into<String>) -> ErrorKind {
    ErrorKind::Truncated(msg.into())
}

fn malformed(msg: impl Into<String>) -> ErrorKind {
    ErrorKind::Malformed(msg.into())
}

impl<'a> Archive<'a> {
    /// Parses the end-of-central-directory record and the central directory.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Archive<'a>, ErrorKind> {
        if bytes.len() < 22 {
            return Err(truncated(format!(
                "{} bytes are too few for a zip archive",
                bytes.len()
            )));
        }
        // The EOCD is the last 22 bytes plus a comment of at most 65535 bytes.
        let lowest = bytes.len().saturating_sub(22 + 0xFFFF);
        let eocd = (lowest..=bytes.len() - 22)
            .rev()
            .find(|&i| {
                le32(bytes, i) == Some(EOCD_SIG)
                    && le16(bytes, i + 20).is_some_and(|c| i + 22 + usize::from(c) == bytes.len())
            })
            .or_else(|| {
                (lowest..=bytes.len() - 22)
                    .rev()
                    .find(|&i| le32(bytes, i) == Some(EOCD_SIG))
            })
            .ok_or_else(|| {
                if bytes.starts_with(&LFH_SIG.to_le_bytes()) {
                    truncated("the zip archive has no end-of-central-directory record (cut short?)")
                } else {
                    malformed("not a zip archive (no end-of-central-directory record)")
                }
            })?;
        let field = |off: usize| {
            le16(bytes, eocd + off).ok_or_else(|| truncated("end of central directory"))
        };
        let disk = field(4)?;
        let cd_disk = field(6)?;
        let count_here = field(8)?;
        let count = field(10)?;
        let cd_size =
            le32(bytes, eocd + 12).ok_or_else(|| truncated("end of central directory"))?;
        let cd_offset =
            le32(bytes, eocd + 16).ok_or_else(|| truncated("end of central directory"))?;
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            return Err(ErrorKind::Unsupported("zip64 archives".into()));
        }
        if disk != 0 || cd_disk != 0 || count_here != count {
            return Err(ErrorKind::Unsupported("multi-disk zip archives".into()));
        }
        let cd_start = cd_offset as usize;
        let cd_end = cd_start
            .checked_add(cd_size as usize)
            .filter(|e| *e <= eocd)
            .ok_or_else(|| {
                truncated(format!(
                    "the central directory ({cd_size} bytes at {cd_offset}) runs past the end-of-directory record at {eocd}"
                ))
            })?;
        let cd = &bytes[cd_start..cd_end];
        // Each central directory header is at least 46 bytes.
        if usize::from(count) > cd.len() / 46 {
            return Err(malformed(format!(
                "the central directory declares {count} members in {} bytes",
                cd.len()
            )));
        }
        let mut entries = BTreeMap::new();
        let mut p = 0usize;
        for i in 0..count {
            let bad = || {
                malformed(format!(
                    "central directory entry {i} is cut short or corrupt"
                ))
            };
            if le32(cd, p) != Some(CDH_SIG) {
                return Err(malformed(format!(
                    "central directory entry {i} has a bad signature"
                )));
            }
            let flags = le16(cd, p + 8).ok_or_else(bad)?;
            let method = le16(cd, p + 10).ok_or_else(bad)?;
            let crc = le32(cd, p + 16).ok_or_else(bad)?;
            let compressed = le32(cd, p + 20).ok_or_else(bad)?;
            let uncompressed = le32(cd, p + 24).ok_or_else(bad)?;
            let name_len = usize::from(le16(cd, p + 28).ok_or_else(bad)?);
            let extra_len = usize::from(le16(cd, p + 30).ok_or_else(bad)?);
            let comment_len = usize::from(le16(cd, p + 32).ok_or_else(bad)?);
            let local = le32(cd, p + 42).ok_or_else(bad)?;
            let name = cd.get(p + 46..p + 46 + name_len).ok_or_else(bad)?;
            let name = std::str::from_utf8(name)
                .map_err(|_| {
                    malformed(format!("central directory entry {i} has a non-UTF-8 name"))
                })?
                .to_string();
            if [compressed, uncompressed, local].contains(&0xFFFF_FFFF) {
                return Err(ErrorKind::Unsupported(format!("zip64 member `{name}`")));
            }
            p = p + 46 + name_len + extra_len + comment_len;
            if p > cd.len() {
                return Err(bad());
            }
            let entry = Entry {
                name: name.clone(),
                method,
                flags,
                crc,
                compressed: u64::from(compressed),
                uncompressed: u64::from(uncompressed),
                local_header: u64::from(local),
            };
            if entries.insert(name.clone(), entry).is_some() {
                return Err(malformed(format!(
                    "the archive has two members named `{name}`"
                )));
            }
        }
        Ok(Archive { bytes, entries })
    }

    /// The uncompressed bytes of member `name`, or `None` when there is no such member.
    pub(super) fn read(&self, name: &str) -> Option<Result<std::borrow::Cow<'a, [u8]>, ErrorKind>> {
        let e = self.entries.get(name)?;
        Some(self.read_entry(e))
    }

    fn read_entry(&self, e: &Entry) -> Result<std::borrow::Cow<'a, [u8]>, ErrorKind> {
        let name = &e.name;
        if e.flags & 0x0001 != 0 {
            return Err(ErrorKind::Unsupported(format!(
                "encrypted zip member `{name}`"
            )));
        }
        let lh = usize::try_from(e.local_header).unwrap_or(usize::MAX);
        let b = self.bytes;
        if le32(b, lh) != Some(LFH_SIG) {
            return Err(if lh >= b.len() {
                truncated(format!(
                    "the local header of `{name}` lies beyond the end of the archive"
                ))
            } else {
                malformed(format!("the local header of `{name}` has a bad signature"))
            });
        }
        let name_len =
            le16(b, lh + 26).ok_or_else(|| truncated(format!("local header of `{name}`")))?;
        let extra_len =
            le16(b, lh + 28).ok_or_else(|| truncated(format!("local header of `{name}`")))?;
        let start = lh + 30 + usize::from(name_len) + usize::from(extra_len);
        let end = start
            .checked_add(usize::try_from(e.compressed).unwrap_or(usize::MAX))
            .filter(|end| *end <= b.len())
            .ok_or_else(|| {
                truncated(format!(
                    "member `{name}` ({} bytes) runs past the end of the archive ({} bytes)",
                    e.compressed,
                    b.len()
                ))
            })?;
        let raw = &b[start..end];
        let data: std::borrow::Cow<'a, [u8]> = match e.method {
            0 => {
                if e.compressed != e.uncompressed {
                    return Err(malformed(format!(
                        "stored member `{name}` declares {} bytes but holds {}",
                        e.uncompressed, e.compressed
                    )));
                }
                std::borrow::Cow::Borrowed(raw)
            }
            8 => {
                if e.uncompressed > MAX_INFLATED
                    || e.uncompressed > e.compressed.saturating_mul(MAX_RATIO).max(1024)
                {
                    return Err(ErrorKind::TooLarge(format!(
                        "member `{name}` declares {} bytes from {} compressed bytes",
                        e.uncompressed, e.compressed
                    )));
                }
                // Inflate at most declared + 1 bytes, so a lying size is caught without
                // inflating more than the bound.
                let limit = e.uncompressed as usize + 1;
                let out = miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit).map_err(
                    |err| match err.status {
                        miniz_oxide::inflate::TINFLStatus::HasMoreOutput => malformed(format!(
                            "member `{name}` inflates to more than its declared {} bytes",
                            e.uncompressed
                        )),
                        miniz_oxide::inflate::TINFLStatus::FailedCannotMakeProgress => {
                            truncated(format!("deflate stream of `{name}` ends early"))
                        }
                        other => malformed(format!("deflate stream of `{name}`: {other:?}")),
                    },
                )?;
                if out.len() as u64 != e.uncompressed {
                    return Err(malformed(format!(
                        "member `{name}` inflates to {} bytes, not its declared {}",
                        out.len(),
                        e.uncompressed
                    )));
                }
                std::borrow::Cow::Owned(out)
            }
            m => {
                return Err(ErrorKind::Unsupported(format!(
                    "zip compression method {m} for member `{name}` (only stored and deflate)"
                )));
            }
        };
        let crc = crc32(&data);
        if crc != e.crc {
            return Err(malformed(format!(
                "member `{name}` fails its CRC-32 check (0x{crc:08x}, expected 0x{:08x})",
                e.crc
            )));
        }
        Ok(data)
    }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip uses it.
pub(super) fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn short_and_garbage_inputs_are_errors() {
        for bytes in [&b""[..], b"PK", &[0u8; 100]] {
            assert!(Archive::parse(bytes).is_err());
        }
    }
}
