//! The `xtask` binary as a user runs it: exit codes and one-line errors.

use std::path::Path;
use std::process::Command;

fn xtask(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_path_is_a_one_line_error() {
    let (code, _, err) = xtask(&["inspect", "models/nope.keras"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("models/nope.keras"), "{err}");
}

#[test]
fn truncated_model_is_a_one_line_error() {
    let dir = std::env::temp_dir().join(format!("parallax-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (src, name) in [
        ("models/seed-mlp/keras/model.keras", "cut.keras"),
        ("models/seed-mlp/torch/model.onnx", "cut.onnx"),
        (
            "models/seed-mlp/torch/state_dict.safetensors",
            "cut.safetensors",
        ),
    ] {
        let bytes = std::fs::read(root.join(src)).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let (code, _, err) = xtask(&["inspect", p.to_str().unwrap()]);
        assert_ne!(code, 0, "{name}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.contains(name), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_command_is_a_usage_error() {
    let (code, _, err) = xtask(&["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unrecognized subcommand"), "{err}");
}

/// A copy of the seed example's two bundles in a fresh directory, for corrupting.
fn seed_copy(tag: &str) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("parallax-cli-{tag}-{}", std::process::id()));
    for side in ["keras", "torch"] {
        let from = root.join("models/seed-mlp").join(side);
        let to = dir.join(side);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    dir
}

#[test]
fn compare_writes_its_reports_and_exits_zero() {
    let dir = seed_copy("ok");
    let out = dir.join("report");
    let json = dir.join("d.json");
    let (code, stdout, err) = xtask(&[
        "compare",
        dir.join("keras").to_str().unwrap(),
        dir.join("torch").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--steps",
        "40",
        "--seeds",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("Verdict:"), "{stdout}");
    for f in ["report.md", "report.html", "report.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !html.contains("https://") && !html.contains("src=\"http"),
        "HTML must be self-contained"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["findings", "forward", "training", "noise_floor"] {
        assert!(v.get(key).is_some(), "JSON lacks {key}");
    }
    let shares: Vec<f64> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["impact"]["share"].as_f64())
        .collect();
    assert!(!shares.is_empty());
    assert!(
        shares.windows(2).all(|w| w[0] + 1e-12 >= w[1]),
        "findings not sorted by impact: {shares:?}"
    );
    assert_eq!(v["findings"][0]["id"], "double-softmax");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_bad_input_is_a_one_line_error() {
    let dir = seed_copy("bad");
    let k = dir.join("keras");
    let t = dir.join("torch");
    let run = || {
        xtask(&[
            "compare",
            k.to_str().unwrap(),
            t.to_str().unwrap(),
            "--steps",
            "20",
            "--seeds",
            "1",
        ])
    };
    // A missing bundle.
    let (code, _, err) = xtask(&["compare", "models/nope", t.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("models/nope"), "{err}");
    // One file at a time made bad, then restored.
    for (file, bad) in [
        ("keras/fit.json", b"{\"batch_size\": \"lots\"}".to_vec()),
        ("torch/train.json", b"{\"optimizer\": 3".to_vec()),
        ("keras/inputs.safetensors", vec![0xff; 40]),
        ("torch/model.onnx", b"\x08\x07\x12".to_vec()),
    ] {
        let p = dir.join(file);
        let good = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bad).unwrap();
        let (code, _, err) = run();
        std::fs::write(&p, &good).unwrap();
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert_ne!(code, 0, "{file}: accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{file}: {err}");
        assert!(err.contains(name), "{file}: {err}");
    }
    // Arguments: one bundle only is a usage error (clap's, exit 2).
    let (code, _, err) = xtask(&["compare", k.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Usage: cargo xtask compare"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
