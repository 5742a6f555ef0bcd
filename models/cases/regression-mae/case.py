# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Regression on scikit-learn's diabetes set (standardized X and y), 'mean_absolute_error' vs `nn.L1Loss()`; the port's `SGD` keeps torch's default lr=1e-3 where Keras uses 0.01.",
    'arch': 'mlp',
    'data': 'diabetes',
    'optimizer': ('SGD', {}),
    'loss': 'mae',
    'plants': ['sgd-default-lr'],
    'top': 'sgd-default-lr',
    'mentions': ['absolute error'],
    'never': ['crossentropy'],
    'notes': 'A regression model: the measurement metric is the Keras loss itself (absolute error) of the eval-mode outputs against the standardized targets, not a cross-entropy.',
}
