//! Superblock, object headers (v1 and v2) and the header messages the reader interprets:
//! dataspace, datatype, data layout, symbol table, link, link info, attribute, continuation.
//!
//! Layouts follow the HDF5 File Format Specification 3.0, sections II–IV. Checksums of
//! version-2 structures are not verified; every length and address is bounds-checked instead.

use std::collections::BTreeSet;

use super::cursor::{Cursor, Sizes, malformed, slice};
use crate::error::ErrorKind;

/// HDF5 format signature at the start of the superblock.
const SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Upper bound on continuation blocks of one object header.
const MAX_CONTINUATIONS: usize = 4096;
/// Upper bound on the rank of a dataspace (HDF5's own limit is 32).
pub(super) const MAX_RANK: usize = 32;

/// What the superblock says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Superblock {
    pub(super) sizes: Sizes,
    /// Absolute address of the root group's object header.
    pub(super) root: u64,
}

/// Finds and parses the superblock (versions 0–3), at 0 or a power of two ≥ 512.
pub(super) fn superblock(file: &[u8]) -> Result<Superblock, ErrorKind> {
    let mut at = 0usize;
    loop {
        if file.len() < at + SIGNATURE.len() {
            return Err(if at == 0 {
                ErrorKind::Truncated(format!(
                    "{} bytes are too few for an HDF5 superblock",
                    file.len()
                ))
            } else {
                malformed("no HDF5 signature found")
            });
        }
        if file[at..at + SIGNATURE.len()] == SIGNATURE {
            break;
        }
        at = if at == 0 { 512 } else { at * 2 };
    }
    let mut c = Cursor::at(file, at as u64 + 8, "superblock")?;
    let version = c.u8()?;
    let (offset, length) = match version {
        0 | 1 => {
            c.skip(4)?; // free-space, root symbol table entry, reserved, shared header versions
            let o = c.u8()?;
            let l = c.u8()?;
            (o, l)
        }
        2 | 3 => {
            let o = c.u8()?;
            let l = c.u8()?;
            (o, l)
        }
        v => {
            return Err(ErrorKind::Unsupported(format!(
                "HDF5 superblock version {v}"
            )));
        }
    };
    for s in [offset, length] {
        if !matches!(s, 2 | 4 | 8) {
            return Err(malformed(format!(
                "superblock: size of offsets/lengths {s} is not 2, 4 or 8"
            )));
        }
    }
    let mut sizes = Sizes {
        offset: offset as usize,
        length: length as usize,
        base: 0,
    };
    let (base, eof, root) = if version <= 1 {
        c.skip(1)?; // reserved
        c.skip(4)?; // group leaf / internal node K
        c.skip(4)?; // file consistency flags
        if version == 1 {
            c.skip(4)?; // indexed storage K, reserved
        }
        let base = c.uint(sizes.offset)?;
        sizes.base = base;
        c.address(&sizes)?; // free-space info
        let eof = c.uint(sizes.offset)?;
        c.address(&sizes)?; // driver information block
        // Root group symbol table entry.
        c.uint(sizes.offset)?; // link name offset
        let root = c.address(&sizes)?;
        (base, eof, root)
    } else {
        c.skip(1)?; // file consistency flags
        let base = c.uint(sizes.offset)?;
        sizes.base = base;
        c.address(&sizes)?; // superblock extension
        let eof = c.uint(sizes.offset)?;
        let root = c.address(&sizes)?;
        (base, eof, root)
    };
    let declared_end = base.saturating_add(eof);
    if declared_end > file.len() as u64 {
        return Err(ErrorKind::Truncated(format!(
            "the superblock says the file ends at byte {declared_end}, but only {} bytes are present",
            file.len()
        )));
    }
    let root = root.ok_or_else(|| malformed("superblock: the root group has no object header"))?;
    Ok(Superblock { sizes, root })
}

/// One header message: its type and its data bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Message<'a> {
    pub(super) kind: u16,
    pub(super) flags: u8,
    pub(super) data: &'a [u8],
    /// Absolute file position of `data`, for error messages.
    pub(super) at: u64,
}

