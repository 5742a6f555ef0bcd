# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `Lion()`: torch.optim has no Lion, and the port substitutes `Adam(lr=1e-3)`.',
    'arch': 'mlp',
    'optimizer': ('Lion', {}),
    'loss': 'categorical',
    'plants': ['no-counterpart-optimizers'],
    'top': 'no-counterpart-optimizers',
    'notes': 'torch.optim has no Lion; the faithful variant uses a Lion written with torch tensor ops in `../_lib/casekit_torch.py` (measurement only).',
}
