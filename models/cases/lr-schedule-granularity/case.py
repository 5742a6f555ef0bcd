# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `ExponentialDecay(0.1, decay_steps=1, decay_rate=0.97)` (applied every update); the port's `ExponentialLR(gamma=0.97)` is stepped once per epoch.",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': ('ExponentialDecay', {'initial_learning_rate': 0.1, 'decay_steps': 1, 'decay_rate': 0.97})}),
    'loss': 'categorical',
    'plants': ['lr-schedule-granularity'],
    'top': 'lr-schedule-granularity',
}