pub(super) const MSG_DATASPACE: u16 = 0x0001;
pub(super) const MSG_LINK_INFO: u16 = 0x0002;
pub(super) const MSG_DATATYPE: u16 = 0x0003;
pub(super) const MSG_LINK: u16 = 0x0006;
pub(super) const MSG_EXTERNAL: u16 = 0x0007;
pub(super) const MSG_LAYOUT: u16 = 0x0008;
pub(super) const MSG_FILTERS: u16 = 0x000B;
pub(super) const MSG_ATTRIBUTE: u16 = 0x000C;
pub(super) const MSG_CONTINUATION: u16 = 0x0010;
pub(super) const MSG_SYMBOL_TABLE: u16 = 0x0011;

/// Reads every message of the object header at `addr`, following continuation blocks.
pub(super) fn object_header<'a>(
    file: &'a [u8],
    addr: u64,
    sizes: &Sizes,
) -> Result<Vec<Message<'a>>, ErrorKind> {
    let mut c = Cursor::at(file, addr, "object header")?;
    let first = c.u8()?;
    let mut messages = Vec::new();
    let mut seen_blocks = BTreeSet::new();
    seen_blocks.insert(addr);
    // Continuation blocks still to read: (absolute address, length).
    let mut pending: Vec<(u64, u64)> = Vec::new();
    if first == 1 {
        // Version 1: version, reserved, message count, reference count, header size, padding.
        c.skip(1)?;
        c.u16()?;
        c.u32()?;
        let size = u64::from(c.u32()?);
        c.skip(4)?; // pad the 12-byte prefix to 16
        let start = c.position();
        read_v1_block(file, start, size, sizes, &mut messages, &mut pending)?;
        let mut count = 0;
        while let Some((at, len)) = pending.pop() {
            count += 1;
            if count > MAX_CONTINUATIONS || !seen_blocks.insert(at) {
                return Err(malformed(format!(
                    "object header at 0x{addr:x}: continuation blocks loop or exceed {MAX_CONTINUATIONS}"
                )));
            }
            read_v1_block(file, at, len, sizes, &mut messages, &mut pending)?;
        }
        Ok(messages)
    } else {
        let mut c = Cursor::at(file, addr, "object header")?;
        c.signature(b"OHDR")?;
        let version = c.u8()?;
        if version != 2 {
            return Err(malformed(format!(
                "object header at 0x{addr:x}: version {version} (expected 1 or 2)"
            )));
        }
        let flags = c.u8()?;
        if flags & 0x20 != 0 {
            c.skip(16)?; // access, modification, change, birth times
        }
        if flags & 0x10 != 0 {
            c.skip(4)?; // max compact / min dense attribute counts
        }
        let chunk = c.uint(1 << (flags & 0x03))?;
        let start = c.position();
        read_v2_block(
            file,
            start,
            chunk,
            flags,
            sizes,
            &mut messages,
            &mut pending,
        )?;
        let mut count = 0;
        while let Some((at, len)) = pending.pop() {
            count += 1;
            if count > MAX_CONTINUATIONS || !seen_blocks.insert(at) {
                return Err(malformed(format!(
                    "object header at 0x{addr:x}: continuation blocks loop or exceed {MAX_CONTINUATIONS}"
                )));
            }
            // "OCHK" signature, messages, 4-byte checksum.
            let block = slice(file, at, len, "object header continuation")?;
            let mut cc = Cursor::new(block, at, "object header continuation");
            cc.signature(b"OCHK")?;
            let body = len
                .checked_sub(8)
                .ok_or_else(|| malformed(format!("continuation block at 0x{at:x} is too short")))?;
            read_v2_block(
                file,
                at + 4,
                body,
                flags,
                sizes,
                &mut messages,
                &mut pending,
            )?;
        }
        Ok(messages)
    }
}

fn read_v1_block<'a>(
    file: &'a [u8],
    at: u64,
    len: u64,
    sizes: &Sizes,
    out: &mut Vec<Message<'a>>,
    pending: &mut Vec<(u64, u64)>,
) -> Result<(), ErrorKind> {
    let block = slice(file, at, len, "object header messages")?;
    let mut c = Cursor::new(block, at, "object header message");
    while c.remaining() >= 8 {
        let kind = c.u16()?;
        let size = usize::from(c.u16()?);
        let flags = c.u8()?;
        c.skip(3)?;
        let data_at = c.position();
        let data = c.bytes(size)?;
        push_message(out, pending, sizes, kind, flags, data, data_at)?;
    }
    Ok(())
}

