//! A minimal, pure-Rust, read-only HDF5 reader for the files h5py writes for Keras.
//!
//! Scope: superblock versions 0–3; object headers v1 and v2 (with continuation blocks);
//! old-style groups (symbol table: v1 B-tree + local heap + symbol table nodes) and
//! new-style compact groups (link messages); datasets with contiguous or compact layout;
//! dataspace; fixed-point and floating-point datatypes (f16, f32, f64, and bf16 whether
//! stored as a 16-bit float with an 8-bit exponent or, as h5py writes ml_dtypes bfloat16,
//! as 2-byte opaque data with the attribute `dtype="bfloat16"`), little and big endian;
//! attributes whose value is a string (fixed or variable length, through the global heap).
//! Dense groups (fractal heaps), chunked or filtered datasets and external storage are
//! reported as unsupported.
//!
//! The reader works on the file held in memory. Every offset and length is checked against
//! the buffer before it is used, allocations are bounded by the buffer's size (a dataset's
//! bytes must lie inside the file before it is decoded), group cycles and revisited B-tree
//! nodes are errors, and the number of objects and the nesting depth are bounded. Checksums
//! of version-2 structures are not verified.
//!
//! Both crates.io readers evaluated for this (hdf5-reader 0.12, hdf5-pure 0.47) read from
//! memory but abort the process with a stack overflow on single-byte corruptions of a real
//! Keras weights file, which is why this module exists.

mod cursor;
mod object;

use std::collections::{BTreeMap, BTreeSet};

use half::{bf16, f16};
use model_ir::Tensor;
use ndarray::{ArrayD, IxDyn};

use crate::error::ErrorKind;
use cursor::{Cursor, Sizes, malformed, slice};
use object::{Datatype, Layout, Message};

/// Upper bound on group nesting.
const MAX_DEPTH: usize = 64;
/// Upper bound on objects visited (groups + datasets), whatever the links say.
const MAX_OBJECTS: usize = 100_000;
/// Upper bound on v1 B-tree levels.
const MAX_BTREE_LEVEL: u8 = 32;
/// Upper bound on the total length of all object paths (repeated links to long names could
/// otherwise make the paths far larger than the file).
const MAX_PATH_BYTES: usize = 16 << 20;

/// The value of an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttrValue {
    Str(String),
    /// A value the reader does not decode; the string describes its type.
    Other(String),
}

/// Attributes of one object by name.
pub(crate) type Attrs = BTreeMap<String, AttrValue>;

/// A dataset located in the file; its data is decoded on demand by [`H5Dataset::tensor`].
#[derive(Debug, Clone)]
pub(crate) struct H5Dataset<'a> {
    pub(crate) shape: Vec<usize>,
    datatype: Datatype,
    /// The raw bytes, already checked to hold exactly `shape.product() × element size` bytes.
    data: &'a [u8],
    pub(crate) attrs: Attrs,
}

/// Every group and dataset of a file, by slash-separated path from the root (`layers/dense/vars/0`;
/// the root group is `""`).
#[derive(Debug, Clone, Default)]
pub(crate) struct H5File<'a> {
    pub(crate) groups: BTreeMap<String, Attrs>,
    pub(crate) datasets: BTreeMap<String, H5Dataset<'a>>,
}

/// Reads the structure of an HDF5 file held in memory.
pub(crate) fn read(file: &[u8]) -> Result<H5File<'_>, ErrorKind> {
    let sb = object::superblock(file)?;
    let mut walker = Walker {
        file,
        sizes: sb.sizes,
        out: H5File::default(),
        visited: 0,
        path_bytes: 0,
        ancestors: Vec::new(),
    };
    walker.object(sb.root, String::new(), 0)?;
    Ok(walker.out)
}

struct Walker<'a> {
    file: &'a [u8],
    sizes: Sizes,
    out: H5File<'a>,
    visited: usize,
    /// Total length of the paths recorded so far.
    path_bytes: usize,
    /// Object header addresses of the groups on the current path, for cycle detection.
    ancestors: Vec<u64>,
}

