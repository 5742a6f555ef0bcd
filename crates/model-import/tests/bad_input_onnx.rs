//! The ONNX importer on broken files: truncations, byte flips, bad varints, absurd or
//! inconsistent tensor sizes, external data, unknown ops, dangling references, wrong types.
//!
//! Every case must return an error of the right kind whose message names the file, and
//! nothing may panic. Broken models are made by decoding a real export
//! (`models/zoo/torch/mlp.onnx`), changing one field and encoding it again with prost.

use std::path::{Path, PathBuf};

use model_import::{ErrorKind, ImportError};
use onnx_proto::Message;
use onnx_proto::onnx::{ModelProto, StringStringEntryProto};

fn fixture() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/zoo/torch/mlp.onnx");
    std::fs::read(path).unwrap()
}

fn decoded() -> ModelProto {
    ModelProto::decode(fixture().as_slice()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bad_input_onnx-{name}.onnx"))
}

/// The variant name of an error kind.
fn kind(k: &ErrorKind) -> &'static str {
    match k {
        ErrorKind::Io(_) => "Io",
        ErrorKind::Truncated(_) => "Truncated",
        ErrorKind::Malformed(_) => "Malformed",
        ErrorKind::TooLarge(_) => "TooLarge",
        ErrorKind::Json(_) => "Json",
        ErrorKind::Missing(_) => "Missing",
        ErrorKind::ShapeMismatch { .. } => "ShapeMismatch",
        ErrorKind::UnsupportedLayer { .. } => "UnsupportedLayer",
        ErrorKind::UnsupportedOp { .. } => "UnsupportedOp",
        ErrorKind::Unsupported(_) => "Unsupported",
    }
}

/// What an import must give.
#[derive(Debug, Clone, Copy)]
enum Expect<'a> {
    /// A model.
    Model,
    /// An error of one of these kinds whose message contains the text.
    Err(&'a [&'a str], &'a str),
    /// Either, as long as nothing panics and an error names the file.
    NoPanic,
}

/// Imports `bytes` written to a file called after `name` and checks the result; an error
/// must also name the file on one line. Returns the error, if any.
#[track_caller]
fn check(name: &str, bytes: &[u8], expect: Expect<'_>) -> Option<ImportError> {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    let result = model_import::load_onnx(&path);
    let _ = std::fs::remove_file(&path);
    let err = match (result, expect) {
        (Ok(_), Expect::Model | Expect::NoPanic) => return None,
        (Ok(_), Expect::Err(..)) => panic!("{name}: imported without error"),
        (Err(e), _) => e,
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&*path.to_string_lossy()),
        "{name}: message does not name the file: {msg}"
    );
    assert!(
        !msg.contains('\n'),
        "{name}: message is not one line: {msg}"
    );
    match expect {
        Expect::Model => panic!("{name}: {msg}"),
        Expect::Err(kinds, text) => {
            assert!(
                kinds.contains(&kind(&err.kind)),
                "{name}: {} is not one of {kinds:?}: {msg}",
                kind(&err.kind)
            );
            assert!(msg.contains(text), "{name}: message lacks `{text}`: {msg}");
        }
        Expect::NoPanic => {}
    }
    Some(err)
}

