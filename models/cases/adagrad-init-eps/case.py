# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `Adagrad()` vs torch `Adagrad()` (both defaults: lr, initial accumulator and ε differ) on the branched model, binary breast_cancer.',
    'arch': 'branch',
    'data': 'breast_cancer',
    'optimizer': ('Adagrad', {}),
    'loss': 'binary',
    'plants': ['adagrad-init-eps'],
    'top': 'adagrad-init-eps',
}