impl<'a> Walker<'a> {
    fn object(&mut self, addr: u64, path: String, depth: usize) -> Result<(), ErrorKind> {
        self.visited += 1;
        if self.visited > MAX_OBJECTS {
            return Err(ErrorKind::TooLarge(format!(
                "more than {MAX_OBJECTS} objects (links may repeat)"
            )));
        }
        if depth > MAX_DEPTH {
            return Err(ErrorKind::TooLarge(format!(
                "groups nested deeper than {MAX_DEPTH} at `{path}`"
            )));
        }
        self.path_bytes += path.len();
        if self.path_bytes > MAX_PATH_BYTES {
            return Err(ErrorKind::TooLarge(format!(
                "object paths exceed {MAX_PATH_BYTES} bytes in total (links may repeat)"
            )));
        }
        if self.ancestors.contains(&addr) {
            return Err(malformed(format!(
                "group cycle: `{path}` links back to an enclosing group"
            )));
        }
        let messages = object::object_header(self.file, addr, &self.sizes)?;
        let mut attrs = Attrs::new();
        for m in messages.iter().filter(|m| m.kind == object::MSG_ATTRIBUTE) {
            let raw = object::attribute(m, &self.sizes)?;
            let value = self.attr_value(&raw)?;
            attrs.insert(raw.name, value);
        }
        let find = |kind: u16| messages.iter().find(|m| m.kind == kind);
        if let Some(st) = find(object::MSG_SYMBOL_TABLE) {
            let (btree, heap) = object::symbol_table(st, &self.sizes)?;
            let children = self.symbol_table_children(btree, heap)?;
            self.group(addr, path, depth, attrs, children)
        } else if let Some(layout) = find(object::MSG_LAYOUT) {
            let ds = self.dataset(&messages, layout, &path, attrs)?;
            self.out.datasets.insert(path, ds);
            Ok(())
        } else if find(object::MSG_LINK).is_some() || find(object::MSG_LINK_INFO).is_some() {
            if let Some(info) = find(object::MSG_LINK_INFO)
                && object::link_info_is_dense(info, &self.sizes)?
            {
                return Err(ErrorKind::Unsupported(format!(
                    "group `{path}` keeps its links in a fractal heap (dense storage)"
                )));
            }
            let mut children = BTreeMap::new();
            for m in messages.iter().filter(|m| m.kind == object::MSG_LINK) {
                let link = object::link(m, &self.sizes)?;
                let Some(target) = link.target else {
                    return Err(ErrorKind::Unsupported(format!(
                        "link `{}` in `{path}` is a soft or external link (type {})",
                        link.name, link.kind
                    )));
                };
                if children.insert(link.name.clone(), target).is_some() {
                    return Err(malformed(format!(
                        "group `{path}` has two links named `{}`",
                        link.name
                    )));
                }
            }
            self.group(addr, path, depth, attrs, children)
        } else if messages.iter().any(|m| m.kind == object::MSG_DATATYPE) {
            // A committed (named) datatype: no data to read.
            Ok(())
        } else {
            // An empty new-style group without link info, or an object we do not know.
            self.group(addr, path, depth, attrs, BTreeMap::new())
        }
    }

    fn group(
        &mut self,
        addr: u64,
        path: String,
        depth: usize,
        attrs: Attrs,
        children: BTreeMap<String, u64>,
    ) -> Result<(), ErrorKind> {
        self.ancestors.push(addr);
        for (name, child) in children {
            if name.is_empty() || name.contains('/') {
                return Err(malformed(format!(
                    "group `{path}` has a link named {name:?}"
                )));
            }
            let child_path = if path.is_empty() {
                name
            } else {
                format!("{path}/{name}")
            };
            self.object(child, child_path, depth + 1)?;
        }
        self.ancestors.pop();
        self.out.groups.insert(path, attrs);
        Ok(())
    }

    /// Names and object header addresses of an old-style group's members.
    fn symbol_table_children(
        &mut self,
        btree: u64,
        heap: u64,
    ) -> Result<BTreeMap<String, u64>, ErrorKind> {
        let heap = self.local_heap(heap)?;
        let mut children = BTreeMap::new();
        let mut seen = BTreeSet::new();
        self.btree_node(btree, None, heap, &mut children, &mut seen)?;
        Ok(children)
    }

