//! Which exporter wrote a file, and the torch module path (or Keras layer name) behind each
//! ONNX node.
//!
//! * torch's TorchScript exporter names nodes `/<module path with '/'>/<Op>_<n>`
//!   (`/features/0/Conv`, `/Relu_1` for a functional call at the top level);
//! * the dynamo exporter records `pkg.torch.onnx.name_scopes` in the node's metadata
//!   (`['', 'fc1', 'linear']`: root, module path, aten op);
//! * tf2onnx (Keras `model.export(format="onnx")`) names nodes after TensorFlow ops,
//!   `<model>/<layer>/<op>`, where TF may have suffixed every scope with `_1`.

use onnx_proto::onnx::NodeProto;

/// The program that wrote the file, from `producer_name` and the node metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exporter {
    /// `torch.onnx.export(..., dynamo=False)`.
    TorchScript,
    /// `torch.onnx.export(..., dynamo=True)`.
    TorchDynamo,
    /// tf2onnx, as used by Keras `model.export(format="onnx")`.
    Tf2Onnx,
    /// Anything else, by producer name.
    Other(String),
}

impl Exporter {
    pub(crate) fn detect(producer: &str, nodes: &[NodeProto]) -> Exporter {
        let p = producer.to_ascii_lowercase();
        if p == "pytorch" {
            let dynamo = nodes.iter().any(|n| {
                n.metadata_props.iter().any(|m| {
                    m.key
                        .as_deref()
                        .is_some_and(|k| k.starts_with("pkg.torch.onnx"))
                })
            });
            if dynamo {
                Exporter::TorchDynamo
            } else {
                Exporter::TorchScript
            }
        } else if p.contains("tf2onnx") || p.contains("keras2onnx") {
            Exporter::Tf2Onnx
        } else {
            Exporter::Other(producer.to_string())
        }
    }

    pub(crate) fn is_torch(&self) -> bool {
        matches!(self, Exporter::TorchScript | Exporter::TorchDynamo)
    }
}

/// What the naming needs to know about the whole file.
#[derive(Debug, Clone)]
pub(crate) struct Scopes {
    exporter: Exporter,
    /// tf2onnx: the model's own scope (first path component) and the suffix TF appended to
    /// every scope (`_1`), when every scope carries the same one.
    keras_model_scope: Option<String>,
    keras_suffix: Option<String>,
}

impl Scopes {
    pub(crate) fn new(exporter: Exporter, nodes: &[NodeProto]) -> Scopes {
        let mut keras_model_scope = None;
        let mut keras_suffix = None;
        if exporter == Exporter::Tf2Onnx {
            let paths: Vec<Vec<&str>> = nodes
                .iter()
                .filter_map(|n| n.name.as_deref())
                .map(|n| n.split('/').collect::<Vec<_>>())
                .filter(|p| p.len() >= 3)
                .collect();
            let mut firsts: Vec<&str> = paths.iter().map(|p| p[0]).collect();
            firsts.sort_unstable();
            firsts.dedup();
            if let [model] = firsts.as_slice() {
                keras_model_scope = Some(model.to_string());
                let suffix = |s: &str| {
                    s.rfind('_')
                        .map(|i| s[i..].to_string())
                        .filter(|x| x[1..].chars().all(|c| c.is_ascii_digit()) && x.len() > 1)
                };
                let model_suffix = suffix(model);
                if let Some(sfx) = model_suffix
                    && paths
                        .iter()
                        .all(|p| p[1].ends_with(&sfx) && p[1].len() > sfx.len())
                {
                    keras_suffix = Some(sfx);
                }
            }
        }
        Scopes {
            exporter,
            keras_model_scope,
            keras_suffix,
        }
    }

    /// Whether tf2onnx scope suffixes are stripped (for the notes).
    pub(crate) fn stripped_suffix(&self) -> Option<&str> {
        self.keras_suffix.as_deref()
    }

    /// The torch module path or Keras layer name a node belongs to, if its name says.
    pub(crate) fn module(&self, node: &NodeProto) -> Option<String> {
        let name = node.name.as_deref().unwrap_or("");
        match self.exporter {
            Exporter::TorchDynamo => {
                let scopes = node
                    .metadata_props
                    .iter()
                    .find(|m| m.key.as_deref() == Some("pkg.torch.onnx.name_scopes"))
                    .and_then(|m| m.value.as_deref())?;
                let parts = parse_py_list(scopes);
                if parts.len() < 3 {
                    return None;
                }
                let path: Vec<&str> = parts[1..parts.len() - 1]
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect();
                (!path.is_empty()).then(|| path.join("."))
            }
            Exporter::Tf2Onnx => {
                let parts: Vec<&str> = name.split('/').collect();
                if parts.len() < 3 || Some(parts[0]) != self.keras_model_scope.as_deref() {
                    return None;
                }
                let layer = parts[1];
                Some(match &self.keras_suffix {
                    Some(s) => layer.strip_suffix(s.as_str()).unwrap_or(layer).to_string(),
                    None => layer.to_string(),
                })
            }
            _ => {
                let rest = name.strip_prefix('/')?;
                let parts: Vec<&str> = rest.split('/').collect();
                if parts.len() < 2 {
                    return None;
                }
                let path = module_path(parts[..parts.len() - 1].iter().copied());
                (!path.is_empty()).then_some(path)
            }
        }
    }

