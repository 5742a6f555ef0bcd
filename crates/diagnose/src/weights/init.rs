//! Initializer identification: the fans and default initializers of each framework, the name
//! of the distribution a tensor fits, and the fix for an initialization that differs.

use catalogue::Id;
use model_ir::{Node, Op, Param, ParamRole};

use crate::align::ParamMatch;
use crate::findings::torch_ref;
use crate::stats::{Dist, Known, Stats, describe, fits};

/// Fans of a Keras tensor (`compute_fans`): (fan_in, fan_out).
pub(super) fn keras_fans(p: &Param) -> (f64, f64) {
    let s = p.tensor.shape();
    match s.len() {
        0 => (1.0, 1.0),
        1 => (s[0] as f64, s[0] as f64),
        2 => (s[0] as f64, s[1] as f64),
        n => {
            let rf: usize = s[..n - 2].iter().product();
            ((rf * s[n - 2]) as f64, (rf * s[n - 1]) as f64)
        }
    }
}

/// torch `_calculate_fan_in_and_fan_out(weight)[0]` of a torch tensor.
pub(super) fn torch_fan_in(p: &Param) -> f64 {
    let s = p.tensor.shape();
    match s.len() {
        0 | 1 => s.first().copied().unwrap_or(1) as f64,
        _ => (s[1] * s[2..].iter().product::<usize>()) as f64,
    }
}

/// The initializers a tensor of this layer and role plausibly came from.
pub(super) fn known_inits(k: &Param, node_t: &Node, t: &[&Param]) -> Vec<Known> {
    let kn = |name: &str, dist: Dist| Known {
        name: name.to_string(),
        dist,
    };
    let (fi, fo) = keras_fans(k);
    let units = match &node_t.op {
        Op::Rnn { units, .. } => Some(*units as f64),
        _ => None,
    };
    let weight_fan_in = node_t
        .params
        .iter()
        .find(|p| matches!(p.role, ParamRole::Kernel))
        .map(torch_fan_in);
    let mut v = Vec::new();
    match (k.role, units) {
        (ParamRole::Embeddings, _) => {
            v.push(kn(
                "Keras default RandomUniform(−0.05, 0.05)",
                Dist::Uniform(0.05),
            ));
            v.push(kn("torch default N(0, 1)", Dist::Normal(1.0)));
        }
        (ParamRole::RecurrentKernel, Some(h)) => {
            v.push(kn("Keras default orthogonal", Dist::Orthogonal));
            v.push(kn("torch default U(±1/√H)", Dist::Uniform(1.0 / h.sqrt())));
        }
        (ParamRole::InputKernel, Some(h)) => {
            v.push(kn(
                "Keras default glorot_uniform",
                Dist::Uniform((6.0 / (fi + fo)).sqrt()),
            ));
            v.push(kn("torch default U(±1/√H)", Dist::Uniform(1.0 / h.sqrt())));
        }
        (ParamRole::InputBias | ParamRole::Bias, Some(h)) => {
            v.push(kn("Keras default zeros", Dist::Constant(0.0)));
            if t.len() == 2 {
                v.push(kn(
                    "torch default: bias_ih + bias_hh, each U(±1/√H)",
                    Dist::Normal((2.0 / (3.0 * h)).sqrt()),
                ));
            } else {
                v.push(kn("torch default U(±1/√H)", Dist::Uniform(1.0 / h.sqrt())));
            }
        }
        (ParamRole::Kernel | ParamRole::DepthwiseKernel | ParamRole::PointwiseKernel, _) => {
            v.push(kn(
                "Keras default glorot_uniform",
                Dist::Uniform((6.0 / (fi + fo)).sqrt()),
            ));
            v.push(kn("glorot_normal", Dist::Normal((2.0 / (fi + fo)).sqrt())));
            v.push(kn("he_uniform", Dist::Uniform((6.0 / fi).sqrt())));
            v.push(kn("he_normal", Dist::Normal((2.0 / fi).sqrt())));
            v.push(kn("lecun_uniform", Dist::Uniform((3.0 / fi).sqrt())));
            if let Some(tp) = t.first() {
                let f = torch_fan_in(tp);
                v.push(kn(
                    &format!("torch default kaiming_uniform(a=√5) = U(±1/√fan_in), fan_in {f}"),
                    Dist::Uniform(1.0 / f.sqrt()),
                ));
            }
        }
        (ParamRole::Bias, None) => {
            v.push(kn("Keras default zeros", Dist::Constant(0.0)));
            if let Some(f) = weight_fan_in {
                v.push(kn(
                    &format!("torch default U(±1/√fan_in), fan_in {f}"),
                    Dist::Uniform(1.0 / f.sqrt()),
                ));
            }
        }
        (ParamRole::Gamma | ParamRole::MovingVariance, _) => {
            v.push(kn("default ones", Dist::Constant(1.0)));
        }
        (ParamRole::Beta | ParamRole::MovingMean, _) => {
            v.push(kn("default zeros", Dist::Constant(0.0)));
        }
        _ => {}
    }
    v
}

