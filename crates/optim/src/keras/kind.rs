//! Facts about a Keras optimizer class's hyper-parameters that the cross-framework comparison
//! needs: which epsilon sits where torch puts its own differently.

use super::Kind;

impl Kind {
    /// The epsilon whose placement differs from the torch class of the same name, so that no
    /// constant torch `eps` reproduces it: Adam and AdamW (ε̂ added to √v before the bias
    /// correction), RMSprop and Adagrad (inside the square root), Adamax (added to u in the
    /// update, not to the stored u). `None` for the other classes (Adadelta and Nadam place ε
    /// as torch does; SGD and Lion have none; Adafactor's is [`Kind::epsilon_1_mut`]).
    pub fn epsilon_mut(&mut self) -> Option<&mut f64> {
        match self {
            Kind::Adam { epsilon, .. }
            | Kind::AdamW { epsilon, .. }
            | Kind::RmsProp { epsilon, .. }
            | Kind::Adagrad { epsilon, .. }
            | Kind::Adamax { epsilon, .. } => Some(epsilon),
            _ => None,
        }
    }

    /// Adafactor's ε₁ (`epsilon_1`, added to g² inside the factored moments, where torch
    /// clamps with its own ε₁); `None` for the other classes.
    pub fn epsilon_1_mut(&mut self) -> Option<&mut f64> {
        match self {
            Kind::Adafactor { epsilon_1, .. } => Some(epsilon_1),
            _ => None,
        }
    }
}
