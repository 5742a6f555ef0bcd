# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `fit(batch_size=32)`; the port's `DataLoader` keeps torch's default batch_size=1 (shuffling off on both sides).",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['fit-batch-shuffle-defaults'],
    'top': 'fit-batch-shuffle-defaults',
}