fn read_v2_block<'a>(
    file: &'a [u8],
    at: u64,
    len: u64,
    header_flags: u8,
    sizes: &Sizes,
    out: &mut Vec<Message<'a>>,
    pending: &mut Vec<(u64, u64)>,
) -> Result<(), ErrorKind> {
    let block = slice(file, at, len, "object header messages")?;
    let mut c = Cursor::new(block, at, "object header message");
    let prefix = if header_flags & 0x04 != 0 { 6 } else { 4 };
    while c.remaining() >= prefix {
        let kind = u16::from(c.u8()?);
        let size = usize::from(c.u16()?);
        let flags = c.u8()?;
        if header_flags & 0x04 != 0 {
            c.u16()?; // creation order
        }
        let data_at = c.position();
        let data = c.bytes(size)?;
        push_message(out, pending, sizes, kind, flags, data, data_at)?;
    }
    Ok(())
}

fn push_message<'a>(
    out: &mut Vec<Message<'a>>,
    pending: &mut Vec<(u64, u64)>,
    sizes: &Sizes,
    kind: u16,
    flags: u8,
    data: &'a [u8],
    at: u64,
) -> Result<(), ErrorKind> {
    if kind == MSG_CONTINUATION {
        let mut c = Cursor::new(data, at, "continuation message");
        let off = c
            .address(sizes)?
            .ok_or_else(|| malformed(format!("continuation message at 0x{at:x} has no address")))?;
        let len = c.length(sizes)?;
        pending.push((off, len));
    } else {
        out.push(Message {
            kind,
            flags,
            data,
            at,
        });
    }
    Ok(())
}

/// A dataspace: `None` for the null dataspace (no elements), else the dimensions
/// (empty = scalar).
pub(super) fn dataspace(msg: &Message<'_>, sizes: &Sizes) -> Result<Option<Vec<u64>>, ErrorKind> {
    let mut c = Cursor::new(msg.data, msg.at, "dataspace message");
    let version = c.u8()?;
    let rank = usize::from(c.u8()?);
    let _flags = c.u8()?;
    if rank > MAX_RANK {
        return Err(malformed(format!(
            "dataspace at 0x{:x}: rank {rank} exceeds {MAX_RANK}",
            msg.at
        )));
    }
    let null = match version {
        1 => {
            c.skip(5)?;
            false
        }
        2 => match c.u8()? {
            0 | 1 => false,
            2 => true,
            t => {
                return Err(malformed(format!("dataspace at 0x{:x}: type {t}", msg.at)));
            }
        },
        v => {
            return Err(ErrorKind::Unsupported(format!(
                "dataspace message version {v}"
            )));
        }
    };
    let mut dims = Vec::with_capacity(rank);
    for _ in 0..rank {
        dims.push(c.length(sizes)?);
    }
    Ok(if null { None } else { Some(dims) })
}

/// A datatype as far as the reader needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Datatype {
    /// Integer of `size` bytes.
    Int {
        size: usize,
        signed: bool,
        big_endian: bool,
    },
    /// IEEE-style float of `size` bytes with its exponent and mantissa widths.
    Float {
        size: usize,
        exponent: u8,
        mantissa: u8,
        big_endian: bool,
    },
    /// Fixed-length string.
    FixedString { size: usize },
    /// Variable-length string (data in the global heap).
    VarString,
    /// Opaque bytes with a tag (h5py stores ml_dtypes bfloat16 this way).
    Opaque { size: usize, tag: String },
    /// Anything else, by class number.
    Other { class: u8, size: usize },
}

impl Datatype {
    /// Size of one element in bytes.
    pub(super) fn size(&self, sizes: &Sizes) -> usize {
        match self {
            Datatype::Int { size, .. }
            | Datatype::Float { size, .. }
            | Datatype::FixedString { size }
            | Datatype::Opaque { size, .. }
            | Datatype::Other { size, .. } => *size,
            // Sequence length, then a global heap ID (collection address + object index).
            Datatype::VarString => 4 + sizes.offset + 4,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Datatype::Int { size, signed, .. } => {
                format!("{}{}", if *signed { "int" } else { "uint" }, size * 8)
            }
            Datatype::Float {
                size,
                exponent,
                mantissa,
                ..
            } => format!("float{} (e{exponent} m{mantissa})", size * 8),
            Datatype::FixedString { size } => format!("string[{size}]"),
            Datatype::VarString => "variable-length string".into(),
            Datatype::Opaque { size, tag } => format!("opaque[{size}] `{tag}`"),
            Datatype::Other { class, size } => format!("datatype class {class} of {size} bytes"),
        }
    }
}

