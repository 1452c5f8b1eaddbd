"""Keras layers with one change each, used by the U-Net and the PatchGAN.

Convolutions whose passes take faster forms on CPU: `Conv2D` and `Conv2DTranspose` are Keras'
layers (same variables, so checkpoints do not change) whose training passes are computed as
p2p_tf/nets/convolution_passes.py says: `matmul_weight_gradients` computes the gradient with
respect to the kernel as one matrix product or, on large maps, one forward convolution instead
of TensorFlow's Conv2DBackpropFilter (on the 2-core CPU we measure on, that kernel took about
40% of a 256x256 step), and
`fast_transposed_passes` the transposed passes on small maps as weight-stationary products.
With both off they are Keras' own layers (the benchmark's reference); with either on the results
are the same up to float rounding (tests/test_layers.py).

`FusedBatchNormalization` is Keras' BatchNormalization with its training-mode call as
TensorFlow's one fused kernel (`fused_batch_norm`).

`Dropout` draws a different mask on each replica of a tf.distribute strategy (Keras' draws the
same one on all of them, its RNG state being mirrored); with one replica it is Keras' layer.
"""

import contextlib
import threading

import keras
import tensorflow as tf

from p2p_tf.nets import convolution_passes


def simple(layer):
    """Whether the layer is a plain channels-last, square-stride, undilated convolution."""
    return (layer.data_format == 'channels_last' and set(layer.dilation_rate) == {1}
            and len(set(layer.strides)) == 1 and getattr(layer, 'groups', 1) == 1)


class FastPasses:
    """The two pass settings of a convolution layer (convolution_passes' module docstring)."""

    def __init__(self, *args, matmul_weight_gradients=True, fast_transposed_passes=False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.matmul_weight_gradients = matmul_weight_gradients
        self.fast_transposed_passes = fast_transposed_passes

    def pass_settings(self):
        return dict(matmul_weight_gradients=self.matmul_weight_gradients,
                    fast_transposed_passes=self.fast_transposed_passes)

    def any_fast_pass(self):
        return (self.matmul_weight_gradients or self.fast_transposed_passes) and simple(self)

    def get_config(self):
        return dict(super().get_config(), **self.pass_settings())


@keras.saving.register_keras_serializable('p2p_tf')
class Conv2D(FastPasses, keras.layers.Conv2D):
    """keras.layers.Conv2D with its passes in the forms the settings pick (module docstring)."""

    def convolution_op(self, inputs, kernel):
        if not self.any_fast_pass():
            return super().convolution_op(inputs, kernel)
        return convolution_passes.conv2d(inputs, kernel, self.strides[0], self.padding.upper(),
                                         **self.pass_settings())


@keras.saving.register_keras_serializable('p2p_tf')
class Conv2DTranspose(FastPasses, keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose with its passes in the forms the settings pick."""

    def call(self, inputs):
        if not (self.any_fast_pass() and self.padding == 'same'
                and self.output_padding is None):
            return super().call(inputs)
        outputs = convolution_passes.conv2d_transpose(inputs, self.kernel, self.strides[0],
                                                      **self.pass_settings())
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


# Set by stateful_dropout(): Dropout then draws from TensorFlow's stateful random op.
_STATEFUL_DROPOUT = threading.local()


@contextlib.contextmanager
def stateful_dropout():
    """Within the block, Dropout layers traced for training draw their masks from
    tf.nn.dropout's stateful random op instead of Keras' seed generator. An ONNX export in
    paper mode is traced so: ONNX has a random op for that one (RandomUniformLike), none for
    TensorFlow's stateless random ops."""
    _STATEFUL_DROPOUT.on = True
    try:
        yield
    finally:
        _STATEFUL_DROPOUT.on = False


@keras.saving.register_keras_serializable('p2p_tf')
class Dropout(keras.layers.Dropout):
    """keras.layers.Dropout whose mask also depends on the replica: under a strategy with
    several replicas, each replica's seed is the layer's next seed folded with the replica's
    number, so that the examples of a global batch get independent masks as on one device."""

    def call(self, inputs, training=False):
        if training and self.rate > 0 and getattr(_STATEFUL_DROPOUT, 'on', False):
            return tf.nn.dropout(inputs, rate=self.rate, noise_shape=self.noise_shape)
        context = tf.distribute.get_replica_context()
        if not (training and self.rate > 0) or context is None or (
                context.num_replicas_in_sync == 1):
            return super().call(inputs, training=training)
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        seed = tf.random.experimental.stateless_fold_in(self.seed_generator.next(), replica)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed,
                                                    noise_shape=self.noise_shape)


@keras.saving.register_keras_serializable('p2p_tf')
class Upsample2x(keras.layers.Layer):
    """Doubles height and width by nearest-neighbour repetition or bilinear interpolation (the
    resize of a resize-convolution block). Keras' UpSampling2D checks the input's size in
    Python and so cannot be traced for images of unknown size, which exports and translation
    need."""

    def __init__(self, interpolation='nearest', **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, inputs):
        if self.interpolation == 'nearest':
            return tf.repeat(tf.repeat(inputs, 2, axis=1), 2, axis=2)
        shape = tf.shape(inputs)
        resized = tf.image.resize(inputs, [2 * shape[1], 2 * shape[2]], method='bilinear')
        return tf.cast(resized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height and 2 * height, width and 2 * width, channels)

    def get_config(self):
        return dict(super().get_config(), interpolation=self.interpolation)


@keras.saving.register_keras_serializable('p2p_tf')
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training-mode call is TensorFlow's fused kernel,
    FusedBatchNormV3 (the statistics and the normalization in one kernel, and its gradient in
    another, instead of a chain of element-wise ops), as tf.keras 2 did: on the 2-core
    AVX-512 BF16 CPU, forward and backward together 2-3x as fast in bfloat16 and 1.2-1.7x in
    float32 for the networks' shapes. The same variables, the same moving-average update with
    the biased batch variance, and the same results up to float rounding
    (tests/test_layers.py). Any other call (inference, masks, synchronized statistics,
    renormalization, other layouts) is Keras' own."""

    def fuses(self, inputs, training, mask):
        return bool(training and self.trainable and mask is None and not self.synchronized
                    and not self.renorm and self.scale and self.center
                    and len(inputs.shape) == 4 and self.axis in (-1, 3))

    def call(self, inputs, training=None, mask=None):
        if not self.fuses(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=self.gamma, offset=self.beta, mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32), epsilon=self.epsilon, is_training=True)
        # The kernel returns the unbiased batch variance, n / (n - 1) times the one it divides
        # by (n / 1 for n = 1); Keras' moving average takes the biased one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance *= tf.maximum(count - 1, 1) / count
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum
                                    + variance * (1.0 - momentum))
        return outputs