fn encode(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

#[test]
fn the_fixture_itself_imports() {
    check("ok", &fixture(), Expect::Model);
}

#[test]
fn truncated_at_many_points() {
    let bytes = fixture();
    let mut truncated = 0;
    for cut in (0..bytes.len())
        .step_by(37)
        .chain([1, 2, bytes.len() / 2, bytes.len() - 1])
    {
        // A cut exactly between two top-level fields leaves a shorter but well-formed message.
        let kinds = &["Truncated", "Missing", "Malformed"];
        let err = check(&format!("cut{cut}"), &bytes[..cut], Expect::Err(kinds, ""));
        truncated += usize::from(err.is_some_and(|e| kind(&e.kind) == "Truncated"));
    }
    assert!(
        truncated > 10,
        "only {truncated} cuts were reported as truncation"
    );
    check(
        "cut-half",
        &bytes[..bytes.len() / 2],
        Expect::Err(&["Truncated"], "declares"),
    );
}

#[test]
fn random_byte_flips_never_panic() {
    let bytes = fixture();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..400 {
        let mut b = bytes.clone();
        for _ in 0..(1 + next() % 4) {
            let at = (next() % b.len() as u64) as usize;
            b[at] ^= 1 << (next() % 8);
        }
        // Either result is fine (a flipped weight is still a model); a panic is not.
        check("flip", &b, Expect::NoPanic);
    }
}

#[test]
fn bad_varint() {
    let mut b = vec![0x08];
    b.extend([0xff; 11]);
    check("varint", &b, Expect::Err(&["Malformed"], "varint"));
}

#[test]
fn not_onnx_at_all() {
    check("empty", &[], Expect::Err(&["Missing"], "opset_import"));
    check(
        "zip",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        Expect::Err(&["Malformed", "Truncated"], ""),
    );
    let json = b"{\"class_name\": \"Sequential\"}";
    check("json", json, Expect::Err(&["Malformed", "Truncated"], ""));
}

#[test]
fn initializer_declaring_2_pow_40_elements() {
    let mut m = decoded();
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].dims = vec![1 << 20, 1 << 20];
    check(
        "huge",
        &encode(&m),
        Expect::Err(&["TooLarge"], "fc1.weight"),
    );
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].dims = vec![i64::MAX, 4];
    check(
        "overflow",
        &encode(&m),
        Expect::Err(&["TooLarge"], "overflows"),
    );
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].dims = vec![-3];
    check(
        "negative",
        &encode(&m),
        Expect::Err(&["Malformed"], "negative dimension"),
    );
}

#[test]
fn raw_data_shorter_than_dims_imply() {
    let mut m = decoded();
    let t = &mut m.graph.as_mut().unwrap().initializer[0];
    let raw = t.raw_data.as_mut().unwrap();
    raw.truncate(raw.len() - 4);
    check(
        "short",
        &encode(&m),
        Expect::Err(&["Malformed"], "raw_data holds 508 bytes"),
    );
}

#[test]
fn external_data() {
    let mut m = decoded();
    let t = &mut m.graph.as_mut().unwrap().initializer[1];
    t.raw_data = None;
    t.data_location = Some(1);
    t.external_data = vec![StringStringEntryProto {
        key: Some("location".into()),
        value: Some("mlp.onnx.data".into()),
    }];
    check(
        "external",
        &encode(&m),
        Expect::Err(&["Unsupported"], "external data: initializer `fc1.bias`"),
    );
}

#[test]
fn unknown_op() {
    let mut m = decoded();
    let n = &mut m.graph.as_mut().unwrap().node[1];
    n.op_type = Some("FancyRelu".into());
    let err = check(
        "unknown-op",
        &encode(&m),
        Expect::Err(
            &["UnsupportedOp"],
            "unsupported op FancyRelu at node `/act1/Relu`",
        ),
    );
    assert_eq!(
        err.map(|e| e.kind),
        Some(ErrorKind::UnsupportedOp {
            node: "/act1/Relu".into(),
            op_type: "FancyRelu".into()
        })
    );
    let n = &mut m.graph.as_mut().unwrap().node[1];
    n.op_type = Some("Relu".into());
    n.domain = Some("com.microsoft".into());
    check(
        "custom-domain",
        &encode(&m),
        Expect::Err(&["UnsupportedOp"], "com.microsoft::Relu"),
    );
}

#[test]
fn reading_an_undefined_value() {
    let mut m = decoded();
    m.graph.as_mut().unwrap().node[1].input[0] = "nowhere".into();
    check(
        "undefined",
        &encode(&m),
        Expect::Err(&["Missing"], "value `nowhere` read by node `/act1/Relu`"),
    );
    let mut m = decoded();
    m.graph.as_mut().unwrap().output[0].name = Some("ghost".into());
    check(
        "undefined-output",
        &encode(&m),
        Expect::Err(&["Missing"], "graph output `ghost`"),
    );
}

