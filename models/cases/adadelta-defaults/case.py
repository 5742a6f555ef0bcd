# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `Adadelta()` vs torch `Adadelta()` (both defaults: lr 1e-3 vs 1.0, ρ, ε) on a CNN.',
    'arch': 'cnn',
    'optimizer': ('Adadelta', {}),
    'loss': 'sparse',
    'plants': ['adadelta-defaults'],
    'top': 'adadelta-defaults',
}
