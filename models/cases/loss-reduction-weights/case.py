# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `fit(class_weight={0: 1, 1: 4, 2: 1})` (Σwℓ/N) vs the port's `CrossEntropyLoss(weight=[1, 4, 1])` (Σwℓ/Σw).",
    'arch': 'branch',
    'optimizer': ('SGD', {'learning_rate': 0.01, 'momentum': 0.9}),
    'loss': 'sparse',
    'class_weight': {0: 1.0, 1: 4.0, 2: 1.0},
    'plants': ['loss-reduction-weights'],
    'top': 'loss-reduction-weights',
}
