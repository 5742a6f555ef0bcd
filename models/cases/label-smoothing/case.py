# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `CategoricalCrossentropy(label_smoothing=0.1)`; the port uses `nn.CrossEntropyLoss()` without `label_smoothing`.',
    'arch': 'cnn',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'categorical',
    'label_smoothing': 0.1,
    'plants': ['label-smoothing'],
    'top': 'label-smoothing',
}
