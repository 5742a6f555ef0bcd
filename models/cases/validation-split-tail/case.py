# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Wine rows sorted by class; Keras `fit(validation_split=0.25)` trains on the first 106 rows (holding out the last 36, all of class 2); the port trains on a `random_split` 75%.",
    'arch': 'branch',
    'data': 'wine_sorted',
    'optimizer': ('SGD', {'learning_rate': 0.01, 'momentum': 0.9}),
    'loss': 'sparse',
    'validation_split': 0.25,
    'plants': ['validation-split-tail'],
    'top': 'validation-split-tail',
    'notes': "Keras takes the validation rows from the end of the arrays before any shuffling, so on a file sorted by class it never trains on (most of) the last class; the port's random split trains on every class. The metric is computed on all 142 rows for both sides. The faithful port's torch inputs.safetensors would hold exactly the first 106 rows; this port's holds the 106 rows of `random_split(..., generator=torch.Generator().manual_seed(0))`, in that order.",
}
