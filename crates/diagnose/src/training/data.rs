//! The data loop: batch size, shuffling and `validation_split`.

use super::*;

/// Batching and shuffling; `validation_split` from the config alone when the bundles carry no
/// inputs to tell which rows each side trains on (step 4 decides it from the rows otherwise).
pub(super) fn data_loop(
    kt: &TrainingConfig,
    tt: &TrainingConfig,
    rows_known: bool,
    out: &mut Findings,
) {
    let id = Id::FitBatchShuffleDefaults;
    let mut ev_list = Vec::new();
    let mut sev = Severity::Low;
    let mut mag: f64 = 0.0;
    if kt.batch_size != tt.batch_size {
        let r = (kt.batch_size as f64 / tt.batch_size as f64).ln().abs();
        sev = sev.min(if r > 1.0 {
            Severity::High
        } else {
            Severity::Medium
        });
        mag = mag.max(r);
        ev_list.push(ev(
            "batch size",
            kt.batch_size.to_string(),
            tt.batch_size.to_string(),
            None,
        ));
    }
    if kt.shuffle != tt.shuffle {
        sev = sev.min(Severity::Medium);
        mag = mag.max(1.0);
        ev_list.push(ev(
            "shuffle every epoch",
            kt.shuffle.to_string(),
            tt.shuffle.to_string(),
            None,
        ));
    }
    if kt.epochs != tt.epochs {
        sev = sev.min(Severity::Medium);
        mag = mag.max((kt.epochs as f64 / tt.epochs.max(1) as f64).ln().abs());
        ev_list.push(ev(
            "epochs",
            kt.epochs.to_string(),
            tt.epochs.to_string(),
            None,
        ));
    }
    if tt.drop_last != kt.drop_last {
        ev_list.push(ev(
            "last partial batch",
            "kept",
            if tt.drop_last {
                "dropped (drop_last=True)"
            } else {
                "kept"
            },
            None,
        ));
    }
    if !ev_list.is_empty() {
        // Only the parts that differ, with both sides' values.
        let parts: Vec<String> = ev_list
            .iter()
            .map(|e| format!("{} (Keras {}, torch {})", e.what, e.keras, e.torch))
            .collect();
        out.set_title(
            id,
            format!(
                "the training loop differs between fit and the DataLoader: {}",
                parts.join(", ")
            ),
        );
        out.add(
            id,
            sev,
            mag,
            ev_list,
            format!(
                "DataLoader(dataset, batch_size={}, shuffle={}, drop_last=False); train {} epochs",
                kt.batch_size,
                if kt.shuffle { "True" } else { "False" },
                kt.epochs
            ),
            format!(
                "model.fit(x, y, batch_size={}, shuffle={}, epochs={})",
                tt.batch_size,
                if tt.shuffle { "True" } else { "False" },
                tt.epochs
            ),
        );
    }
    if kt.validation_split > 0.0 && !rows_known {
        out.set_title(
            Id::ValidationSplitTail,
            format!(
                "Keras validation_split={} takes the last {}% of the samples before shuffling",
                num(kt.validation_split),
                num(kt.validation_split * 100.0)
            ),
        );
        out.add(
            Id::ValidationSplitTail,
            Severity::Low,
            kt.validation_split,
            vec![ev(
                "validation split",
                format!(
                    "validation_split={}: the last {}% of the samples, taken before shuffling",
                    num(kt.validation_split),
                    num(kt.validation_split * 100.0)
                ),
                "not decidable: the bundles carry no inputs.safetensors to show which rows each side trains on",
                None,
            )],
            format!(
                "n = len(x); split = int(n * (1 - {})); train, val = x[:split], x[split:]",
                num(kt.validation_split)
            ),
            "shuffle the arrays before fit, or pass validation_data explicitly",
        );
    }
}
