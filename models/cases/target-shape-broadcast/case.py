# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Sigmoid output + mean squared error; the port's targets have shape (N,) against outputs (N, 1), so `MSELoss` broadcasts to (N, N).",
    'arch': 'branch',
    'data': 'breast_cancer',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'binary_mse',
    'plants': ['target-shape-broadcast'],
    'top': 'target-shape-broadcast',
    'notes': "torch warns (`Using a target size that is different to the input size`); the bundle's torch inputs.safetensors holds y with shape (256,) while the model outputs (N, 1).",
}
