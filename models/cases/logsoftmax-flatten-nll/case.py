# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Faithful port, no difference: a CNN whose classifier is a 1×1 convolution to the 10 classes and a global average pool; Keras ends `Softmax() → Flatten()` with sparse categorical cross-entropy, the port ends `LogSoftmax(dim=1) → Flatten()` with `NLLLoss`.',
    'arch': 'cnn',
    'opts': {'head': 'conv_gap'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'top': None,
    'absent_extra': ['loss-mismatch'],
    'absent_drop': ['cce-probability-clipping'],
    'notes': 'The output activation is followed by a shape-only op on both sides (Flatten of a (N, 1, 1, 10) / (N, 10, 1, 1) tensor), so an analysis must look through it to see that torch already ends in log_softmax for its NLLLoss. `cce-probability-clipping` is not asserted absent here: with the Flatten after the softmax, Keras on TensorFlow no longer finds the logits and computes the loss from clipped probabilities (no effect in this run: no probability reaches 1e-7).',
}
