# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "A port that changed the architecture: Keras classifies with `Flatten → Dense(10, 'softmax')`, the port with a 1×1 `nn.Conv2d(16, 10, 1)` + global average pooling (no Keras layer to copy its weights from).",
    'arch': 'cnn',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['architecture-mismatch'],
    'top': 'architecture-mismatch',
    'notes': 'The Keras Dense head and the torch 1×1 conv head have no counterpart on the other side: the analysis must report them as an architecture mismatch naming both layers (`fc` and `head`), not leave them as unpaired rows of the alignment table.',
}