    /// The name for a node without parameters: its module path, else its ONNX name.
    pub(crate) fn node_name(&self, node: &NodeProto, label: &str) -> String {
        self.module(node)
            .unwrap_or_else(|| label.strip_prefix('/').unwrap_or(label).to_string())
    }
}

/// The module path (`state_dict` prefix) from the scope components of a TorchScript node
/// name. torch names each scope after the module's qualified name from the root
/// (`named_modules`), so `/blocks/blocks.0/Gemm` is module `blocks.0`, not `blocks.blocks.0`;
/// a component that does not extend the path so far (`/features/0/Conv` of older exports, an
/// attribute name) is appended to it.
fn module_path<'a>(scopes: impl Iterator<Item = &'a str>) -> String {
    let mut path = String::new();
    for s in scopes.filter(|s| !s.is_empty()) {
        if path.is_empty()
            || s.strip_prefix(path.as_str())
                .is_some_and(|r| r.starts_with('.'))
        {
            path = s.to_string();
        } else {
            path.push('.');
            path.push_str(s);
        }
    }
    path
}

/// `['', 'fc1', 'linear']` → `["", "fc1", "linear"]`.
fn parse_py_list(s: &str) -> Vec<String> {
    let inner = s.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.trim().is_empty() {
        return Vec::new();
    }
    inner
        .split(',')
        .map(|p| p.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect()
}

/// Torch state_dict leaf names that end a parameter path (`fc1.weight` → module `fc1`).
pub(crate) fn param_module(init: &str) -> Option<(&str, &str)> {
    let (module, leaf) = init.rsplit_once('.')?;
    let known = matches!(
        leaf,
        "weight" | "bias" | "running_mean" | "running_var" | "in_proj_weight" | "in_proj_bias"
    ) || leaf.starts_with("weight_")
        || leaf.starts_with("bias_");
    (known && !module.is_empty()).then_some((module, leaf))
}

/// `base`, or `base_1`, `base_2`, ... whichever is not taken yet.
pub(crate) fn unique(base: &str, taken: &std::collections::BTreeSet<String>) -> String {
    let base = if base.is_empty() { "node" } else { base };
    if !taken.contains(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_proto::onnx::StringStringEntryProto;

    fn node(name: &str) -> NodeProto {
        NodeProto {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn torchscript_scopes() {
        let s = Scopes::new(Exporter::TorchScript, &[]);
        assert_eq!(s.module(&node("/fc1/Gemm")).as_deref(), Some("fc1"));
        assert_eq!(
            s.module(&node("/features/0/Conv")).as_deref(),
            Some("features.0")
        );
        assert_eq!(s.module(&node("/Relu_1")), None);
        // Scopes named after the qualified module names: not doubled.
        // `self.blocks = nn.Sequential(...)` (a Sequential in an attribute):
        assert_eq!(
            s.module(&node("/blocks/blocks.0/Gemm")).as_deref(),
            Some("blocks.0")
        );
        // `nn.ModuleList` of blocks, each with an attribute `fc`:
        assert_eq!(
            s.module(&node("/layers/layers.1/layers.1.fc/Gemm"))
                .as_deref(),
            Some("layers.1.fc")
        );
        assert_eq!(
            s.module(&node("/layers/layers.1/fc/Gemm")).as_deref(),
            Some("layers.1.fc")
        );
        // A plain attribute, and a name that only shares a prefix with the path so far.
        assert_eq!(s.module(&node("/head/Gemm")).as_deref(), Some("head"));
        assert_eq!(
            s.module(&node("/block/blocks.0/Relu")).as_deref(),
            Some("block.blocks.0")
        );
        assert_eq!(s.node_name(&node("/Relu_1"), "/Relu_1"), "Relu_1");
    }

    #[test]
    fn dynamo_scopes() {
        let mut n = node("node_linear");
        n.metadata_props.push(StringStringEntryProto {
            key: Some("pkg.torch.onnx.name_scopes".into()),
            value: Some("['', 'block', '0', 'linear']".into()),
        });
        let s = Scopes::new(Exporter::TorchDynamo, &[]);
        assert_eq!(s.module(&n).as_deref(), Some("block.0"));
    }

    #[test]
    fn keras_scopes_lose_the_tf_suffix() {
        let nodes = [
            node("m_1/conv_1/convolution"),
            node("m_1/fc1_1/MatMul"),
            node("Transpose__3"),
        ];
        let s = Scopes::new(Exporter::Tf2Onnx, &nodes);
        assert_eq!(s.module(&nodes[0]).as_deref(), Some("conv"));
        assert_eq!(s.module(&nodes[1]).as_deref(), Some("fc1"));
        assert_eq!(s.module(&nodes[2]), None);
    }

    #[test]
    fn parameter_modules() {
        assert_eq!(param_module("fc1.weight"), Some(("fc1", "weight")));
        assert_eq!(
            param_module("lstm.weight_ih_l0"),
            Some(("lstm", "weight_ih_l0"))
        );
        assert_eq!(param_module("onnx::Conv_39"), None);
        assert_eq!(param_module("scale"), None);
    }
}
