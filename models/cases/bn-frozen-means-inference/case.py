# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Fine-tuning with frozen BatchNorm: Keras `layer.trainable = False` runs both BatchNormalization layers in inference mode; the port freezes their weight/bias but leaves them in training mode.',
    'arch': 'cnn',
    'opts': {'bn': True, 'frozen_bn': ['bn1', 'bn2']},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['bn-frozen-means-inference'],
    'top': 'bn-frozen-means-inference',
    'pretrain': 200,
}
