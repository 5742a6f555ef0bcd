# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `UpSampling2D(2, interpolation='bilinear')` (half-pixel centres); the port uses `F.interpolate(..., mode='bilinear', align_corners=True)` (trained weights).",
    'arch': 'cnn',
    'opts': {'stem': 'strided', 'up': 'bilinear'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['resize-semantics'],
    'top': 'resize-semantics',
    'pretrain': 100,
    'notes': "The torch bundle's model.onnx has a `Resize` with coordinate_transformation_mode=align_corners.",
}
