//! The engine's `IndexedSlices` embedding gradient fed to `optim`'s Keras Adam reproduces real
//! Keras on TensorFlow: `models/rnn/keras/reference.safetensors` records the table after the
//! first training step (`train.param.1.embedding/embeddings`), where Adam's second moment
//! holds the per-row sum of the squared slices (rows looked up several times in the batch
//! differ from the dense treatment).

use std::path::{Path, PathBuf};

use engine::{Batch, DropoutMasks, Grads, ParamStore, Program, TrainConfig, train};
use model_import::{TensorFile, load_keras, load_safetensors};
use ndarray::{ArrayD, Axis};

const TABLE: &str = "embedding/embeddings";

fn rnn_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/rnn/keras")
}

fn tensors(name: &str) -> TensorFile {
    let path = rnn_dir().join(name);
    load_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One `optimizer.apply(grads, trainable_variables)` of the model's compiled Keras optimizer
/// on the engine's gradients, the table's as `IndexedSlices` when `sliced`.
fn step(
    opt: &mut optim::keras::Optimizer<f32>,
    order: &[String],
    params: &mut ParamStore<f32>,
    grads: &Grads<f32>,
    sliced: bool,
) {
    let mut g: Vec<Vec<f32>> = order
        .iter()
        .map(|n| grads.params[n].iter().copied().collect())
        .collect();
    let mut v: Vec<Vec<f32>> = order
        .iter()
        .map(|n| {
            params
                .get(n)
                .map(|a| a.iter().copied().collect())
                .unwrap_or_default()
        })
        .collect();
    let values: Vec<Vec<f32>> = order
        .iter()
        .map(|n| match grads.indexed_slices.get(n) {
            Some(s) if sliced => s.values.iter().copied().collect(),
            _ => Vec::new(),
        })
        .collect();
    let slices: Vec<Option<optim::keras::IndexedSlices<'_, f32>>> =
        order
            .iter()
            .zip(&values)
            .map(|(n, values)| {
                grads.indexed_slices.get(n).filter(|_| sliced).map(|s| {
                    optim::keras::IndexedSlices {
                        indices: &s.indices,
                        values,
                    }
                })
            })
            .collect();
    opt.apply_with_slices(&mut g, &slices, &mut v);
    for (n, v) in order.iter().zip(v) {
        let p = params.get_mut(n).expect("trainable parameter");
        for (x, y) in p.iter_mut().zip(v) {
            *x = y;
        }
    }
}

/// The table after the first reference step, with the table's gradient sliced or dense.
fn first_step_table(sliced: bool) -> ArrayD<f32> {
    let model = load_keras(&rnn_dir().join("model.keras")).expect("rnn model.keras");
    let program = Program::new(&model).expect("program");
    let mut params = ParamStore::<f32>::from_model(&model);
    let inputs = tensors("inputs.safetensors");
    let reference = tensors("reference.safetensors");
    let rows: Vec<usize> = reference.tensors["train.index"]
        .to_i64()
        .index_axis(Axis(0), 0)
        .iter()
        .map(|&r| usize::try_from(r).expect("row index"))
        .collect();
    let x = inputs.tensors["x"].select(0, &rows).to_f32();
    let y = inputs.tensors["y"].select(0, &rows).to_f32();
    let batch = Batch {
        inputs: vec![x],
        target: y,
        sample_weight: None,
        masks: DropoutMasks::new(),
    };
    let training = model.training.as_ref().expect("training config");
    let spec = training.optimizer.as_ref().expect("compiled optimizer");
    let mut opt = optim::keras::Optimizer::<f32>::build(
        optim::keras::Config::from_spec(spec).expect("keras optimizer"),
        &program
            .trainable()
            .iter()
            .map(|n| optim::Variable::new(n.clone(), &program.param_shapes()[n]))
            .collect::<Vec<_>>(),
    );
    let order = program.trainable().to_vec();
    let config = TrainConfig::from_model(&model, 1).expect("train config");
    train(
        &program,
        &mut params,
        &[batch],
        &config,
        |_, params, grads| {
            assert!(
                grads.indexed_slices.contains_key(TABLE),
                "the engine returns the table's gradient as IndexedSlices"
            );
            step(&mut opt, &order, params, grads, sliced);
        },
    )
    .expect("train");
    params.get(TABLE).expect("table").clone()
}

/// max |a − b| / max |b|.
fn rel_err(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes");
    let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let diff = a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    diff / scale
}

#[test]
fn first_adam_step_on_the_embedding_matches_keras_with_sliced_gradients() {
    let reference = tensors("reference.safetensors");
    let want = reference.tensors[&format!("train.param.1.{TABLE}")].to_f32();
    let sliced = rel_err(&first_step_table(true), &want);
    let dense = rel_err(&first_step_table(false), &want);
    eprintln!("table after step 1: sliced {sliced:.3e}, dense {dense:.3e}");
    assert!(sliced <= 1e-6, "sliced Adam step: {sliced:.3e}");
    // The dense gradient's (Σg)² in place of Σg² moves the rows looked up more than once.
    assert!(
        dense >= 1e-4,
        "dense Adam step unexpectedly close: {dense:.3e}"
    );
}
