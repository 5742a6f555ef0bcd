//! Test helpers: a minimal safetensors reader (header length, JSON header, little-endian
//! F32 data and I64 slice indices) so the tests need no file-format dependency, and the
//! trajectory list.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use optim::replay::Trajectory;

/// String metadata of a safetensors file.
pub type Metadata = BTreeMap<String, String>;
/// Named F32 tensors: (shape, row-major data).
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;
/// Named I64 tensors (`slices.<t>.<p>.indices`).
pub type IntTensors = BTreeMap<String, (Vec<usize>, Vec<i64>)>;

pub fn trajectories_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/trajectories")
}

/// Every committed trajectory file, sorted.
pub fn trajectory_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(trajectories_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "safetensors"));
    v.sort();
    v
}

/// Read a safetensors file's metadata, F32 and I64 tensors.
pub fn read_safetensors(path: &Path) -> Result<(Metadata, Tensors, IntTensors), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or("short file")?
            .try_into()
            .map_err(|_| "short file")?,
    ) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..8 + n).ok_or("short header")?)
            .map_err(|e| e.to_string())?;
    let data = &bytes[8 + n..];
    let mut meta = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    let mut ints = BTreeMap::new();
    for (k, v) in header.as_object().ok_or("header is not an object")? {
        if k == "__metadata__" {
            for (mk, mv) in v.as_object().ok_or("bad metadata")? {
                meta.insert(mk.clone(), mv.as_str().unwrap_or_default().to_string());
            }
            continue;
        }
        let off = &v["data_offsets"];
        let (a, b) = (
            off[0].as_u64().ok_or("offset")? as usize,
            off[1].as_u64().ok_or("offset")? as usize,
        );
        let raw = data.get(a..b).ok_or("offsets out of range")?;
        let shape = v["shape"]
            .as_array()
            .ok_or("shape")?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or("shape"))
            .collect::<Result<Vec<_>, _>>()?;
        match v["dtype"].as_str() {
            Some("F32") => {}
            Some("I64") => {
                let data = raw
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                ints.insert(k.clone(), (shape, data));
                continue;
            }
            _ => return Err(format!("{k}: dtype {}", v["dtype"])),
        }
        tensors.insert(
            k.clone(),
            (
                shape,
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
        );
    }
    Ok((meta, tensors, ints))
}

pub fn load(path: &Path) -> Trajectory {
    let (meta, tensors, ints) =
        read_safetensors(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Trajectory::from_all_parts(&meta, &tensors, &ints)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn load_named(stem: &str) -> Trajectory {
    load(&trajectories_dir().join(format!("{stem}.safetensors")))
}
