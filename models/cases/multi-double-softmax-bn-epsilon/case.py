# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Two differences of very different weight in a CNN with BatchNorm: the output softmax kept before `CrossEntropyLoss`, and BatchNorm eps left at 1e-5.',
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'categorical',
    'plants': ['double-softmax', 'bn-epsilon'],
    'top': 'double-softmax',
}
