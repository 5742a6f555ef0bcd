# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `MeanSquaredError(reduction='sum')` on softmax outputs sums per-sample means; the port's `MSELoss(reduction='sum')` sums all 10 elements of every sample.",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.01}),
    'loss': 'categorical_mse_sum',
    'plants': ['loss-per-sample-mean-and-sum'],
    'top': 'loss-per-sample-mean-and-sum',
    'notes': "Keras's sum of per-sample means times 10 is torch's sum; with the same lr, torch takes 10× larger steps.",
}
