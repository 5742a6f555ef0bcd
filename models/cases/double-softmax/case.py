# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'The port keeps the Keras output softmax in `forward` and trains it with `nn.CrossEntropyLoss()`.',
    'arch': 'branch',
    'optimizer': ('SGD', {'learning_rate': 0.01, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['double-softmax'],
    'top': 'double-softmax',
}
