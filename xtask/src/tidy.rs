//! Repository hygiene checks that run under `cargo test`.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "target" && name != "generated" && !name.starts_with('.') {
                    rust_files(&p, out);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }

    /// Every Rust file starts with a `//!` doc saying what it owns (generated code excepted).
    #[test]
    fn every_rust_file_has_a_module_doc() {
        let root = crate::project_root();
        let mut files = Vec::new();
        rust_files(&root.join("crates"), &mut files);
        rust_files(&root.join("xtask"), &mut files);
        assert!(files.len() > 5, "found only {} files", files.len());
        let missing: Vec<String> = files
            .iter()
            .filter(|f| {
                std::fs::read_to_string(f)
                    .map(|s| !s.trim_start().starts_with("//!"))
                    .unwrap_or(true)
            })
            .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
            .collect();
        assert!(missing.is_empty(), "files without a `//!` doc: {missing:?}");
    }

    /// README names the two set-up commands, and .ci/run runs the README's test command.
    #[test]
    fn readme_and_ci_agree() {
        let root = crate::project_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap_or_default();
        assert!(readme.contains("cargo xtask compare"));
        assert!(readme.contains("cargo xtask inspect"));
        for cmd in [
            "cargo fmt --all -- --check",
            "cargo clippy --workspace --all-targets -- -D warnings",
            "cargo test --workspace",
        ] {
            assert!(readme.contains(cmd), "README lacks `{cmd}`");
            assert!(ci.contains(cmd), ".ci/run lacks `{cmd}`");
        }
    }
}
