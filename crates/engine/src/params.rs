//! Parameter values, gradients and running-statistic updates, keyed by framework-native name.

use std::collections::BTreeMap;

use model_ir::{Model, Tensor};
use ndarray::{Array2, ArrayD};

use crate::float::Float;

/// Every parameter of a model (trainable or not) converted to the compute type, under its
/// framework-native name (`dense/kernel`, `fc1.weight`, `bn.running_var`) and in its native
/// layout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamStore<F> {
    pub values: BTreeMap<String, ArrayD<F>>,
}

impl<F: Float> ParamStore<F> {
    /// An empty store.
    pub fn new() -> ParamStore<F> {
        ParamStore {
            values: BTreeMap::new(),
        }
    }

    /// Converts every parameter of `model` from its storage dtype (f16, bf16, f32, f64, ints).
    pub fn from_model(model: &Model) -> ParamStore<F> {
        let values = model
            .params()
            .map(|(_, p)| (p.name.clone(), F::array_from(&p.tensor)))
            .collect();
        ParamStore { values }
    }

    pub fn get(&self, name: &str) -> Option<&ArrayD<F>> {
        self.values.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ArrayD<F>> {
        self.values.get_mut(name)
    }

    /// Sets a value, returning the previous one.
    pub fn insert(&mut self, name: impl Into<String>, value: ArrayD<F>) -> Option<ArrayD<F>> {
        self.values.insert(name.into(), value)
    }

    /// Writes the running statistics of a training-mode forward pass into the store.
    pub fn apply(&mut self, updates: &StatUpdates<F>) {
        for (name, v) in &updates.values {
            self.values.insert(name.clone(), v.clone());
        }
    }

    /// The values as IR tensors of the compute dtype.
    pub fn to_tensors(&self) -> BTreeMap<String, Tensor> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), F::into_tensor(v.clone())))
            .collect()
    }
}

/// Gradients of a scalar objective.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grads<F> {
    /// One entry per trainable parameter (zeros when the objective does not depend on it).
    pub params: BTreeMap<String, ArrayD<F>>,
    /// One entry per graph input, in the program's input order (zeros for integer ids).
    pub inputs: Vec<ArrayD<F>>,
    /// Trainable embedding tables' gradients in TensorFlow's sparse form (one row per looked-up
    /// id, duplicates kept apart); `params` holds the same gradient summed densely.
    pub indexed_slices: BTreeMap<String, IndexedSlices<F>>,
}

/// An embedding-table gradient as TensorFlow represents it (`tf.IndexedSlices`): row `i` of
/// `values` is the gradient reaching table row `indices[i]` from one lookup.
///
/// It matters for Keras on the TensorFlow backend: the optimizers update their second moments
/// with `square(gradient)` taken per slice before the slices are summed
/// (`keras/src/optimizers/adam.py` `ops.square(gradient)` on an `IndexedSlices`, densified by
/// `keras/src/backend/tensorflow/optimizer.py`), so a row looked up `k` times accumulates
/// `Σ gᵢ²` rather than `(Σ gᵢ)²` ([`IndexedSlices::sum_of_squares`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedSlices<F> {
    pub indices: Vec<usize>,
    pub values: Array2<F>,
    /// Rows of the table.
    pub rows: usize,
}

impl<F: Float> IndexedSlices<F> {
    /// The dense gradient: slices summed per row.
    pub fn to_dense(&self) -> ArrayD<F> {
        let mut out = Array2::zeros((self.rows, self.values.ncols()));
        for (i, &r) in self.indices.iter().enumerate() {
            let mut row = out.row_mut(r);
            row += &self.values.row(i);
        }
        out.into_dyn()
    }

    /// `Σ gᵢ²` per row (TensorFlow's densified `square(IndexedSlices)`).
    pub fn sum_of_squares(&self) -> ArrayD<F> {
        let mut out = Array2::zeros((self.rows, self.values.ncols()));
        for (i, &r) in self.indices.iter().enumerate() {
            out.row_mut(r)
                .zip_mut_with(&self.values.row(i), |o, &v| *o += v * v);
        }
        out.into_dyn()
    }
}

impl<F: Float> Grads<F> {
    /// Euclidean norm of one parameter's gradient.
    pub fn norm(&self, name: &str) -> Option<F> {
        self.params.get(name).map(l2_norm)
    }
}

/// New values of running statistics (BatchNorm moving mean/variance and
/// `num_batches_tracked`) computed by a training-mode forward pass, keyed by parameter name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatUpdates<F> {
    pub values: BTreeMap<String, ArrayD<F>>,
}

/// `sqrt(Σ v²)`.
pub(crate) fn l2_norm<F: Float>(a: &ArrayD<F>) -> F {
    a.iter().fold(F::zero(), |s, &v| s + v * v).sqrt()
}
