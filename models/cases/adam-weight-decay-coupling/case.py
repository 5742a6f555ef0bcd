# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `Adam(weight_decay=0.05)` (decoupled) vs torch `Adam(weight_decay=0.05)` (coupled L2) on a CNN.',
    'arch': 'cnn',
    'optimizer': ('Adam', {'weight_decay': 0.05}),
    'loss': 'categorical',
    'plants': ['adam-weight-decay-coupling'],
    'notes': '`adam-epsilon-hat` is present as well (any torch Adam), but negligible next to the coupling.',
}
