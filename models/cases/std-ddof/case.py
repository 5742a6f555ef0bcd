# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Same raw wine rows; Keras inputs standardized with StandardScaler (ddof 0), the port's with `torch.std` (ddof 1).",
    'arch': 'branch',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['std-ddof'],
    'top': 'std-ddof',
    'notes': "Expected to be small: the statistics come from the 142-row wine training split, so torch's inputs are √(141/142) = 0.99647 times Keras's in every feature. The analysis can see the exact factor by comparing the two inputs.safetensors.",
}
