//! Shared helpers for the Keras importer tests: fixture paths, a minimal zip reader/writer
//! to rebuild archives with edited members in memory, and importing bytes through a
//! temporary file (the public API takes a path).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use model_import::{ImportError, load_keras};
use model_ir::Model;

/// `models/` at the workspace root.
pub(crate) fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// Every `.keras` file of the zoo, sorted.
pub(crate) fn zoo_files() -> Vec<PathBuf> {
    let dir = models_dir().join("zoo/keras");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "keras"))
        .collect();
    files.sort();
    files
}

/// The committed bundle fixtures `models/*/keras/model.keras` that exist.
pub(crate) fn bundle_fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(models_dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("keras/model.keras")))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

pub(crate) fn zoo(name: &str) -> Vec<u8> {
    let p = models_dir().join("zoo/keras").join(format!("{name}.keras"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// CRC-32 as zip uses it.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

fn le16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// The members of a well-formed archive, in central-directory order.
pub(crate) fn read_zip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let eocd = (0..=bytes.len() - 22)
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .expect("end of central directory");
    let count = le16(bytes, eocd + 10);
    let mut p = le32(bytes, eocd + 16);
    let mut out = Vec::new();
    for _ in 0..count {
        let method = le16(bytes, p + 10);
        let csize = le32(bytes, p + 20);
        let nlen = le16(bytes, p + 28);
        let elen = le16(bytes, p + 30);
        let clen = le16(bytes, p + 32);
        let local = le32(bytes, p + 42);
        let name = String::from_utf8(bytes[p + 46..p + 46 + nlen].to_vec()).expect("utf-8 name");
        let start = local + 30 + le16(bytes, local + 26) + le16(bytes, local + 28);
        let raw = &bytes[start..start + csize];
        let data = match method {
            0 => raw.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec(raw).expect("inflate"),
            m => panic!("method {m}"),
        };
        out.push((name, data));
        p += 46 + nlen + elen + clen;
    }
    out
}

/// A zip archive of `members`, stored or deflated.
pub(crate) fn write_zip(members: &[(String, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let (method, body) = if deflate {
            (8u16, miniz_oxide::deflate::compress_to_vec(data, 6))
        } else {
            (0u16, data.clone())
        };
        let crc = crc32(data);
        let offset = out.len() as u32;
        let mut header = Vec::new();
        header.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04]);
        header.extend_from_slice(&20u16.to_le_bytes()); // version needed
        header.extend_from_slice(&0u16.to_le_bytes()); // flags
        header.extend_from_slice(&method.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // time
        header.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&(body.len() as u32).to_le_bytes());
        header.extend_from_slice(&(data.len() as u32).to_le_bytes());
        header.extend_from_slice(&(name.len() as u16).to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&body);
        central.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02]);
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&header[4..28]); // needed .. name length
        central.extend_from_slice(&0u16.to_le_bytes()); // extra length
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    let n = members.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The archive with member `name` replaced by `f(old bytes)`.
pub(crate) fn edit_member(
    archive: &[u8],
    name: &str,
    f: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let mut members = read_zip(archive);
    let slot = members
        .iter_mut()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no member {name}"));
    let old = std::mem::take(&mut slot.1);
    slot.1 = f(old);
    write_zip(&members, false)
}

/// The archive with `config.json` edited as JSON.
pub(crate) fn edit_config(archive: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    edit_member(archive, "config.json", |bytes| {
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("config.json");
        f(&mut v);
        serde_json::to_vec(&v).expect("serialize")
    })
}

/// A scratch file path for `tag`, unique to this process.
pub(crate) fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("parallax-keras-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(format!("{tag}.keras"))
}

/// Imports archive bytes through the public API (via a scratch file named after `tag`).
pub(crate) fn import(tag: &str, bytes: &[u8]) -> Result<Model, ImportError> {
    let path = scratch(tag);
    std::fs::write(&path, bytes).expect("write scratch file");
    let r = load_keras(&path);
    let _ = std::fs::remove_file(&path);
    r
}

/// The JSON value at the first layer (recursively) whose config name is `layer`.
pub(crate) fn layer_config<'a>(
    v: &'a mut serde_json::Value,
    layer: &str,
) -> &'a mut serde_json::Value {
    fn find<'a>(v: &'a mut serde_json::Value, layer: &str) -> Option<&'a mut serde_json::Value> {
        let is_it = v.get("class_name").is_some()
            && v.get("config")
                .and_then(|c| c.get("name"))
                .and_then(|n| n.as_str())
                == Some(layer);
        if is_it {
            return Some(v);
        }
        match v {
            serde_json::Value::Object(m) => m.values_mut().find_map(|x| find(x, layer)),
            serde_json::Value::Array(a) => a.iter_mut().find_map(|x| find(x, layer)),
            _ => None,
        }
    }
    find(v, layer).unwrap_or_else(|| panic!("no layer {layer} in config.json"))
}

/// Relative-or-absolute closeness for test values.
pub(crate) fn close(a: f64, b: f64, atol: f64, rtol: f64) -> bool {
    (a - b).abs() <= atol + rtol * b.abs()
}