    /// The data segment of a local heap.
    fn local_heap(&self, addr: u64) -> Result<&'a [u8], ErrorKind> {
        let mut c = Cursor::at(self.file, addr, "local heap")?;
        c.signature(b"HEAP")?;
        let _version = c.u8()?;
        c.skip(3)?;
        let size = c.length(&self.sizes)?;
        let _free = c.length(&self.sizes)?;
        let data = c
            .address(&self.sizes)?
            .ok_or_else(|| malformed(format!("local heap at 0x{addr:x} has no data segment")))?;
        slice(self.file, data, size, "local heap data segment")
    }

    fn btree_node(
        &mut self,
        addr: u64,
        expected_level: Option<u8>,
        heap: &'a [u8],
        out: &mut BTreeMap<String, u64>,
        seen: &mut BTreeSet<u64>,
    ) -> Result<(), ErrorKind> {
        if !seen.insert(addr) {
            return Err(malformed(format!(
                "B-tree node at 0x{addr:x} is reached twice"
            )));
        }
        self.visited += 1;
        if self.visited > MAX_OBJECTS {
            return Err(ErrorKind::TooLarge(format!(
                "more than {MAX_OBJECTS} B-tree nodes and objects"
            )));
        }
        let mut c = Cursor::at(self.file, addr, "group B-tree node")?;
        c.signature(b"TREE")?;
        let node_type = c.u8()?;
        if node_type != 0 {
            return Err(malformed(format!(
                "B-tree node at 0x{addr:x} has type {node_type}, expected a group node (0)"
            )));
        }
        let level = c.u8()?;
        if level > MAX_BTREE_LEVEL || expected_level.is_some_and(|l| l != level) {
            return Err(malformed(format!(
                "B-tree node at 0x{addr:x} has level {level}, expected {}",
                expected_level.map_or("at most 32".to_string(), |l| l.to_string())
            )));
        }
        let entries = usize::from(c.u16()?);
        c.address(&self.sizes)?; // left sibling
        c.address(&self.sizes)?; // right sibling
        // Keys and children interleave: key, child, key, ..., child, key.
        let need = entries
            .saturating_mul(self.sizes.offset + self.sizes.length)
            .saturating_add(self.sizes.length);
        if need > c.remaining() {
            return Err(ErrorKind::Truncated(format!(
                "B-tree node at 0x{addr:x} declares {entries} entries that run past the end of the file"
            )));
        }
        let mut childs = Vec::with_capacity(entries);
        for _ in 0..entries {
            c.length(&self.sizes)?;
            let child = c.address(&self.sizes)?.ok_or_else(|| {
                malformed(format!("B-tree node at 0x{addr:x} has an undefined child"))
            })?;
            childs.push(child);
        }
        for child in childs {
            if level == 0 {
                self.symbol_node(child, heap, out)?;
            } else {
                self.btree_node(child, Some(level - 1), heap, out, seen)?;
            }
        }
        Ok(())
    }

    fn symbol_node(
        &mut self,
        addr: u64,
        heap: &'a [u8],
        out: &mut BTreeMap<String, u64>,
    ) -> Result<(), ErrorKind> {
        let mut c = Cursor::at(self.file, addr, "symbol table node")?;
        c.signature(b"SNOD")?;
        let _version = c.u8()?;
        c.skip(1)?;
        let count = usize::from(c.u16()?);
        for _ in 0..count {
            let name_off = c.length(&self.sizes)?;
            let header = c.address(&self.sizes)?;
            c.skip(4 + 4 + 16)?; // cache type, reserved, scratch pad
            let name = heap_string(heap, name_off)?;
            let header = header.ok_or_else(|| {
                malformed(format!("symbol `{name}` has no object header address"))
            })?;
            if out.insert(name.clone(), header).is_some() {
                return Err(malformed(format!("two group members are named `{name}`")));
            }
        }
        Ok(())
    }

    fn dataset(
        &self,
        messages: &[Message<'a>],
        layout: &Message<'a>,
        path: &str,
        attrs: Attrs,
    ) -> Result<H5Dataset<'a>, ErrorKind> {
        let find = |kind: u16| {
            messages
                .iter()
                .find(|m| m.kind == kind)
                .ok_or_else(|| malformed(format!("dataset `{path}` has no message of type {kind}")))
        };
        for kind in [object::MSG_FILTERS, object::MSG_EXTERNAL] {
            if messages.iter().any(|m| m.kind == kind) {
                return Err(ErrorKind::Unsupported(format!(
                    "dataset `{path}` uses filters (compression) or external storage"
                )));
            }
        }
        let dt_msg = find(object::MSG_DATATYPE)?;
        let ds_msg = find(object::MSG_DATASPACE)?;
        for m in [dt_msg, ds_msg] {
            if m.flags & 0x02 != 0 {
                return Err(ErrorKind::Unsupported(format!(
                    "dataset `{path}` uses a shared datatype or dataspace"
                )));
            }
        }
        let datatype = object::datatype(dt_msg.data, dt_msg.at)?;
        let dims = object::dataspace(ds_msg, &self.sizes)?.unwrap_or_else(|| vec![0]);
        let mut shape = Vec::with_capacity(dims.len());
        let mut count: usize = 1;
        for d in &dims {
            let d = usize::try_from(*d).map_err(|_| too_large(path, &dims))?;
            count = count.checked_mul(d).ok_or_else(|| too_large(path, &dims))?;
            shape.push(d);
        }
        let elem = datatype.size(&self.sizes);
        let nbytes = count
            .checked_mul(elem)
            .ok_or_else(|| too_large(path, &dims))?;
        if nbytes > self.file.len() {
            return Err(ErrorKind::TooLarge(format!(
                "dataset `{path}` declares shape {dims:?} ({nbytes} bytes), more than the whole file ({} bytes)",
                self.file.len()
            )));
        }
        let data: &'a [u8] = match object::layout(layout, &self.sizes)? {
            Layout::Compact(bytes) => bytes,
            Layout::Contiguous { addr: None, .. } if nbytes == 0 => &[],
            Layout::Contiguous { addr: None, .. } => {
                return Err(ErrorKind::Missing(format!(
                    "data of dataset `{path}` (never written)"
                )));
            }
            Layout::Contiguous {
                addr: Some(addr),
                size,
            } => {
                if size < nbytes as u64 {
                    return Err(malformed(format!(
                        "dataset `{path}` stores {size} bytes for shape {dims:?} of {}",
                        datatype.describe()
                    )));
                }
                slice(self.file, addr, nbytes as u64, "dataset data")?
            }
        };
        if data.len() < nbytes {
            return Err(malformed(format!(
                "dataset `{path}` stores {} bytes for shape {dims:?} of {}",
                data.len(),
                datatype.describe()
            )));
        }
        Ok(H5Dataset {
            shape,
            datatype,
            data: &data[..nbytes],
            attrs,
        })
    }

    fn attr_value(&self, raw: &object::RawAttribute<'_>) -> Result<AttrValue, ErrorKind> {
        let scalar_like = match &raw.dims {
            Some(d) => d.iter().all(|x| *x == 1),
            None => false,
        };
        if !scalar_like {
            return Ok(AttrValue::Other(format!(
                "{} of shape {:?}",
                raw.datatype.describe(),
                raw.dims
            )));
        }
        match &raw.datatype {
            Datatype::FixedString { size } => {
                let bytes = raw.data.get(..*size).ok_or_else(|| {
                    ErrorKind::Truncated(format!(
                        "attribute `{}` at 0x{:x}: string of {size} bytes",
                        raw.name, raw.at
                    ))
                })?;
                let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
                let s = String::from_utf8_lossy(&bytes[..end])
                    .trim_end()
                    .to_string();
                Ok(AttrValue::Str(s))
            }
            Datatype::VarString => {
                let mut c = Cursor::new(raw.data, raw.at, "variable-length string attribute");
                let len = c.u32()? as u64;
                let collection = c.address(&self.sizes)?;
                let index = c.u32()?;
                let Some(collection) = collection else {
                    return Ok(AttrValue::Str(String::new()));
                };
                let bytes = self.global_heap_object(collection, index)?;
                let bytes = usize::try_from(len)
                    .ok()
                    .and_then(|l| bytes.get(..l))
                    .ok_or_else(|| {
                        malformed(format!(
                            "attribute `{}`: string of {len} bytes in a heap object of {}",
                            raw.name,
                            bytes.len()
                        ))
                    })?;
                let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
                Ok(AttrValue::Str(
                    String::from_utf8_lossy(&bytes[..end]).into_owned(),
                ))
            }
            other => Ok(AttrValue::Other(other.describe())),
        }
    }

    /// The bytes of object `index` in the global heap collection at `addr`.
    fn global_heap_object(&self, addr: u64, index: u32) -> Result<&'a [u8], ErrorKind> {
        let mut c = Cursor::at(self.file, addr, "global heap collection")?;
        c.signature(b"GCOL")?;
        let _version = c.u8()?;
        c.skip(3)?;
        let size = c.length(&self.sizes)?;
        let whole = slice(self.file, addr, size, "global heap collection")?;
        let mut c = Cursor::new(whole, addr, "global heap object");
        c.skip(8 + self.sizes.length)?;
        while c.remaining() >= 8 + self.sizes.length {
            let idx = c.u16()?;
            c.skip(2 + 4)?; // reference count, reserved
            let obj_size = c.length(&self.sizes)?;
            if idx == 0 {
                break; // free space: no more objects
            }
            let n = usize::try_from(obj_size)
                .ok()
                .filter(|n| *n <= c.remaining())
                .ok_or_else(|| {
                    ErrorKind::Truncated(format!(
                        "global heap object {idx} at 0x{:x} declares {obj_size} bytes",
                        c.position()
                    ))
                })?;
            let data = c.bytes(n)?;
            if u32::from(idx) == index {
                return Ok(data);
            }
            c.skip((n.div_ceil(8) * 8 - n).min(c.remaining()))?;
        }
        Err(ErrorKind::Missing(format!(
            "global heap object {index} in the collection at 0x{addr:x}"
        )))
    }
}

