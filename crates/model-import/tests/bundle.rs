//! Bundle directories: what each side must contain, and cross-file consistency checks.

use std::path::{Path, PathBuf};

use model_import::{ErrorKind, load_bundle};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// A scratch bundle directory made of copies of fixture files (removed on drop).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "parallax-bundle-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn copy(&self, from: &Path, name: &str) {
        std::fs::copy(from, self.0.join(name)).unwrap();
    }
    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[track_caller]
fn check_err(dir: &Path, want: fn(&ErrorKind) -> bool, needle: &str) {
    let err = load_bundle(dir).unwrap_err();
    let msg = err.to_string();
    assert!(want(&err.kind), "unexpected kind: {msg}");
    assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
    assert!(!msg.contains('\n'), "not one line: {msg}");
}

#[test]
fn not_a_bundle() {
    let s = Scratch::new("empty");
    check_err(
        &s.0,
        |k| matches!(k, ErrorKind::Missing(_)),
        "model.keras or model.onnx",
    );
}

#[test]
fn torch_bundle_needs_train_json() {
    let s = Scratch::new("no-train");
    s.copy(&models().join("seed-mlp/torch/model.onnx"), "model.onnx");
    check_err(&s.0, |k| matches!(k, ErrorKind::Missing(_)), "train.json");
}

#[test]
fn both_sides_in_one_directory() {
    let s = Scratch::new("both");
    s.copy(&models().join("seed-mlp/torch/model.onnx"), "model.onnx");
    s.copy(&models().join("seed-mlp/keras/model.keras"), "model.keras");
    check_err(&s.0, |k| matches!(k, ErrorKind::Malformed(_)), "both");
}

#[test]
fn wrong_train_json() {
    let s = Scratch::new("bad-train");
    s.copy(&models().join("seed-mlp/torch/model.onnx"), "model.onnx");
    s.write(
        "train.json",
        br#"{"optimizer": {"class_name": "Adam"}, "epochs": "five"}"#,
    );
    check_err(&s.0, |k| matches!(k, ErrorKind::Json(_)), "train.json");
}

#[test]
fn wrong_fit_json() {
    let s = Scratch::new("bad-fit");
    s.copy(&models().join("seed-mlp/keras/model.keras"), "model.keras");
    s.write("fit.json", b"{\"batch_size\": 32,");
    check_err(&s.0, |k| matches!(k, ErrorKind::Json(_)), "fit.json");
}

#[test]
fn inputs_must_match_the_model() {
    let s = Scratch::new("bad-inputs");
    s.copy(&models().join("seed-mlp/keras/model.keras"), "model.keras");
    // The CNN's inputs are (N, 8, 8, 1); the MLP wants (N, 64).
    s.copy(
        &models().join("cnn/keras/inputs.safetensors"),
        "inputs.safetensors",
    );
    check_err(
        &s.0,
        |k| matches!(k, ErrorKind::ShapeMismatch { .. }),
        "inputs.safetensors",
    );
}

#[test]
fn state_dict_shapes_must_match_the_onnx_file() {
    let s = Scratch::new("bad-sd");
    s.copy(&models().join("seed-mlp/torch/model.onnx"), "model.onnx");
    s.copy(&models().join("seed-mlp/torch/train.json"), "train.json");
    // Same parameter names (fc1/fc2 do not exist in the CNN) would not clash; build one that does.
    let sd = models().join("seed-mlp/torch/state_dict.safetensors");
    let bytes = std::fs::read(&sd).unwrap();
    let f = model_import::parse_safetensors(&bytes, &sd).unwrap();
    let w = f.get("fc1.weight").unwrap();
    assert_eq!(w.shape(), &[128, 64]);
    // Write a state_dict whose fc1.weight is transposed (a classic porting mistake).
    let header = r#"{"fc1.weight":{"dtype":"F32","shape":[64,128],"data_offsets":[0,32768]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, 32768));
    s.write("state_dict.safetensors", &out);
    check_err(
        &s.0,
        |k| matches!(k, ErrorKind::ShapeMismatch { .. }),
        "fc1.weight",
    );
}

