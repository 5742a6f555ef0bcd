# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Dense(32, activation='gelu')` (exact erf GELU); the port uses `nn.GELU(approximate='tanh')`.",
    'arch': 'mlp',
    'opts': {'activation': 'gelu'},
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['gelu-approximate'],
    'top': 'gelu-approximate',
    'notes': "Expected to be negligible: exact and tanh GELU differ by at most ~5e-4 per activation, so the two training runs stay within 1e-4 nats. The configs differ all the same (the ONNX graph has `Gelu` with approximate='tanh' or its tanh expansion), so the analysis must name it, at `info`/`low`.",
}
