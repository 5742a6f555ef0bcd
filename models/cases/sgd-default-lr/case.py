# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `SGD()` (lr 0.01) vs torch `SGD(lr=1e-3)` (torch's default) on an MLP.",
    'arch': 'mlp',
    'optimizer': ('SGD', {}),
    'loss': 'categorical',
    'plants': ['sgd-default-lr'],
    'top': 'sgd-default-lr',
}
