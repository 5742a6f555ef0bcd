# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `fit(batch_size=32, shuffle=False)`; the port's `DataLoader(batch_size=16, shuffle=False)`: only the batch size differs, neither side shuffles.",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['fit-batch-shuffle-defaults'],
    'plant_values': {'batch_size': 16},
    'plant_text': {'fit-batch-shuffle-defaults': ('`DataLoader(ds, batch_size=32, shuffle=False)`', '`DataLoader(ds, batch_size=16, shuffle=False)`: half the Keras batch size, twice the steps per epoch (no shuffling on either side)')},
    'top': 'fit-batch-shuffle-defaults',
    'never': ['batch order'],
}
