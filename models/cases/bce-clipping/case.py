# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Sigmoid output + binary cross-entropy on both sides; the port keeps the sigmoid in `forward` and uses `nn.BCELoss()` (Keras's TF backend computes the loss from the logits); unscaled inputs saturate the sigmoid.",
    'arch': 'branch',
    'data': 'breast_cancer_raw',
    'optimizer': ('SGD', {'learning_rate': 0.001}),
    'loss': 'binary',
    'plants': ['bce-clipping'],
    'top': 'bce-clipping',
}
