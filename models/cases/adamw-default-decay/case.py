# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `AdamW(learning_rate=0.03)` vs torch `AdamW(lr=0.03)` on a GRU: weight_decay left at each framework's default (0.004 vs 0.01).",
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'gru'},
    'optimizer': ('AdamW', {'learning_rate': 0.03}),
    'loss': 'sparse',
    'plants': ['adamw-default-decay'],
    'top': 'adamw-default-decay',
    'notes': "Small over 100 steps: the decay factors per step are 1 − 0.03·0.004 and 1 − 0.03·0.01. `adam-epsilon-hat` is present too (no torch AdamW reproduces Keras's ε̂ placement) but weighs less here.",
}
