# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Regression on scikit-learn's diabetes set (standardized X and y), 'mean_squared_error' vs `nn.MSELoss()`; the port's `SGD` keeps torch's default lr=1e-3 where Keras uses 0.01.",
    'arch': 'mlp',
    'data': 'diabetes',
    'optimizer': ('SGD', {}),
    'loss': 'mse',
    'plants': ['sgd-default-lr'],
    'top': 'sgd-default-lr',
    'mentions': ['squared error'],
    'never': ['crossentropy'],
    'notes': 'A regression model: the measurement metric is the Keras loss itself (squared error) of the eval-mode outputs against the standardized targets, not a cross-entropy.',
}
