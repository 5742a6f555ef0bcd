//! Forward parity: both models in inference mode on the Keras inputs, per aligned layer
//! error carried forward and isolated (the torch segment fed the Keras value).

use super::*;

/// The node whose output a pair is compared at: the end of its activation chain.
pub(super) fn chain_end<'a>(m: &'a Model, n: &'a Node) -> &'a Node {
    // The end of the activation chain, else the last Slice cropping a transposed conv.
    let crop = crate::graph::crop_slices(m, n)
        .last()
        .map(|(_, s)| s.name.as_str());
    let name = activation_chain(m, n)
        .last()
        .map(|&(_, name)| name)
        .or(crop)
        .unwrap_or(n.name.as_str());
    m.nodes.iter().find(|x| x.name == name).unwrap_or(n)
}

pub(super) fn errors(a: &ArrayD<F>, b: &ArrayD<F>) -> Option<(f64, f64, f64)> {
    if a.shape() != b.shape() {
        return None;
    }
    let (mut max, mut amax, mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        max = max.max((x - y).abs());
        amax = amax.max(x.abs());
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let cos = if na == 0.0 || nb == 0.0 {
        // Both all-zero: identical; one all-zero: orthogonal.
        if na + nb == 0.0 { 1.0 } else { 0.0 }
    } else {
        dot / (na.sqrt() * nb.sqrt())
    };
    Some((max, if amax > 0.0 { max / amax } else { max }, cos))
}

/// The torch nodes computing `end` from `cut` (a chain segment), as a model with one input.
pub(super) fn segment(m: &Model, cut: &str, end: &str, shape: &[usize]) -> Option<Model> {
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut stack = vec![end.to_string()];
    let mut nodes = Vec::new();
    let mut seen = BTreeSet::new();
    while let Some(v) = stack.pop() {
        if v == cut || !needed.insert(v.clone()) {
            continue;
        }
        let n = m.nodes.iter().find(|n| n.outputs.contains(&v))?;
        if matches!(n.op, Op::Input { .. }) {
            return None;
        }
        if seen.insert(n.name.clone()) {
            nodes.push(n.clone());
            stack.extend(n.inputs.iter().cloned());
        }
    }
    let order: Vec<&str> = m.nodes.iter().map(|n| n.name.as_str()).collect();
    nodes.sort_by_key(|n| order.iter().position(|o| *o == n.name));
    let mut dims: Vec<Option<usize>> = shape.iter().map(|&d| Some(d)).collect();
    if let Some(d) = dims.first_mut() {
        *d = None;
    }
    let input = Node {
        name: cut.to_string(),
        op: Op::Input {
            shape: dims.clone(),
            dtype: model_ir::DType::F32,
        },
        inputs: vec![],
        outputs: vec![cut.to_string()],
        params: vec![],
        origin: nodes.first()?.origin.clone(),
    };
    let mut all = vec![input];
    all.extend(nodes);
    Some(Model {
        framework: m.framework,
        name: format!("{}[{cut}..{end}]", m.name),
        inputs: vec![ValueInfo {
            name: cut.to_string(),
            shape: dims,
            dtype: model_ir::DType::F32,
        }],
        outputs: vec![end.to_string()],
        nodes: all,
        training: None,
        notes: vec![],
        producer: None,
        initializers: Default::default(),
    })
}

pub(super) fn forward_parity(ctx: &Ctx<'_>, kdata: &Data) -> Result<ForwardReport, String> {
    let (km, tm) = (&ctx.kb.model, &ctx.tb.model);
    let kp = Program::new(km).map_err(|e| format!("Keras model: {e}"))?;
    let tp = Program::new(tm).map_err(|e| format!("torch model: {e}"))?;
    let kparams = ParamStore::<F>::from_model(km);
    let tparams = torch_init(ctx.tb, ctx.w, true);
    let rows = kdata.rows().min(FORWARD_ROWS);
    let idx: Vec<usize> = (0..rows).collect();
    let kx: Vec<ArrayD<F>> = kdata.x.iter().map(|x| x.select(Axis(0), &idx)).collect();
    let tx: Vec<ArrayD<F>> = ctx
        .kdata_t
        .x
        .iter()
        .map(|x| x.select(Axis(0), &idx))
        .collect();
    let none = DropoutMasks::new();
    let kf = forward(&kp, &kparams, &kx, Mode::Inference, &none).map_err(|e| e.to_string())?;
    let tf = forward(&tp, &tparams, &tx, Mode::Inference, &none).map_err(|e| e.to_string())?;
    let change = layout_change(km, tm);
    let mut layers = Vec::new();
    let (mut first, mut first_iso) = (None, None);
    // The previous cut: (torch value name, Keras value in the torch layout).
    let mut cut: Option<(String, ArrayD<F>)> =
        match (tm.inputs.len(), tm.inputs.first(), tx.first()) {
            (1, Some(i), Some(x)) => Some((i.name.clone(), x.clone())),
            _ => None,
        };
    for pair in &ctx.aligned.pairs {
        let ke = chain_end(km, pair.keras);
        let te = chain_end(tm, pair.torch);
        let (Some(kv), Some(tv)) = (
            ke.outputs.first().and_then(|v| kf.tape.value(v)),
            te.outputs.first().and_then(|v| tf.tape.value(v)),
        ) else {
            continue;
        };
        // Keras's channels-last value in torch's layout, when the transposed shape fits
        // (square shapes included); as is otherwise (dense, recurrent outputs).
        let transposed = to_torch_layout(kv, change);
        let kv_t = if transposed.shape() == tv.shape() {
            transposed
        } else {
            kv.clone()
        };
        // A port returning logits where Keras returns probabilities (the loss applies the
        // softmax/sigmoid) is compared in probabilities.
        let (kprob, tprob) = (ends_in_prob(km, pair.keras), ends_in_prob(tm, pair.torch));
        let squash = |v: &ArrayD<F>| match (kprob, tprob) {
            (Some(a), None) => apply(a, v),
            _ => v.clone(),
        };
        let kv_t = match (kprob, tprob) {
            (None, Some(a)) => apply(a, &kv_t),
            _ => kv_t,
        };
        let tv = &squash(tv);
        let Some((max_abs, rel, cosine)) = errors(&kv_t, tv) else {
            cut = None;
            continue;
        };
        let tout = te.outputs.first().cloned().unwrap_or_default();
        let isolated = cut.as_ref().and_then(|(cv, cx)| {
            let sub = segment(tm, cv, &tout, cx.shape())?;
            let p = Program::new(&sub).ok()?;
            let f = forward(
                &p,
                &tparams,
                std::slice::from_ref(cx),
                Mode::Inference,
                &none,
            )
            .ok()?;
            errors(&kv_t, &squash(&f.outputs[0])).map(|e| e.0)
        });
        if first.is_none() && max_abs > FORWARD_THRESHOLD {
            first = Some(pair_name(&pair.keras.name, &pair.torch_name()));
        }
        if first_iso.is_none() && isolated.is_some_and(|e| e > FORWARD_THRESHOLD) {
            first_iso = Some(pair_name(&pair.keras.name, &pair.torch_name()));
        }
        layers.push(LayerError {
            keras: pair.keras.name.clone(),
            torch: pair.torch_name(),
            max_abs,
            rel,
            cosine,
            isolated_max_abs: isolated,
        });
        cut = Some((tout, kv_t));
    }
    Ok(ForwardReport {
        mode: "inference".into(),
        layers,
        first_divergence: first,
        first_divergence_isolated: first_iso,
        threshold: FORWARD_THRESHOLD,
    })
}

/// The softmax (`true`) or sigmoid (`false`) at the end of a node's activation chain.
pub(super) fn ends_in_prob(m: &Model, n: &Node) -> Option<bool> {
    match activation_chain(m, n).last().map(|(a, _)| *a) {
        Some(Activation::Softmax { .. }) => Some(true),
        Some(Activation::Sigmoid) => Some(false),
        _ => None,
    }
}

/// Softmax over the last axis, or the sigmoid.
pub(super) fn apply(softmax: bool, v: &ArrayD<F>) -> ArrayD<F> {
    if !softmax {
        return v.mapv(|z| 1.0 / (1.0 + (-z).exp()));
    }
    let mut out = v.clone();
    let last = Axis(v.ndim().saturating_sub(1));
    for mut lane in out.lanes_mut(last) {
        let m = lane.iter().copied().fold(F::NEG_INFINITY, F::max);
        lane.mapv_inplace(|z| (z - m).exp());
        let s: F = lane.sum();
        lane.mapv_inplace(|z| z / s);
    }
    out
}

pub(super) fn pair_name(k: &str, t: &str) -> String {
    if k == t {
        k.to_string()
    } else {
        format!("{k} ↔ {t}")
    }
}
