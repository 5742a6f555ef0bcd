# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `SGD(momentum=0.9)` with a per-step `ExponentialDecay` vs torch `SGD(momentum=0.9)` + the same schedule (`ExponentialLR`, stepped per step): Keras's velocity holds lr·g, torch's buffer raw gradients.",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': ('ExponentialDecay', {'initial_learning_rate': 0.1, 'decay_steps': 1, 'decay_rate': 0.97}), 'momentum': 0.9}),
    'loss': 'categorical',
    'plants': ['sgd-momentum-lr-in-buffer'],
    'top': 'sgd-momentum-lr-in-buffer',
}