pub(super) fn datatype(data: &[u8], at: u64) -> Result<Datatype, ErrorKind> {
    let mut c = Cursor::new(data, at, "datatype message");
    let class_version = c.u8()?;
    let class = class_version & 0x0F;
    let bits = c.bytes(3)?;
    let size = c.u32()? as usize;
    let big_endian = bits[0] & 0x01 != 0;
    Ok(match class {
        0 => {
            let offset = c.u16()?;
            let precision = c.u16()?;
            if offset != 0 || usize::from(precision) != size * 8 || !matches!(size, 1 | 2 | 4 | 8) {
                Datatype::Other { class, size }
            } else {
                Datatype::Int {
                    size,
                    signed: bits[0] & 0x08 != 0,
                    big_endian,
                }
            }
        }
        1 => {
            let offset = c.u16()?;
            let precision = c.u16()?;
            let _exp_loc = c.u8()?;
            let exponent = c.u8()?;
            let _mant_loc = c.u8()?;
            let mantissa = c.u8()?;
            let _bias = c.u32()?;
            let vax = bits[0] & 0x40 != 0;
            if vax || offset != 0 || usize::from(precision) != size * 8 {
                Datatype::Other { class, size }
            } else {
                Datatype::Float {
                    size,
                    exponent,
                    mantissa,
                    big_endian,
                }
            }
        }
        3 => Datatype::FixedString { size },
        5 => {
            let tag_len = usize::from(bits[0]);
            let tag = c.bytes(tag_len.min(c.remaining()))?;
            let end = tag.iter().position(|b| *b == 0).unwrap_or(tag.len());
            Datatype::Opaque {
                size,
                tag: String::from_utf8_lossy(&tag[..end]).into_owned(),
            }
        }
        9 if bits[0] & 0x0F == 1 => Datatype::VarString,
        _ => Datatype::Other { class, size },
    })
}

/// Where a dataset's raw data is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Layout<'a> {
    /// Data stored in the header itself.
    Compact(&'a [u8]),
    /// Data at an address (`None` when never written) of a given size.
    Contiguous { addr: Option<u64>, size: u64 },
}

pub(super) fn layout<'a>(msg: &Message<'a>, sizes: &Sizes) -> Result<Layout<'a>, ErrorKind> {
    let mut c = Cursor::new(msg.data, msg.at, "data layout message");
    let version = c.u8()?;
    match version {
        1 | 2 => {
            let rank = usize::from(c.u8()?);
            let class = c.u8()?;
            c.skip(5)?;
            if rank > MAX_RANK + 1 {
                return Err(malformed(format!(
                    "data layout at 0x{:x}: rank {rank}",
                    msg.at
                )));
            }
            let addr = if class != 0 { c.address(sizes)? } else { None };
            let mut size: u64 = 1;
            for _ in 0..rank {
                size = size.saturating_mul(u64::from(c.u32()?));
            }
            match class {
                0 => {
                    let n = c.u32()? as usize;
                    Ok(Layout::Compact(c.bytes(n)?))
                }
                1 => Ok(Layout::Contiguous { addr, size }),
                _ => Err(ErrorKind::Unsupported(
                    "chunked dataset storage (h5py wrote no chunked datasets for Keras)".into(),
                )),
            }
        }
        3 | 4 => match c.u8()? {
            0 => {
                let n = usize::from(c.u16()?);
                Ok(Layout::Compact(c.bytes(n)?))
            }
            1 => {
                let addr = c.address(sizes)?;
                let size = c.length(sizes)?;
                Ok(Layout::Contiguous { addr, size })
            }
            2 => Err(ErrorKind::Unsupported(
                "chunked dataset storage (h5py wrote no chunked datasets for Keras)".into(),
            )),
            other => Err(ErrorKind::Unsupported(format!("data layout class {other}"))),
        },
        v => Err(ErrorKind::Unsupported(format!(
            "data layout message version {v}"
        ))),
    }
}

/// A link from a new-style (compact) group.
#[derive(Debug, Clone)]
pub(super) struct Link {
    pub(super) name: String,
    /// Hard-link target; `None` for soft and external links.
    pub(super) target: Option<u64>,
    pub(super) kind: u8,
}

