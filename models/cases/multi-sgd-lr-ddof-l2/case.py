# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Three differences in the branched wine model: torch SGD default lr, inputs standardized with ddof 1, L2 mapped to λ instead of 2λ.',
    'arch': 'branch',
    'opts': {'l2': 0.01},
    'optimizer': ('SGD', {'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['sgd-default-lr', 'std-ddof', 'l2-regularizer-factor-two'],
    'top': 'sgd-default-lr',
}