fn too_large(path: &str, dims: &[u64]) -> ErrorKind {
    ErrorKind::TooLarge(format!(
        "dataset `{path}` declares shape {dims:?}, whose size overflows"
    ))
}

/// The NUL-terminated string at `offset` in a local heap's data segment.
fn heap_string(heap: &[u8], offset: u64) -> Result<String, ErrorKind> {
    let start = usize::try_from(offset)
        .ok()
        .filter(|s| *s < heap.len())
        .ok_or_else(|| {
            ErrorKind::Truncated(format!(
                "name offset {offset} lies beyond the local heap ({} bytes)",
                heap.len()
            ))
        })?;
    let rest = &heap[start..];
    let end = rest.iter().position(|b| *b == 0).ok_or_else(|| {
        malformed(format!(
            "name at heap offset {offset} is not NUL-terminated"
        ))
    })?;
    std::str::from_utf8(&rest[..end])
        .map(str::to_string)
        .map_err(|_| malformed(format!("name at heap offset {offset} is not UTF-8")))
}

impl H5Dataset<'_> {
    /// Decodes the data into a tensor of the stored type.
    ///
    /// Opaque 2-byte data tagged with the attribute `dtype="bfloat16"` (how Keras saves bf16
    /// variables through h5py) decodes as bf16; unsigned 32-bit and signed/unsigned 8/16-bit
    /// integers widen to i32 or i64 without loss; u64 values above `i64::MAX` are an error.
    pub(crate) fn tensor(&self) -> Result<Tensor, ErrorKind> {
        let shape = IxDyn(&self.shape);
        let d = self.data;
        let bad =
            || ErrorKind::Unsupported(format!("dataset element type {}", self.datatype.describe()));
        fn arr<T>(shape: IxDyn, v: Vec<T>) -> Result<ArrayD<T>, ErrorKind> {
            ArrayD::from_shape_vec(shape, v)
                .map_err(|e| malformed(format!("dataset data does not fit its shape: {e}")))
        }
        macro_rules! words {
            ($n:expr, $be:expr, $conv:expr) => {{
                d.chunks_exact($n)
                    .map(|c| {
                        let mut b = [0u8; $n];
                        b.copy_from_slice(c);
                        if $be {
                            b.reverse();
                        }
                        $conv(b)
                    })
                    .collect::<Vec<_>>()
            }};
        }
        Ok(match &self.datatype {
            Datatype::Float {
                size,
                exponent,
                mantissa,
                big_endian: be,
            } => match (size, exponent, mantissa) {
                (8, 11, 52) => Tensor::F64(arr(shape, words!(8, *be, f64::from_le_bytes))?),
                (4, 8, 23) => Tensor::F32(arr(shape, words!(4, *be, f32::from_le_bytes))?),
                (2, 5, 10) => Tensor::F16(arr(shape, words!(2, *be, f16::from_le_bytes))?),
                (2, 8, 7) => Tensor::BF16(arr(shape, words!(2, *be, bf16::from_le_bytes))?),
                _ => return Err(bad()),
            },
            Datatype::Int {
                size,
                signed,
                big_endian: be,
            } => match (size, signed) {
                (1, false) => Tensor::U8(arr(shape, d.to_vec())?),
                (1, true) => Tensor::I32(arr(
                    shape,
                    words!(1, false, |b: [u8; 1]| i32::from(b[0] as i8)),
                )?),
                (2, true) => Tensor::I32(arr(
                    shape,
                    words!(2, *be, |b| i32::from(i16::from_le_bytes(b))),
                )?),
                (2, false) => Tensor::I32(arr(
                    shape,
                    words!(2, *be, |b| i32::from(u16::from_le_bytes(b))),
                )?),
                (4, true) => Tensor::I32(arr(shape, words!(4, *be, i32::from_le_bytes))?),
                (4, false) => Tensor::I64(arr(
                    shape,
                    words!(4, *be, |b| i64::from(u32::from_le_bytes(b))),
                )?),
                (8, true) => Tensor::I64(arr(shape, words!(8, *be, i64::from_le_bytes))?),
                (8, false) => {
                    let v = words!(8, *be, u64::from_le_bytes);
                    let v = v
                        .into_iter()
                        .map(|x| i64::try_from(x).map_err(|_| bad()))
                        .collect::<Result<Vec<_>, _>>()?;
                    Tensor::I64(arr(shape, v)?)
                }
                _ => return Err(bad()),
            },
            Datatype::Opaque { size: 2, .. }
                if self.attrs.get("dtype") == Some(&AttrValue::Str("bfloat16".into())) =>
            {
                Tensor::BF16(arr(shape, words!(2, false, bf16::from_le_bytes))?)
            }
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_string_is_bounded() {
        assert!(heap_string(b"ab\0cd", 0).is_ok_and(|s| s == "ab"));
        assert!(heap_string(b"ab\0cd", 3).is_err());
        assert!(heap_string(b"ab", 9).is_err());
    }

    #[test]
    fn empty_and_garbage_are_errors() {
        assert!(matches!(read(b""), Err(ErrorKind::Truncated(_))));
        assert!(read(&[0u8; 4096]).is_err());
    }
}

#[cfg(test)]
mod fuzz {
    //! Exhaustive single-byte corruption of real Keras weight files: every result must be
    //! `Ok` or `Err`, never a panic or a hang.

    use super::*;

    fn weights(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/zoo/keras")
            .join(format!("{name}.keras"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        crate::keras::zip_for_tests(&bytes)
    }

    fn read_all(bytes: &[u8]) {
        if let Ok(f) = read(bytes) {
            for ds in f.datasets.values() {
                let _ = ds.tensor();
            }
        }
    }

    /// Flips `flip` into every `stride`-th byte.
    fn flips(h5: &[u8], stride: usize, flip: u8) {
        let mut d = h5.to_vec();
        for pos in (0..h5.len()).step_by(stride) {
            d[pos] ^= flip;
            read_all(&d);
            d[pos] ^= flip;
        }
    }

    // Both files are mostly metadata (tiny weights), so nearly every flip hits structure.
    // Strides keep the debug-build run to a couple of seconds.
    #[test]
    fn byte_flips_in_superblock_v0_files_are_handled() {
        let h5 = weights("mixed_dtypes");
        assert!(read(&h5).is_ok());
        flips(&h5, 2, 0xFF);
        flips(&h5, 5, 0x01);
    }

    #[test]
    fn byte_flips_in_superblock_v3_files_are_handled() {
        let h5 = weights("mixed_dtypes_h5latest");
        assert!(read(&h5).is_ok());
        flips(&h5, 1, 0xFF);
        flips(&h5, 5, 0x80);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for name in ["mixed_dtypes", "mixed_dtypes_h5latest"] {
            let h5 = weights(name);
            for cut in (0..h5.len()).step_by(11) {
                assert!(
                    matches!(read(&h5[..cut]), Err(ErrorKind::Truncated(_))),
                    "{name} cut at {cut}"
                );
            }
        }
    }
}
