# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `SGD(use_ema=True)` (ema_momentum 0.99): fit ends by overwriting the weights with their moving average; the port trains plain SGD.',
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'use_ema': True}),
    'loss': 'categorical',
    'plants': ['ema-weights'],
    'top': 'ema-weights',
    'notes': "The metric is taken from the model's current weights; Keras overwrites them with the moving average only at the end of `fit`, so the curves agree until step 90 and part at step 100 (small mean gap, large final gap).",
}
