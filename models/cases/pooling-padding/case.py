# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `AveragePooling2D(3, strides=2, padding='same')` vs the port's `nn.AvgPool2d(3, 2, padding=1)` (symmetric, counts the zeros).",
    'arch': 'cnn',
    'opts': {'pool': 'avg_same'},
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'sparse',
    'plants': ['pooling-padding'],
    'top': 'pooling-padding',
    'pretrain': 200,
}
