//! Facts about a torch optimizer class's hyper-parameters that the cross-framework comparison
//! needs: which epsilon sits where Keras puts its own differently, and which classes are one.

use super::{Config, Kind};

impl Kind {
    /// The `eps` whose placement differs from the Keras class of the same name, so that no
    /// constant Keras `epsilon` reproduces it: Adam and AdamW (added after the bias-corrected
    /// √v), RMSprop and Adagrad (outside the square root), Adamax (added to |g| inside the
    /// stored u). `None` for the other classes (Adadelta and NAdam place ε as Keras does;
    /// SGD has none; RAdam has no Keras counterpart; Adafactor's is [`Kind::eps1_mut`]).
    pub fn eps_mut(&mut self) -> Option<&mut f64> {
        match self {
            Kind::Adam { eps, .. }
            | Kind::AdamW { eps, .. }
            | Kind::RmsProp { eps, .. }
            | Kind::Adagrad { eps, .. }
            | Kind::Adamax { eps, .. } => Some(eps),
            _ => None,
        }
    }

    /// Adafactor's ε₁ (`eps[0]`, `None` = `finfo.eps`; a clamp of V, where Keras adds its ε₁
    /// to g²); `None` for the other classes.
    pub fn eps1_mut(&mut self) -> Option<&mut Option<f64>> {
        match self {
            Kind::Adafactor { eps: (eps1, _), .. } => Some(eps1),
            _ => None,
        }
    }
}

impl Config {
    /// `Adam(decoupled_weight_decay=True)` is `AdamW` (`torch/optim/adam.py` runs the AdamW
    /// update): rewrite it as AdamW with the same betas, eps and amsgrad. Every other
    /// configuration stays as it is.
    pub fn normalize_adamw(&mut self) {
        if let Kind::Adam {
            betas,
            eps,
            amsgrad,
            decoupled_weight_decay: true,
        } = self.kind
        {
            self.kind = Kind::AdamW {
                betas,
                eps,
                amsgrad,
            };
        }
    }
}
