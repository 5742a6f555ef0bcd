# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Dense(32, activation='gelu')` (exact erf GELU); the port uses `nn.GELU(approximate='tanh')`.",
    'arch': 'mlp',
    'opts': {'activation': 'gelu'},
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['gelu-approximate'],
    'top': 'gelu-approximate',
}
