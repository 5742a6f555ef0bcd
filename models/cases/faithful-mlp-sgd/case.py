# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Faithful port, no difference: MLP on standardized digits, plain SGD with an explicit learning rate on both sides.',
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'top': None,
}
