//! Keras weight constraints in the simulation: the Keras side projects its constrained
//! variables after every optimizer step (as Keras's `optimizer.apply` does, with
//! [`optim::constraint`]); the torch side does only when the `weight-constraints` switch gives
//! it the same projections under its own names and axes ([`WeightReport::constraints`]).

use model_ir::Constraint;

use super::*;

/// The constraints one side applies by itself: the Keras bundle's (a constraint the
/// simulation cannot apply exactly refuses the run), none for torch.
pub(super) fn of_side(m: &Model) -> Result<BTreeMap<String, Constraint>, String> {
    if m.framework != Framework::Keras {
        return Ok(BTreeMap::new());
    }
    let all = m
        .training
        .as_ref()
        .map(|t| t.constraints.clone())
        .unwrap_or_default();
    for (name, c) in &all {
        let shape = m.param(name).map(|p| p.tensor.shape().to_vec());
        optim::constraint::check(c, shape.as_deref().unwrap_or(&[]))
            .map_err(|e| format!("`{name}`: {e}; the simulation cannot train it exactly"))?;
    }
    Ok(all)
}

/// The Keras constraints for the torch side (the `weight-constraints` switch); refused when a
/// constrained Keras variable has no exact torch counterpart.
pub(super) fn for_torch(w: &WeightReport) -> Result<BTreeMap<String, Constraint>, String> {
    if let Some(n) = w.constraints_unmapped.first() {
        return Err(format!(
            "the constraint of `{n}` has no exact counterpart on the torch parameters"
        ));
    }
    if w.constraints.is_empty() {
        return Err("no torch parameter takes a Keras constraint".into());
    }
    Ok(w.constraints.clone())
}

/// After an optimizer step: projects every variable in `names` that has a constraint.
pub(super) fn apply(
    constraints: &BTreeMap<String, Constraint>,
    names: &[String],
    shapes: &BTreeMap<String, Vec<usize>>,
    params: &mut [Vec<F>],
) {
    if constraints.is_empty() {
        return;
    }
    for (n, p) in names.iter().zip(params.iter_mut()) {
        if let (Some(c), Some(shape)) = (constraints.get(n), shapes.get(n)) {
            // Checked when the setup was built (`of_side`, the weight step's mapping).
            let _ = optim::constraint::apply(c, shape, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use model_import::TensorFile;
    use model_ir::{Constraint, Tensor};
    use ndarray::{ArrayD, IxDyn};

    use crate::testkit::*;

    /// The faithful MLP's bundles with `n` rows of data (Keras one-hot targets, torch class
    /// indices).
    fn with_data(
        k: model_ir::Model,
        t: model_ir::Model,
        n: usize,
    ) -> (model_import::Bundle, model_import::Bundle) {
        let x = uniform(n * 6, 1.0, 77);
        let classes: Vec<usize> = (0..n)
            .map(|r| {
                let s: f32 = x[r * 6..r * 6 + 3].iter().sum::<f32>() - x[r * 6 + 3];
                if s > 0.5 {
                    0
                } else if s > -0.5 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let mut onehot = vec![0.0f32; n * 3];
        for (r, c) in classes.iter().enumerate() {
            onehot[r * 3 + c] = 1.0;
        }
        let xt = tensor(&[n, 6], x);
        let file = |y: Tensor| TensorFile {
            tensors: [("x".to_string(), xt.clone()), ("y".to_string(), y)].into(),
            metadata: Default::default(),
        };
        let yi = Tensor::I64(
            ArrayD::from_shape_vec(IxDyn(&[n]), classes.iter().map(|&c| c as i64).collect())
                .expect("shape"),
        );
        let mut kb = bundle(k);
        kb.inputs = Some(file(tensor(&[n, 3], onehot)));
        let mut tb = bundle(t);
        tb.inputs = Some(file(yi));
        (kb, tb)
    }

    fn constrained(c: Constraint) -> (model_import::Bundle, model_import::Bundle) {
        let (mut k, t) = faithful_mlp();
        if let Some(tr) = k.training.as_mut() {
            tr.constraints.insert("d1/kernel".into(), c);
        }
        with_data(k, t, 96)
    }

    #[test]
    fn keras_constraint_is_simulated_and_the_switch_aligns_it() {
        // Column norms of the initial d1 kernel are ≈ 0.8: MaxNorm(0.3) binds from step 1.
        let (kb, tb) = constrained(Constraint::MaxNorm {
            max_value: 0.3,
            axes: vec![0],
        });
        let opts = crate::Options {
            steps: Some(40),
            seeds: Some(1),
        };
        let d = crate::diagnose(&kb, &tb, &opts).expect("diagnosis runs");
        let f = d
            .findings
            .iter()
            .find(|f| f.id == "weight-constraints")
            .expect("weight-constraints");
        let imp = f.impact.as_ref().expect("measured");
        assert!(imp.gap_total > 1e-3, "gap {}", imp.gap_total);
        assert!(imp.share > 0.99, "share {} of {}", imp.share, imp.gap_total);
        // Without the constraint the faithful port has (almost) no gap: the gap is the
        // constraint's.
        let (k0, t0) = faithful_mlp();
        let (kb0, tb0) = with_data(k0, t0, 96);
        let d0 = crate::diagnose(&kb0, &tb0, &opts).expect("diagnosis runs");
        let g0 = d0.training.as_ref().map_or(f64::NAN, |t| t.gap);
        assert!(g0 < 0.01 * imp.gap_total, "unconstrained gap {g0}");
    }

    #[test]
    fn unknown_constraint_refuses_the_training_simulation() {
        let (kb, tb) = constrained(Constraint::Unknown {
            class: "ClipConstraint".into(),
        });
        let opts = crate::Options {
            steps: Some(10),
            seeds: Some(1),
        };
        let d = crate::diagnose(&kb, &tb, &opts).expect("diagnosis runs");
        assert!(d.training.is_none());
        assert!(
            d.not_checked
                .iter()
                .any(|n| n.reason.contains("ClipConstraint")
                    && n.reason.contains("cannot train it exactly")),
            "{:?}",
            d.not_checked
        );
    }
}
