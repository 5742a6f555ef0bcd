# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Three differences in a CNN with LeakyReLU and Adam: flatten order not permuted, torch Adam defaults (ε), LeakyReLU slope default.',
    'arch': 'cnn',
    'opts': {'activation': 'leaky_relu'},
    'optimizer': ('Adam', {}),
    'loss': 'categorical',
    'plants': ['flatten-order', 'adam-epsilon-hat', 'leaky-relu-slope'],
    'notes': 'The ranking is by measured impact: the LeakyReLU slope (0.3 vs 0.01 on every negative activation) moves the loss more than the unpermuted Dense kernel of an untrained model (a random matrix with permuted rows is still a random matrix), and `adam-epsilon-hat` is negligible.',
}
