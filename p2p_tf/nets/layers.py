"""Keras layers with one change each, used by the U-Net and the PatchGAN.

Convolutions whose weight gradient is one matrix product: `Conv2D` and `Conv2DTranspose` are
Keras' layers (same variables, same forward ops, so checkpoints and exports do not change)
with one difference in training: the gradient with respect to the kernel is computed as
patches(x)^T . dy, an image-patch extraction and a single matrix product, instead of
TensorFlow's Conv2DBackpropFilter kernel. On the 2-core CPU we measure on,
Conv2DBackpropFilter took about 40% of a 256x256 step, and was slowest on the small, wide
layers near the U-Net bottleneck (4x4 and 8x8 maps with 512-1024 channels), where the product
form is several times faster; the results are the same up to float rounding
(tests/test_layers.py).
Set `matmul_weight_gradients=False` for Keras' own gradient (the benchmark's reference does).

`Dropout` draws a different mask on each replica of a tf.distribute strategy (Keras' draws the
same one on all of them, its RNG state being mirrored); with one replica it is Keras' layer.
"""

import contextlib
import threading

import keras
import tensorflow as tf


def patches(images, kernel_size, stride, padding):
    """[batch, H', W', kh * kw * C] windows of `images`, laid out as a conv kernel's
    [kh, kw, C] and placed as a conv with this stride and padding ('SAME'/'VALID') places them."""
    return tf.image.extract_patches(images, [1, kernel_size[0], kernel_size[1], 1],
                                    [1, stride, stride, 1], [1, 1, 1, 1], padding)


def conv2d(inputs, kernel, stride, padding):
    """tf.nn.conv2d (kernel [kh, kw, C_in, C_out]) with the kernel gradient as a matmul."""
    @tf.custom_gradient
    def convolve(inputs, kernel):
        def gradient(output_gradient):
            input_gradient = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(inputs), filter=kernel, out_backprop=output_gradient,
                strides=[1, stride, stride, 1], padding=padding)
            windows = patches(inputs, kernel.shape[:2], stride, padding)
            kernel_gradient = tf.einsum('bhwp,bhwo->po', windows, output_gradient)
            return input_gradient, tf.reshape(kernel_gradient, tf.shape(kernel))
        return tf.nn.conv2d(inputs, kernel, stride, padding), gradient
    # A tensor, not the variable: custom_gradient would otherwise want variable gradients.
    return convolve(inputs, tf.convert_to_tensor(kernel))


def conv2d_transpose(inputs, kernel, stride):
    """tf.nn.conv2d_transpose with 'SAME' padding (kernel [kh, kw, C_out, C_in], output
    [batch, stride H, stride W, C_out]) with the kernel gradient as a matmul."""
    @tf.custom_gradient
    def convolve(inputs, kernel):
        shape = tf.shape(inputs)
        output_shape = tf.stack([shape[0], stride * shape[1], stride * shape[2],
                                 kernel.shape[2]])

        def gradient(output_gradient):
            input_gradient = tf.nn.conv2d(output_gradient, kernel, stride, 'SAME')
            windows = patches(output_gradient, kernel.shape[:2], stride, 'SAME')
            kernel_gradient = tf.einsum('bhwp,bhwi->pi', windows, inputs)
            return input_gradient, tf.reshape(kernel_gradient, tf.shape(kernel))
        return tf.nn.conv2d_transpose(inputs, kernel, output_shape, stride, 'SAME'), gradient
    return convolve(inputs, tf.convert_to_tensor(kernel))


def simple(layer):
    """Whether the layer is a plain channels-last, square-stride, undilated convolution."""
    return (layer.data_format == 'channels_last' and set(layer.dilation_rate) == {1}
            and len(set(layer.strides)) == 1 and getattr(layer, 'groups', 1) == 1)


@keras.saving.register_keras_serializable('p2p_tf')
class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D with the kernel gradient as a matmul (see the module docstring)."""

    def __init__(self, *args, matmul_weight_gradients=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.matmul_weight_gradients = matmul_weight_gradients

    def convolution_op(self, inputs, kernel):
        if not (self.matmul_weight_gradients and simple(self)):
            return super().convolution_op(inputs, kernel)
        return conv2d(inputs, kernel, self.strides[0], self.padding.upper())

    def get_config(self):
        return dict(super().get_config(), matmul_weight_gradients=self.matmul_weight_gradients)


@keras.saving.register_keras_serializable('p2p_tf')
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose with the kernel gradient as a matmul (module docstring)."""

    def __init__(self, *args, matmul_weight_gradients=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.matmul_weight_gradients = matmul_weight_gradients

    def call(self, inputs):
        if not (self.matmul_weight_gradients and simple(self) and self.padding == 'same'
                and self.output_padding is None):
            return super().call(inputs)
        outputs = conv2d_transpose(inputs, self.kernel, self.strides[0])
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return dict(super().get_config(), matmul_weight_gradients=self.matmul_weight_gradients)


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