#[test]
fn wrong_data_type() {
    let mut m = decoded();
    m.graph.as_mut().unwrap().initializer[0].data_type = Some(99);
    check(
        "dtype-99",
        &encode(&m),
        Expect::Err(&["Malformed"], "data type 99"),
    );
    let mut m = decoded();
    m.graph.as_mut().unwrap().initializer[0].data_type = Some(7);
    check(
        "dtype-int64",
        &encode(&m),
        Expect::Err(&["Malformed"], "INT64 need 1024"),
    );
    let mut m = decoded();
    m.graph.as_mut().unwrap().initializer[0].data_type = Some(8);
    check(
        "dtype-string",
        &encode(&m),
        Expect::Err(&["Unsupported"], "element type STRING"),
    );
}

#[test]
fn missing_pieces() {
    let mut m = decoded();
    m.opset_import.clear();
    check(
        "no-opset",
        &encode(&m),
        Expect::Err(&["Missing"], "opset_import"),
    );
    let mut m = decoded();
    m.graph = None;
    check("no-graph", &encode(&m), Expect::Err(&["Missing"], "graph"));
    let mut m = decoded();
    m.graph.as_mut().unwrap().node.swap(0, 1);
    check(
        "unsorted",
        &encode(&m),
        Expect::Err(&["Missing"], "read by node `/act1/Relu`"),
    );
}

#[test]
fn inputs_that_only_look_like_a_model() {
    // A Gemm whose weight is a graph input cannot be a Dense layer.
    let mut m = decoded();
    let g = m.graph.as_mut().unwrap();
    g.initializer.remove(0);
    let mut vi = g.input[0].clone();
    vi.name = Some("fc1.weight".into());
    g.input.push(vi);
    check(
        "weight-as-input",
        &encode(&m),
        Expect::Err(&["Unsupported"], "must be a constant"),
    );
}

#[test]
fn constant_evaluation_cannot_blow_up() {
    use onnx_proto::onnx::{AttributeProto, NodeProto, TensorProto};
    let node = |op: &str, ins: &[&str], out: &str| NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("/{out}")),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute: if op == "Concat" {
            vec![AttributeProto {
                name: Some("axis".into()),
                r#type: Some(2),
                i: Some(0),
                ..Default::default()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    // Each Concat doubles a constant: 40 of them would ask for 2^50 elements.
    let mut m = decoded();
    let g = m.graph.as_mut().unwrap();
    let mut prev = "fc1.bias".to_string();
    for k in 0..40 {
        let out = format!("c{k}");
        g.node.insert(k, node("Concat", &[&prev, &prev], &out));
        prev = out;
    }
    check(
        "concat-doubling",
        &encode(&m),
        Expect::Err(&["TooLarge"], "Concat"),
    );
    // ConstantOfShape of a huge constant shape.
    let mut m = decoded();
    let g = m.graph.as_mut().unwrap();
    g.initializer.push(TensorProto {
        name: Some("huge_shape".into()),
        dims: vec![3],
        data_type: Some(7),
        int64_data: vec![1 << 20, 1 << 20, 1 << 10],
        ..Default::default()
    });
    g.node
        .insert(0, node("ConstantOfShape", &["huge_shape"], "zeros"));
    check(
        "constant-of-shape",
        &encode(&m),
        Expect::Err(&["TooLarge"], "a constant of shape"),
    );
}

#[test]
fn extreme_attribute_and_dimension_values_never_panic() {
    let extremes = [-1i64, 0, 7, i64::MAX, i64::MIN, 1 << 40];
    for name in ["cnn", "lstm_bi", "pad_up", "groupnorm"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../models/zoo/torch/{name}.onnx"));
        let m = ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
        let g = m.graph.as_ref().unwrap();
        for (ni, node) in g.node.iter().enumerate() {
            for ai in 0..node.attribute.len() {
                for &v in &extremes {
                    let mut mm = m.clone();
                    let a = &mut mm.graph.as_mut().unwrap().node[ni].attribute[ai];
                    a.i = a.i.map(|_| v);
                    a.f = a.f.map(|_| v as f32);
                    if let Some(x) = a.ints.first_mut() {
                        *x = v;
                    }
                    if let Some(t) = a.t.as_mut().filter(|t| !t.dims.is_empty()) {
                        t.dims[0] = v;
                    }
                    check(&format!("{name}-attr"), &encode(&mm), Expect::NoPanic);
                }
            }
        }
    }
}
