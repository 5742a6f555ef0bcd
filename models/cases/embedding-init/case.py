# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'The port does not copy the Keras Embedding: `nn.Embedding` keeps N(0, 1) where Keras draws U(−0.05, 0.05).',
    'arch': 'rnn',
    'opts': {'cell': 'lstm'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['embedding-init'],
    'top': 'embedding-init',
}
