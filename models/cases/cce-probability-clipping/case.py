# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras trained on the **torch backend** (fit.json backend 'torch'): `categorical_crossentropy` on the softmax output clips the probabilities to [1e-7, 1 − 1e-7]; the port's `CrossEntropyLoss` on logits does not. Raw digit pixels (0..16) make the initial logits large, so many samples start confidently wrong.",
    'arch': 'mlp',
    'data': 'digits_raw',
    'optimizer': ('SGD', {'learning_rate': 0.001}),
    'loss': 'categorical',
    'keras_backend': 'torch',
    'plants': ['cce-probability-clipping'],
    'top': 'cce-probability-clipping',
    'notes': "On the TensorFlow backend (every other case) Keras computes this loss from the logits of its softmax output and nothing is clipped; on the torch and JAX backends the clip applies, and a sample whose true-class probability is below 1e-7 contributes a constant 16.118 to the loss and no gradient. gen_keras.py sets `CASEKIT_KERAS_BACKEND=torch` before importing the kit, so that process imports torch (as Keras's backend) and no TensorFlow.",
}
