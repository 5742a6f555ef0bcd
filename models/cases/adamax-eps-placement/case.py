# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `Adamax()` vs torch `Adamax()` (both defaults: lr 1e-3 vs 2e-3, ε after vs inside the max) on a GRU.',
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'gru'},
    'optimizer': ('Adamax', {}),
    'loss': 'sparse',
    'plants': ['adamax-eps-placement'],
    'top': 'adamax-eps-placement',
}