#[test]
fn fixture_bundles_load_with_their_training_configs() {
    for fx in ["seed-mlp", "cnn", "rnn", "functional"] {
        let k = load_bundle(&models().join(fx).join("keras")).unwrap();
        let t = load_bundle(&models().join(fx).join("torch")).unwrap();
        let kt = k.model.training.as_ref().unwrap();
        let tt = t.model.training.as_ref().unwrap();
        assert!(kt.optimizer.is_some(), "{fx}: keras optimizer");
        assert!(tt.optimizer.is_some(), "{fx}: torch optimizer");
        assert!(k.inputs.is_some() && t.inputs.is_some(), "{fx}: inputs");
        assert!(t.state_dict.is_some(), "{fx}: state_dict");
        // The ONNX initializers equal the state_dict values: no note about differences.
        assert!(
            !t.model.notes.iter().any(|n| n.contains("differs")),
            "{fx}: {:?}",
            t.model.notes
        );
    }
}

/// `models/cases/spatial-dropout/torch`: torch exported its `nn.Dropout2d(0.2)` (module `sdrop`,
/// between the first ReLU and the max pool) as a no-op node; train.json's `spatial_dropout` puts
/// the channel-wise dropout back at that place with that rate, as the Keras side's
/// `SpatialDropout2D(0.2)`.
#[test]
fn spatial_dropout_is_restored_from_train_json() {
    use model_ir::{DataLayout, Op};
    let case = models().join("cases/spatial-dropout");
    let torch = load_bundle(&case.join("torch")).unwrap();
    let m = &torch.model;
    let drops: Vec<_> = m
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Dropout { .. }))
        .collect();
    assert_eq!(drops.len(), 1, "{:?}", drops);
    let d = drops[0];
    assert_eq!(d.name, "sdrop");
    assert_eq!(d.origin.name, "/sdrop/Dropout");
    let Op::Dropout { rate, spatial } = &d.op else {
        unreachable!()
    };
    assert!((rate - 0.2).abs() < 1e-9, "rate {rate}");
    assert_eq!(*spatial, Some(DataLayout::ChannelsFirst));
    // at its place: it consumes the first ReLU's output and feeds the max pool
    let producer = m
        .nodes
        .iter()
        .find(|n| n.outputs.contains(&d.inputs[0]))
        .expect("the dropout's input has a producer");
    assert!(
        matches!(producer.op, Op::Activation { .. }),
        "{:?}",
        producer.op
    );
    let consumer = m
        .nodes
        .iter()
        .find(|n| n.inputs.contains(&d.outputs[0]))
        .expect("the dropout's output has a consumer");
    assert!(matches!(consumer.op, Op::Pool { .. }), "{:?}", consumer.op);
    assert!(
        !m.notes.iter().any(|n| n.contains("training_mode=false")),
        "{:?}",
        m.notes
    );
    assert!(m.notes.iter().any(|n| n.contains("nn.Dropout2d(p=0.2)")));
    // the Keras side of the pair has the same layer, channels-last
    let keras = load_bundle(&case.join("keras")).unwrap();
    let k = keras
        .model
        .node("sdrop")
        .expect("Keras SpatialDropout2D layer `sdrop`");
    assert!(matches!(
        k.op,
        Op::Dropout { rate, spatial: Some(DataLayout::ChannelsLast) } if (rate - 0.2).abs() < 1e-9
    ));
}

#[test]
fn malformed_spatial_dropout_records() {
    let case = models().join("cases/spatial-dropout/torch");
    let train = std::fs::read_to_string(case.join("train.json")).unwrap();
    let bad = [
        // the node the record names is not in model.onnx
        (
            train.replace("\"/sdrop/Dropout\"", "\"/sdrop/Nowhere\""),
            "has no node `/sdrop/Nowhere`",
        ),
        // the node is there but drops with another rate
        (
            train.replace("\"p\": 0.2", "\"p\": 0.3"),
            "train.json says p = 0.3",
        ),
        // the node is not a dropout
        (
            train.replace("\"/sdrop/Dropout\"", "\"/conv1/Conv\""),
            "not the no-op Dropout",
        ),
        // a record without its rate
        (
            train.replace("\"p\": 0.2,", ""),
            "`spatial_dropout[0]` lacks `p`",
        ),
        // not a list
        (
            train
                .replace("\"spatial_dropout\": [", "\"spatial_dropout\": {\"x\": [")
                .replace("  ]\n}", "  ]}\n}"),
            "`spatial_dropout` must be a list or null",
        ),
    ];
    for (i, (json, needle)) in bad.iter().enumerate() {
        assert_ne!(json, &train, "case {i} did not change train.json");
        let s = Scratch::new(&format!("spatial-{i}"));
        s.copy(&case.join("model.onnx"), "model.onnx");
        s.write("train.json", json.as_bytes());
        let err = load_bundle(&s.0).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("train.json"), "{msg}");
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert!(!msg.contains('\n'), "not one line: {msg}");
    }
}