pub(super) fn name_dist(s: &Stats, values: &[f64], orth: bool, known: &[Known]) -> String {
    if orth {
        return format!(
            "orthogonal (std {}) = Keras default orthogonal",
            report::sig(s.std)
        );
    }
    let d = describe(s, values);
    match known.iter().find(|k| fits(s, &k.dist, orth)) {
        Some(k) => format!("{d} = {}", k.name),
        None => d,
    }
}

/// Catalogue id of an initialisation difference of a parameter with this role in a layer of
/// this kind.
pub(super) fn init_id(op: &Op, role: ParamRole) -> Option<Id> {
    Some(match op {
        Op::BatchNorm { .. } if matches!(role, ParamRole::Gamma | ParamRole::Beta) => {
            Id::BnAffineInit
        }
        Op::Dense { .. } => Id::DenseInit,
        Op::Conv { .. } | Op::ConvTranspose { .. } => Id::ConvInit,
        Op::DepthwiseConv { .. } | Op::SeparableConv { .. } => Id::DepthwiseInit,
        Op::Embedding { .. } => Id::EmbeddingInit,
        Op::Rnn { .. } => Id::RnnInit,
        _ => return None,
    })
}

pub(super) fn role_word(r: ParamRole) -> &'static str {
    match r {
        ParamRole::Kernel | ParamRole::InputKernel => "kernel",
        ParamRole::RecurrentKernel => "recurrent kernel",
        ParamRole::Bias | ParamRole::InputBias | ParamRole::RecurrentBias => "bias",
        ParamRole::Embeddings => "embeddings",
        ParamRole::DepthwiseKernel => "depthwise kernel",
        ParamRole::PointwiseKernel => "pointwise kernel",
        other => other.name(),
    }
}

pub(super) fn matrix_dims(shape: &[usize]) -> (usize, usize) {
    match shape {
        [r, c] => (*r, *c),
        [r, rest @ ..] => (*r, rest.iter().product()),
        [] => (0, 0),
    }
}

/// The torch code that reproduces a Keras initializer on the torch parameter.
pub(super) fn init_fix(op: &Op, m: &ParamMatch<'_>, kdesc: &str) -> (String, String) {
    let names: Vec<&str> = m.torch.iter().map(|p| p.name.as_str()).collect();
    let first = names.first().copied().unwrap_or("?");
    let module = first.rsplit_once('.').map_or(first, |(m, _)| m);
    let zeros = names
        .iter()
        .map(|n| format!("nn.init.zeros_({})", torch_ref(n)))
        .collect::<Vec<_>>()
        .join("; ");
    let units = match op {
        Op::Rnn { units, .. } => Some(*units),
        _ => None,
    };
    let torch = if kdesc.starts_with("zeros") {
        zeros
    } else if kdesc.contains("ones, ") {
        let h = units.map_or_else(|| "H".to_string(), |u| u.to_string());
        format!(
            "{zeros}; {}.data[{h}:2*{h}] = 1  # Keras unit_forget_bias",
            torch_ref(first)
        )
    } else if kdesc.contains("glorot_uniform") {
        format!("nn.init.xavier_uniform_({})", torch_ref(first))
    } else if kdesc.contains("orthogonal") {
        format!("nn.init.orthogonal_({})", torch_ref(first))
    } else if kdesc.contains("RandomUniform(−0.05, 0.05)") {
        format!("nn.init.uniform_({}, -0.05, 0.05)", torch_ref(first))
    } else {
        format!(
            "# copy the Keras initial weights into `{module}` (the layer alignment gives the exact mapping)"
        )
    };
    let keras = match (op, m.keras.role) {
        (Op::Embedding { .. }, _) => {
            "embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0)".to_string()
        }
        (Op::Rnn { units, .. }, role) => {
            let u = format!("keras.initializers.RandomUniform(-1/sqrt({units}), 1/sqrt({units}))");
            match role {
                ParamRole::RecurrentKernel => format!("recurrent_initializer={u}"),
                ParamRole::InputKernel => format!("kernel_initializer={u}"),
                _ => format!(
                    "bias_initializer={u}, unit_forget_bias=False  # torch's two biases sum to a wider distribution"
                ),
            }
        }
        (_, ParamRole::Bias) => {
            "bias_initializer=keras.initializers.RandomUniform(-1/sqrt(fan_in), 1/sqrt(fan_in))"
                .to_string()
        }
        _ => "kernel_initializer=keras.initializers.VarianceScaling(1/3, 'fan_in', 'uniform')"
            .to_string(),
    };
    (torch, keras)
}