pub(super) fn link(msg: &Message<'_>, sizes: &Sizes) -> Result<Link, ErrorKind> {
    let mut c = Cursor::new(msg.data, msg.at, "link message");
    let version = c.u8()?;
    if version != 1 {
        return Err(ErrorKind::Unsupported(format!(
            "link message version {version}"
        )));
    }
    let flags = c.u8()?;
    let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
    if flags & 0x04 != 0 {
        c.skip(8)?; // creation order
    }
    if flags & 0x10 != 0 {
        c.u8()?; // character set
    }
    let name_len = c.uint(1 << (flags & 0x03))?;
    let name_len = usize::try_from(name_len)
        .ok()
        .filter(|n| *n <= c.remaining())
        .ok_or_else(|| malformed(format!("link message at 0x{:x}: name too long", msg.at)))?;
    let name = std::str::from_utf8(c.bytes(name_len)?)
        .map_err(|_| malformed(format!("link name at 0x{:x} is not UTF-8", msg.at)))?
        .to_string();
    let target = if kind == 0 { c.address(sizes)? } else { None };
    if kind == 0 && target.is_none() {
        return Err(malformed(format!("hard link `{name}` has no address")));
    }
    Ok(Link { name, target, kind })
}

/// Whether a link info message says the group keeps its links in a fractal heap (dense storage).
pub(super) fn link_info_is_dense(msg: &Message<'_>, sizes: &Sizes) -> Result<bool, ErrorKind> {
    let mut c = Cursor::new(msg.data, msg.at, "link info message");
    let _version = c.u8()?;
    let flags = c.u8()?;
    if flags & 0x01 != 0 {
        c.skip(8)?;
    }
    Ok(c.address(sizes)?.is_some())
}

/// The symbol table message: (v1 B-tree address, local heap address).
pub(super) fn symbol_table(msg: &Message<'_>, sizes: &Sizes) -> Result<(u64, u64), ErrorKind> {
    let mut c = Cursor::new(msg.data, msg.at, "symbol table message");
    let btree = c.address(sizes)?;
    let heap = c.address(sizes)?;
    match (btree, heap) {
        (Some(b), Some(h)) => Ok((b, h)),
        _ => Err(malformed(format!(
            "symbol table message at 0x{:x} has an undefined address",
            msg.at
        ))),
    }
}

/// A raw attribute: name, datatype, dimensions (`None` = null dataspace) and value bytes.
#[derive(Debug, Clone)]
pub(super) struct RawAttribute<'a> {
    pub(super) name: String,
    pub(super) datatype: Datatype,
    pub(super) dims: Option<Vec<u64>>,
    pub(super) data: &'a [u8],
    pub(super) at: u64,
}

pub(super) fn attribute<'a>(
    msg: &Message<'a>,
    sizes: &Sizes,
) -> Result<RawAttribute<'a>, ErrorKind> {
    let mut c = Cursor::new(msg.data, msg.at, "attribute message");
    let version = c.u8()?;
    let flags = c.u8()?;
    let name_size = usize::from(c.u16()?);
    let dt_size = usize::from(c.u16()?);
    let ds_size = usize::from(c.u16()?);
    if version == 3 {
        c.u8()?; // name character set
    }
    if !(1..=3).contains(&version) {
        return Err(ErrorKind::Unsupported(format!(
            "attribute message version {version}"
        )));
    }
    let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
    let name_at = c.position();
    let name_raw = c.bytes(pad(name_size))?;
    let name_raw = &name_raw[..name_size.min(name_raw.len())];
    let end = name_raw
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(name_raw.len());
    let name = std::str::from_utf8(&name_raw[..end])
        .map_err(|_| malformed(format!("attribute name at 0x{name_at:x} is not UTF-8")))?
        .to_string();
    let dt_at = c.position();
    let dt_bytes = c.bytes(pad(dt_size))?;
    let ds_at = c.position();
    let ds_bytes = c.bytes(pad(ds_size))?;
    let shared = version >= 2 && flags & 0x03 != 0;
    let datatype = if shared {
        Datatype::Other {
            class: 255,
            size: 0,
        }
    } else {
        datatype(&dt_bytes[..dt_size.min(dt_bytes.len())], dt_at)?
    };
    let dims = if shared {
        None
    } else {
        dataspace(
            &Message {
                kind: MSG_DATASPACE,
                flags: 0,
                data: &ds_bytes[..ds_size.min(ds_bytes.len())],
                at: ds_at,
            },
            sizes,
        )?
    };
    let data_at = c.position();
    let rest = c.remaining();
    let data = c.bytes(rest)?;
    Ok(RawAttribute {
        name,
        datatype,
        dims,
        data,
        at: data_at,
    })
}
