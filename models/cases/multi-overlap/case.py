# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Three differences whose effects overlap (all change how far each step moves the weights): the port's `SGD` keeps torch's lr=1e-3 (Keras `SGD()`: 0.01), its DataLoader uses batch_size=16 (Keras 32), and its `nn.Linear` layers keep torch's default init.",
    'arch': 'mlp',
    'optimizer': ('SGD', {}),
    'loss': 'categorical',
    'plants': ['sgd-default-lr', 'fit-batch-shuffle-defaults', 'dense-init'],
    'plant_values': {'batch_size': 16},
    'plant_text': {'fit-batch-shuffle-defaults': ('`DataLoader(ds, batch_size=32, shuffle=False)`', '`DataLoader(ds, batch_size=16, shuffle=False)`')},
    'notes': 'The three effects overlap: each one aligned alone closes part of the same gap, so the "impact" of each (the port without it) does not add up to the port\'s gap; an attribution that adds up (Shapley values over the differences) is what the analysis must state.',
}
