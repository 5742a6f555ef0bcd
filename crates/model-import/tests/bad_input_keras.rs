//! Hostile and broken `.keras` archives: each must be an `ImportError` of the right class
//! whose message names the file (and the member), never a panic, and fast.

mod keras_util;

use keras_util::{edit_config, edit_member, import, layer_config, read_zip, write_zip, zoo};
use model_import::ErrorKind;
use serde_json::{Value, json};

/// The class of an error kind, for comparisons that ignore the message.
fn class(k: &ErrorKind) -> &'static str {
    match k {
        ErrorKind::Io(_) => "io",
        ErrorKind::Truncated(_) => "truncated",
        ErrorKind::Malformed(_) => "malformed",
        ErrorKind::TooLarge(_) => "too_large",
        ErrorKind::Json(_) => "json",
        ErrorKind::Missing(_) => "missing",
        ErrorKind::ShapeMismatch { .. } => "shape_mismatch",
        ErrorKind::UnsupportedLayer { .. } => "unsupported_layer",
        ErrorKind::UnsupportedOp { .. } => "unsupported_op",
        ErrorKind::Unsupported(_) => "unsupported",
    }
}

/// Imports `bytes` as `<tag>.keras` and asserts an error of one of `classes` whose message
/// names the file and contains `needle`.
#[track_caller]
fn check(tag: &str, bytes: &[u8], classes: &[&str], needle: &str) -> ErrorKind {
    let err = match import(tag, bytes) {
        Ok(_) => panic!("{tag}: imported without error"),
        Err(e) => e,
    };
    let msg = err.to_string();
    if std::env::var_os("SHOW_ERRORS").is_some() {
        eprintln!("{msg}");
    }
    assert!(classes.contains(&class(&err.kind)), "{tag}: {msg}");
    assert!(
        msg.contains(&format!("{tag}.keras")),
        "{tag}: message does not name the file: {msg}"
    );
    assert!(
        msg.contains(needle),
        "{tag}: message lacks {needle:?}: {msg}"
    );
    assert!(!msg.contains('\n'), "{tag}: multi-line message");
    err.kind
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("pattern {needle:?} not found"))
}

fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The archive with `model.weights.h5` patched in place by `f`.
fn patch_h5(archive: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit_member(archive, "model.weights.h5", |mut h5| {
        f(&mut h5);
        h5
    })
}

#[test]
fn truncated_zip_at_several_cut_points() {
    let bytes = zoo("seq_misc");
    for cut in [
        0,
        4,
        21,
        30,
        500,
        bytes.len() / 2,
        bytes.len() - 23,
        bytes.len() - 1,
    ] {
        check(
            &format!("zip-cut-{cut}"),
            &bytes[..cut],
            &["truncated", "malformed"],
            "",
        );
    }
}

