//! What an optimizer knows about a variable when it is built: its name (Keras matches
//! `exclude_from_weight_decay` patterns against it, torch parameter groups list names) and its
//! shape (Adafactor factors the last two axes of every variable of rank ≥ 2).

/// A variable (Keras) or parameter (torch) an optimizer is built over. Values are passed
/// flattened in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Keras `variable.path` (`dense/kernel`; for a bare `keras.Variable(name="w")` the path
    /// is `w`) / torch `state_dict` name.
    pub name: String,
    pub shape: Vec<usize>,
}

impl Variable {
    pub fn new(name: impl Into<String>, shape: &[usize]) -> Variable {
        Variable {
            name: name.into(),
            shape: shape.to_vec(),
        }
    }

    /// An unnamed rank-1 variable of `n` elements (what `Optimizer::new(config, sizes)`
    /// builds over).
    pub fn flat(n: usize) -> Variable {
        Variable {
            name: String::new(),
            shape: vec![n],
        }
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Adafactor's factoring of a rank ≥ 2 variable as (batch, rows, cols): the leading axes
    /// multiplied together, then the last two. `None` for rank < 2.
    pub(crate) fn factored(&self) -> Option<(usize, usize, usize)> {
        let r = self.shape.len();
        (r >= 2).then(|| {
            (
                self.shape[..r - 2].iter().product(),
                self.shape[r - 2],
                self.shape[r - 1],
            )
        })
    }
}
