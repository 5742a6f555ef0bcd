# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Dense kernels copied with `K.reshape(out, in)` instead of `K.T` (trained weights).',
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['dense-layout'],
    'top': 'dense-layout',
    'pretrain': 200,
}