#[test]
fn corrupted_central_directory() {
    let bytes = zoo("seq_misc");
    let cd = find(&bytes, &[0x50, 0x4b, 0x01, 0x02]);
    let mut bad = bytes.clone();
    bad[cd + 1] ^= 0xFF;
    check("cd-signature", &bad, &["malformed"], "central directory");
    // The directory offset in the end record points past the end.
    let mut bad = bytes.clone();
    let eocd = bytes.len() - 22;
    bad[eocd + 16..eocd + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    check("cd-offset", &bad, &["truncated", "unsupported"], "");
    let mut bad = bytes.clone();
    bad[eocd + 16..eocd + 20].copy_from_slice(&((bytes.len() - 30) as u32).to_le_bytes());
    check("cd-offset-2", &bad, &["truncated", "malformed"], "");
    // More entries declared than the directory can hold.
    let mut bad = bytes;
    bad[eocd + 10..eocd + 12].copy_from_slice(&500u16.to_le_bytes());
    bad[eocd + 8..eocd + 10].copy_from_slice(&500u16.to_le_bytes());
    check("cd-count", &bad, &["malformed"], "members");
}

#[test]
fn not_a_zip_at_all() {
    check(
        "not-zip",
        b"this is not a zip archive, just some text bytes",
        &["malformed"],
        "zip",
    );
    let mut h5_alone = Vec::new();
    for (name, data) in read_zip(&zoo("seq_misc")) {
        if name == "model.weights.h5" {
            h5_alone = data;
        }
    }
    check("h5-alone", &h5_alone, &["malformed"], "zip");
}

#[test]
fn zip_without_config_json() {
    let members: Vec<_> = read_zip(&zoo("seq_misc"))
        .into_iter()
        .filter(|(n, _)| n != "config.json")
        .collect();
    check(
        "no-config",
        &write_zip(&members, false),
        &["missing"],
        "config.json",
    );
    let members: Vec<_> = read_zip(&zoo("seq_misc"))
        .into_iter()
        .filter(|(n, _)| n != "model.weights.h5")
        .collect();
    check(
        "no-weights",
        &write_zip(&members, false),
        &["missing"],
        "model.weights.h5",
    );
}

#[test]
fn config_json_that_is_not_json_or_has_the_wrong_shape() {
    let bytes = zoo("seq_misc");
    let not_json = edit_member(&bytes, "config.json", |_| {
        b"{\"class_name\": \"Sequential\", ".to_vec()
    });
    check("config-not-json", &not_json, &["json"], "config.json");
    let array = edit_member(&bytes, "config.json", |_| b"[1, 2, 3]".to_vec());
    check("config-array", &array, &["malformed"], "config.json");
    let no_config = edit_member(&bytes, "config.json", |_| {
        br#"{"class_name": "Sequential"}"#.to_vec()
    });
    check(
        "config-no-config",
        &no_config,
        &["malformed"],
        "config.json",
    );
    let no_layers = edit_config(&bytes, |v| {
        v["config"]["layers"] = json!("dense");
    });
    check("config-layers-string", &no_layers, &["missing"], "layers");
    let units_string = edit_config(&bytes, |v| {
        layer_config(v, "dense_1")["config"]["units"] = json!("three");
    });
    check(
        "config-units-string",
        &units_string,
        &["malformed"],
        "units",
    );
    let subclassed = edit_config(&bytes, |v| {
        v["class_name"] = json!("MyModel");
    });
    check(
        "config-subclassed",
        &subclassed,
        &["unsupported"],
        "MyModel",
    );
    let wiring = edit_config(&zoo("functional_nested"), |v| {
        let hist = &mut layer_config(v, "head_cls")["inbound_nodes"][0]["args"][0]["config"]["keras_history"];
        *hist = json!(["nowhere", 0, 0]);
    });
    check("config-bad-wiring", &wiring, &["malformed"], "head_cls");
}

#[test]
fn config_naming_a_weight_the_h5_lacks() {
    // bn_cf was saved with center=False: claiming a beta makes the config want 4 variables.
    let bytes = edit_config(&zoo("conv_channels_first"), |v| {
        layer_config(v, "bn_cf")["config"]["center"] = json!(true);
    });
    let kind = check("missing-weight", &bytes, &["missing"], "model.weights.h5");
    assert!(matches!(kind, ErrorKind::Missing(m) if m.contains("bn_cf")));
    // The other way round: the file stores a bias the config does not ask for.
    let bytes = edit_config(&zoo("conv_tf_same"), |v| {
        layer_config(v, "logits")["config"]["use_bias"] = json!(false);
    });
    check("extra-weight", &bytes, &["malformed"], "logits");
}

#[test]
fn shape_mismatch_between_config_and_weights() {
    let bytes = edit_config(&zoo("conv_tf_same"), |v| {
        layer_config(v, "logits")["config"]["units"] = json!(5);
    });
    let kind = check("units", &bytes, &["shape_mismatch"], "logits/kernel");
    assert!(
        matches!(&kind, ErrorKind::ShapeMismatch { expected, found, .. } if expected == &[4, 5] && found == &[4, 3]),
        "{kind:?}"
    );
    let bytes = edit_config(&zoo("rnn_stack"), |v| {
        layer_config(v, "gru")["config"]["units"] = json!(4);
    });
    check("gru-units", &bytes, &["shape_mismatch"], "gru");
}

#[test]
fn saving_names_out_of_order_are_caught_by_the_group_names() {
    // Swapping two Dense layers in `layers` swaps their saving names (dense, dense_1).
    let bytes = edit_config(&zoo("functional_nested"), |v| {
        let layers = v["config"]["layers"].as_array_mut().unwrap();
        let a = layers
            .iter()
            .position(|l| l["config"]["name"] == "head_cls")
            .unwrap();
        let b = layers
            .iter()
            .position(|l| l["config"]["name"] == "proj")
            .unwrap();
        layers.swap(a, b);
    });
    check("swapped", &bytes, &["malformed"], "belongs to layer");
}

#[test]
fn absurd_declared_sizes_in_the_zip() {
    let bytes = zoo("seq_misc");
    // A stored member whose declared size differs from what it holds.
    let cd = find(&bytes, &[0x50, 0x4b, 0x01, 0x02]);
    let mut bad = bytes.clone();
    bad[cd + 24..cd + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    check("stored-size", &bad, &["malformed"], "declares");
    // A deflated member that claims 4 GB from a few kB: a zip bomb's declared size.
    let deflated = write_zip(&read_zip(&bytes), true);
    let cd = find(&deflated, &[0x50, 0x4b, 0x01, 0x02]);
    let mut bomb = deflated.clone();
    bomb[cd + 24..cd + 28].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
    check("bomb", &bomb, &["too_large"], "declares");
    // A deflated member that lies low: inflation stops at the declared size + 1.
    let mut liar = deflated.clone();
    liar[cd + 24..cd + 28].copy_from_slice(&10u32.to_le_bytes());
    check("liar", &liar, &["malformed"], "more than its declared");
    // A member whose data runs past the end of the archive.
    let mut long = deflated;
    long[cd + 20..cd + 24].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    check("csize", &long, &["truncated", "too_large"], "");
}

#[test]
fn crc_mismatch_is_detected() {
    let bytes = zoo("seq_misc");
    let cd = find(&bytes, &[0x50, 0x4b, 0x01, 0x02]);
    let mut bad = bytes;
    bad[cd + 16] ^= 0x01;
    check("crc", &bad, &["malformed"], "CRC");
}

#[test]
fn absurd_dataspace_in_hdf5() {
    // conv_tf_same's stem kernel is (3, 3, 3, 4): give it 2^40 rows.
    let bytes = patch_h5(&zoo("conv_tf_same"), |h5| {
        let at = find(h5, &u64s(&[3, 3, 3, 4]));
        h5[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    });
    check("dataspace-2-40", &bytes, &["too_large"], "model.weights.h5");
    // Dimensions whose product overflows.
    let bytes = patch_h5(&zoo("conv_tf_same"), |h5| {
        let at = find(h5, &u64s(&[3, 3, 3, 4]));
        h5[at..at + 16].copy_from_slice(&u64s(&[u64::MAX / 2, u64::MAX / 2]));
    });
    check(
        "dataspace-overflow",
        &bytes,
        &["too_large"],
        "model.weights.h5",
    );
}

#[test]
fn heap_offsets_beyond_the_end_in_hdf5() {
    let bytes = patch_h5(&zoo("seq_misc"), |h5| {
        let heap = find(h5, b"HEAP");
        h5[heap + 24..heap + 32].copy_from_slice(&0x7FFF_FFFF_FFFFu64.to_le_bytes());
    });
    check("heap-address", &bytes, &["truncated"], "model.weights.h5");
    let bytes = patch_h5(&zoo("seq_misc"), |h5| {
        let heap = find(h5, b"HEAP");
        h5[heap + 8..heap + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    });
    check("heap-size", &bytes, &["truncated"], "model.weights.h5");
    let bytes = patch_h5(&zoo("seq_misc"), |h5| {
        let snod = find(h5, b"SNOD");
        h5[snod + 8..snod + 16].copy_from_slice(&0xFFFF_FFFFu64.to_le_bytes());
    });
    check("name-offset", &bytes, &["truncated"], "heap");
    // A dataset whose data address points past the end.
    let bytes = patch_h5(&zoo("seq_misc"), |h5| {
        let tree = find(h5, b"TREE");
        h5[tree + 8..tree + 16].copy_from_slice(&0x10_0000_0000u64.to_le_bytes());
        h5[tree + 16..tree + 24].copy_from_slice(&0x10_0000_0000u64.to_le_bytes());
        let entries = 0xFFFFu16.to_le_bytes();
        h5[tree + 6..tree + 8].copy_from_slice(&entries);
    });
    check(
        "btree-entries",
        &bytes,
        &["truncated", "malformed"],
        "model.weights.h5",
    );
}

#[test]
fn truncated_hdf5_at_many_cut_points() {
    let bytes = zoo("mixed_dtypes");
    let h5 = read_zip(&bytes)
        .into_iter()
        .find(|(n, _)| n == "model.weights.h5")
        .unwrap()
        .1;
    for cut in [
        0,
        7,
        8,
        40,
        95,
        96,
        300,
        800,
        h5.len() / 3,
        h5.len() / 2,
        h5.len() - 100,
        h5.len() - 1,
    ] {
        let archive = edit_member(&bytes, "model.weights.h5", |h| h[..cut].to_vec());
        check(
            &format!("h5-cut-{cut}"),
            &archive,
            &["truncated"],
            "model.weights.h5",
        );
    }
}

#[test]
fn unknown_layer_class() {
    let bytes = edit_config(&zoo("seq_misc"), |v| {
        layer_config(v, "dropout_1")["class_name"] = json!("AlphaDropout");
    });
    let kind = check(
        "unknown-class",
        &bytes,
        &["unsupported_layer"],
        "AlphaDropout",
    );
    assert_eq!(
        kind,
        ErrorKind::UnsupportedLayer {
            name: "dropout_1".into(),
            class: "AlphaDropout".into()
        }
    );
    let bytes = edit_config(&zoo("activations"), |v| {
        layer_config(v, "act_relu")["config"]["activation"] = json!("squareplus");
    });
    check("unknown-activation", &bytes, &["unsupported"], "squareplus");
    let bytes = edit_config(&zoo("conv_tf_same"), |v| {
        layer_config(v, "up_sampling2d")["config"]["interpolation"] = json!("lanczos5");
    });
    check(
        "unknown-interpolation",
        &bytes,
        &["unsupported"],
        "lanczos5",
    );
}

#[test]
fn shared_layers_are_unsupported() {
    let bytes = edit_config(&zoo("functional_nested"), |v| {
        let nodes = layer_config(v, "head_cls")["inbound_nodes"]
            .as_array_mut()
            .unwrap();
        let again: Value = nodes[0].clone();
        nodes.push(again);
    });
    check("shared", &bytes, &["unsupported"], "2 times");
}

#[test]
fn truncating_and_flipping_the_weights_never_panics() {
    let bytes = zoo("mixed_dtypes");
    let members = read_zip(&bytes);
    let h5_index = members
        .iter()
        .position(|(n, _)| n == "model.weights.h5")
        .unwrap();
    let h5 = members[h5_index].1.clone();
    let run = |tag: &str, data: Vec<u8>| {
        let mut m = members.clone();
        m[h5_index].1 = data;
        // Ok or Err are both fine; a panic fails the test.
        let _ = import(tag, &write_zip(&m, false));
    };
    for cut in (0..h5.len()).step_by(97) {
        run("fuzz-cut", h5[..cut].to_vec());
    }
    // The zip structure itself: local headers at the start, central directory at the end.
    let end = bytes.len().saturating_sub(400);
    for pos in (0..200).chain(end..bytes.len()) {
        let mut b = bytes.clone();
        b[pos] ^= 0xFF;
        let _ = import("fuzz-zip", &b);
    }
    for pos in (0..h5.len()).step_by(13) {
        for flip in [0xFFu8, 0x80] {
            let mut d = h5.clone();
            d[pos] ^= flip;
            run("fuzz-flip", d);
        }
    }
}
