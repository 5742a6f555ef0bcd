# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `Nadam()` vs torch `NAdam()` (both defaults: momentum schedule, lr, ε) on an MLP.',
    'arch': 'mlp',
    'optimizer': ('Nadam', {}),
    'loss': 'categorical',
    'plants': ['nadam-momentum-schedule'],
    'top': 'nadam-momentum-schedule',
}
