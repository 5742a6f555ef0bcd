//! ONNX models, as written by `torch.onnx.export` (TorchScript and dynamo exporters) and by
//! Keras `model.export(format="onnx")` (tf2onnx), lifted into [`model_ir::Model`].
//!
//! The pipeline: [`decode`] the protobuf from memory (sizes checked before allocating),
//! [`graph`] indexes it and [`eval`] folds every constant subgraph (shape arithmetic, the
//! LSTM/GRU gate reorders, pads), [`patterns`] finds layers torch spells as several ops
//! (GELU, SiLU, Mish, LayerNorm before opset 17, GroupNorm), [`lift`] turns each torch layer
//! into one IR node named after its module path ([`naming`]), and its `rnn` family traces recurrent
//! weights back to the state_dict tensors. Everything the importer cannot be sure of, or had
//! to change, is recorded in `Model::notes`.

mod decode;
mod eval;
mod graph;
mod lift;
mod naming;
mod patterns;
mod value;

use std::path::Path;

use model_ir::{Framework, Model, Op};

use crate::error::{ErrorKind, ImportError};
use graph::Graph;
use lift::Lifter;
use naming::{Exporter, Scopes};

/// Imports an ONNX model held in memory; `path` names the file in errors.
pub(crate) fn import_onnx(bytes: &[u8], path: &Path) -> Result<Model, ImportError> {
    import(bytes).map_err(|kind| ImportError::new(path, kind))
}

fn import(bytes: &[u8]) -> Result<Model, ErrorKind> {
    let model = decode::decode_model(bytes)?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| {
            o.domain
                .as_deref()
                .is_none_or(|d| d.is_empty() || d == "ai.onnx")
        })
        .and_then(|o| o.version)
        .ok_or_else(|| ErrorKind::Missing("opset_import for the default ONNX domain".into()))?;
    let producer_name = model.producer_name.clone().unwrap_or_default();
    let producer_version = model.producer_version.clone().unwrap_or_default();
    let graph_proto = model
        .graph
        .ok_or_else(|| ErrorKind::Missing("graph: the file holds no ONNX graph".into()))?;
    let exporter = Exporter::detect(&producer_name, &graph_proto.node);
    let scopes = Scopes::new(exporter.clone(), &graph_proto.node);
    let graph_name = graph_proto.name.clone().unwrap_or_default();
    let g = Graph::build(graph_proto, opset, bytes.len())?;
    let framework = if exporter == Exporter::Tf2Onnx {
        Framework::Keras
    } else {
        Framework::Torch
    };

    let groups = patterns::find(&g);
    let mut l = Lifter::new(&g, &scopes, framework, groups);
    l.run()?;
    let outputs = l.model_outputs()?;

    let mut notes = vec![format!(
        "ONNX opset {opset} (IR version {}), written by {}",
        model.ir_version.unwrap_or(0),
        producer(&producer_name, &producer_version)
    )];
    exporter_notes(&exporter, &scopes, &g, &l, &mut notes);
    notes.append(&mut l.notes);

    let mut m = Model::new(framework, graph_name);
    m.inputs = g.inputs.clone();
    m.outputs = outputs;
    m.nodes = l.nodes;
    m.notes = notes;
    m.producer = (!producer_name.is_empty()).then(|| producer(&producer_name, &producer_version));
    m.validate()
        .map_err(|e| ErrorKind::Malformed(format!("the lifted graph is inconsistent: {e}")))?;
    Ok(m)
}

fn producer(name: &str, version: &str) -> String {
    match (name.is_empty(), version.is_empty()) {
        (true, _) => "an unnamed producer".into(),
        (false, true) => name.to_string(),
        (false, false) => format!("{name} {version}"),
    }
}

