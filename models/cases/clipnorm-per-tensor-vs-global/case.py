# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `SGD(clipnorm=1.0)` clips each gradient tensor; the port calls `clip_grad_norm_(model.parameters(), 1.0)` (one global norm).',
    'arch': 'cnn',
    'optimizer': ('SGD', {'learning_rate': 0.1, 'momentum': 0.9, 'clipnorm': 1.0}),
    'loss': 'categorical',
    'plants': ['clipnorm-per-tensor-vs-global'],
    'top': 'clipnorm-per-tensor-vs-global',
}
