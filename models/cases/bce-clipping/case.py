# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Sigmoid output + binary cross-entropy on both sides; the port keeps the sigmoid in `forward` and uses `nn.BCELoss()` (Keras's TF backend computes the loss from the logits); unscaled inputs saturate the sigmoid.",
    'arch': 'branch',
    'data': 'breast_cancer_raw',
    'optimizer': ('SGD', {'learning_rate': 0.001}),
    'loss': 'binary',
    'plants': ['bce-clipping'],
    'top': 'bce-clipping',
    'notes': "The features are unscaled (areas up to ~2500), so the initial logits are in the hundreds and the sigmoid saturates to exactly 0 or 1 in float32. Keras (TensorFlow backend) computes `binary_crossentropy` from the logits of its sigmoid output, so its gradient p − y stays informative. torch's `BCELoss` sees p = 0 or 1: the loss is clamped at 100 and the gradient through the saturated sigmoid is exactly 0, so those samples never move.",
}
