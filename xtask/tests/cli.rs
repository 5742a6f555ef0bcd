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
fn unknown_command_fails() {
    let (code, _, err) = xtask(&["frobnicate"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown command"));
}