/// Notes on what the exporter did to the model: folds, renames, dropped layers.
fn exporter_notes(
    exporter: &Exporter,
    scopes: &Scopes,
    g: &Graph,
    l: &Lifter<'_>,
    notes: &mut Vec<String>,
) {
    let has_op = |op: &str| (0..g.nodes.len()).any(|i| g.op(i) == op);
    let bns: Vec<&model_ir::Node> = l
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::BatchNorm { .. }))
        .collect();
    match exporter {
        Exporter::Tf2Onnx => {
            notes.push(
                "Keras model exported with model.export(format=\"onnx\") (tf2onnx): an inference graph. BatchNormalization is folded into Conv weights or Mul/Add constants, Dropout is removed, zero biases are dropped, and initializers are named after TensorFlow ops; read the .keras archive for training semantics".into(),
            );
            if let Some(sfx) = scopes.stripped_suffix() {
                notes.push(format!(
                    "layer names are TensorFlow name scopes with the suffix `{sfx}` TF added to every scope removed"
                ));
            }
        }
        Exporter::TorchDynamo => notes.push(
            "written by torch.onnx.export(dynamo=True): the graph is traced in eval mode and optimized by onnxscript".into(),
        ),
        Exporter::Other(p) => notes.push(format!(
            "producer `{p}` is neither torch nor tf2onnx; the graph is read as a torch export"
        )),
        Exporter::TorchScript => {}
    }
    if !l.bn_momenta.is_empty() {
        let list: Vec<String> = l
            .bn_momenta
            .iter()
            .map(|(n, m)| {
                format!(
                    "{n} {m} = torch momentum {}",
                    model_ir::conventions::fmt_num(1.0 - m)
                )
            })
            .collect();
        notes.push(format!(
            "BatchNormalization momentum is ONNX's keep-old form (running = m·running + (1 − m)·batch), stored as MomentumForm::KeepOld; torch's momentum is 1 − m: {}",
            list.join(", ")
        ));
        if exporter.is_torch() {
            notes.push("BatchNorm num_batches_tracked buffers are not exported to ONNX".into());
        }
        let inference: Vec<&str> = bns
            .iter()
            .filter(|n| {
                matches!(
                    n.op,
                    Op::BatchNorm {
                        training_mode: Some(false) | None,
                        ..
                    }
                )
            })
            .map(|n| n.name.as_str())
            .collect();
        if !inference.is_empty() && exporter.is_torch() {
            notes.push(format!(
                "BatchNormalization exported in inference mode (training_mode=0 or absent): {}",
                inference.join(", ")
            ));
        }
    }
    if !exporter.is_torch() {
        return;
    }
    let fused: Vec<&str> = l
        .rewritten
        .iter()
        .filter(|(_, rule)| rule.contains("BatchNorm"))
        .map(|(n, _)| n.as_str())
        .collect();
    let renamed_convs: Vec<&str> = l
        .renamed
        .iter()
        .filter(|(_, node)| {
            l.nodes.iter().any(|n| {
                n.name == *node
                    && matches!(
                        n.op,
                        Op::Conv { .. } | Op::DepthwiseConv { .. } | Op::ConvTranspose { .. }
                    )
            })
        })
        .map(|(_, node)| node.as_str())
        .collect();
    let folded_suspect =
        !fused.is_empty() || (!has_op("BatchNormalization") && !renamed_convs.is_empty());
    if folded_suspect {
        let mut convs: Vec<&str> = fused.iter().chain(&renamed_convs).copied().collect();
        convs.sort_unstable();
        convs.dedup();
        notes.push(format!(
            "no BatchNormalization nodes: eval-mode export folds BatchNorm into the preceding Conv ({}); BatchNorm parameters, running statistics and training semantics are lost",
            convs.join(", ")
        ));
    }
    for (node, rule) in &l.rewritten {
        if rule.contains("BatchNorm") {
            notes.push(format!(
                "{node}: the exporter's optimizer folded a BatchNorm into this layer ({rule}); its parameters keep their state_dict names but hold the folded values"
            ));
        } else {
            notes.push(format!(
                "{node}: rewritten by the exporter's optimizer ({rule})"
            ));
        }
    }
    let eval_mode = folded_suspect
        || *exporter == Exporter::TorchDynamo
        || !l.renamed.is_empty()
        || bns.iter().any(|n| {
            matches!(
                n.op,
                Op::BatchNorm {
                    training_mode: Some(false),
                    ..
                }
            )
        });
    if eval_mode && !has_op("Dropout") {
        notes.push("no Dropout nodes: an eval-mode export removes Dropout, so any dropout layers and rates are lost".into());
    }
    if !l.renamed.is_empty() {
        let list: Vec<String> = l
            .renamed
            .iter()
            .map(|(p, n)| format!("{p} ({n})"))
            .collect();
        notes.push(format!(
            "initializers renamed by the exporter (not `<module>.<name>` state_dict keys): {}",
            list.join(", ")
        ));
    }
}
