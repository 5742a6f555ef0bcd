# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "GAN-style init in the port: `nn.init.normal_(bn.weight, 1.0, 0.02)`, `nn.init.zeros_(bn.bias)` for every BatchNorm, where Keras starts gamma at ones and beta at zeros (the port copies the other weights from Keras).",
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['bn-affine-init'],
    'top': 'bn-affine-init',
}
