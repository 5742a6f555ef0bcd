# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `LeakyReLU()` (negative_slope 0.3); the port uses `nn.LeakyReLU()` (0.01).',
    'arch': 'mlp',
    'opts': {'activation': 'leaky_relu'},
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'sparse',
    'plants': ['leaky-relu-slope'],
    'top': 'leaky-relu-slope',
}
