"""The pix2pix networks: a U-Net generator and a PatchGAN discriminator (paper Sec. 3.2, 6.1).

Built with the Keras functional API from the TensorFlow tutorial's `downsample` / `upsample`
blocks. Where the tutorial departs from the paper we follow the paper; each such line says so.
Both networks take images of any height and width (multiples of 2**depth for the generator).

`dtype` is a Keras dtype policy ('float32', 'mixed_bfloat16', 'mixed_float16'): with a mixed
policy, weights stay float32 and layers compute in 16 bits, except the output layers, which
compute in float32 so that images, logits and losses stay float32 (p2p_tf/training/performance.py
picks the policy). `matmul_weight_gradients` picks how convolutions compute their kernel gradients
in training (p2p_tf/nets/layers.py); it changes no variable and no forward computation.
`synchronized_batch_norm` makes BatchNorm's training-mode statistics those of the global batch
of all replicas of a tf.distribute strategy (p2p_tf/training/distribution.py); it changes no
variable either, so checkpoints of networks built with and without it are interchangeable.
"""

import keras
import numpy as np

from p2p_tf import config as config_lib
from p2p_tf.nets import layers

# Paper appendix 6.1: "All ReLUs in the encoder are leaky, with slope 0.2" (Keras' default is 0.3).
LEAKY_RELU_SLOPE = 0.2


def conv_initializer():
    # Paper appendix 6.2: weights initialised from a Gaussian with mean 0 and std 0.02.
    return keras.initializers.RandomNormal(0.0, 0.02)


def batch_norm(dtype=None, synchronized=False):
    # Same N(1, 0.02) scale initialisation as the authors' code (weights_init in the reference).
    # synchronized: statistics over the global batch of all replicas
    # (p2p_tf/training/distribution.py).
    return keras.layers.BatchNormalization(
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), dtype=dtype,
        synchronized=synchronized)


def downsample(filters, size, apply_norm=True, strides=2, dtype=None,
               matmul_weight_gradients=True, synchronized_batch_norm=False):
    """Conv (stride 2) -> BatchNorm -> LeakyReLU(0.2): halves height and width."""
    block = keras.Sequential()
    # No bias, as in the tutorial and the authors' encoder: BatchNorm's beta takes its place.
    # (A biased conv + LeakyReLU also trips a TensorFlow graph-rewrite error on CPU.)
    block.add(layers.Conv2D(filters, size, strides=strides, padding='same',
                            kernel_initializer=conv_initializer(), use_bias=False, dtype=dtype,
                            matmul_weight_gradients=matmul_weight_gradients))
    if apply_norm:
        block.add(batch_norm(dtype, synchronized_batch_norm))
    block.add(keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, dtype=dtype))
    return block


def upsample(filters, size, apply_dropout=False, dropout_rate=0.5, dtype=None,
             matmul_weight_gradients=True, synchronized_batch_norm=False):
    """Transposed conv (stride 2) -> BatchNorm -> Dropout (optional) -> ReLU: doubles H and W."""
    block = keras.Sequential()
    block.add(layers.Conv2DTranspose(filters, size, strides=2, padding='same',
                                     kernel_initializer=conv_initializer(), use_bias=False,
                                     dtype=dtype, matmul_weight_gradients=matmul_weight_gradients))
    block.add(batch_norm(dtype, synchronized_batch_norm))
    if apply_dropout:
        block.add(layers.Dropout(dropout_rate, dtype=dtype))
    block.add(keras.layers.ReLU(dtype=dtype))
    return block


def encoder_filters(depth, base_filters=64):
    """C64-C128-C256-C512-C512-... for `depth` layers, scaled by base_filters / 64."""
    return [base_filters * min(2 ** i, 8) for i in range(depth)]


def unet_generator(depth=8, input_channels=3, output_channels=3, base_filters=64,
                   dropout_rate=0.5, dtype=None, matmul_weight_gradients=True,
                   synchronized_batch_norm=False):
    """The paper's U-Net: [batch, H, W, input_channels] in [-1, 1] -> [batch, H, W, output_channels]
    in [-1, 1] (tanh). H and W must be multiples of 2**depth; depth 8 is the paper's 256x256 net.

    Encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder CD512-CD512-CD512-C512-C256-C128-C64
    with skip connections between mirrored layers (for depth 8).
    """
    filters = encoder_filters(depth, base_filters)
    # Paper appendix 6.1: no BatchNorm on the first encoder layer. Nor on the 1x1 bottleneck
    # (the authors' code; the tutorial keeps it): with batch size 1 a training-mode BatchNorm of a
    # single value outputs its beta, so the bottleneck would carry no information.
    options = dict(dtype=dtype, matmul_weight_gradients=matmul_weight_gradients,
                   synchronized_batch_norm=synchronized_batch_norm)
    down_stack = [downsample(f, 4, apply_norm=0 < i < depth - 1, **options)
                  for i, f in enumerate(filters)]
    # Dropout (rate 0.5) on the first three decoder layers (paper Sec. 3.2, appendix 6.1.1).
    up_stack = [upsample(f, 4, apply_dropout=i < 3, dropout_rate=dropout_rate, **options)
                for i, f in enumerate(reversed(filters[:-1]))]
    last = layers.Conv2DTranspose(output_channels, 4, strides=2, padding='same',
                                  kernel_initializer=conv_initializer(), activation='tanh',
                                  dtype=output_dtype(dtype),
                                  matmul_weight_gradients=matmul_weight_gradients)

    inputs = keras.Input(shape=[None, None, input_channels], name='input_image')
    x = inputs
    skips = []
    for down in down_stack:
        x = down(x)
        skips.append(x)
    for up, skip in zip(up_stack, reversed(skips[:-1])):
        x = up(x)
        x = keras.layers.Concatenate(dtype=dtype)([x, skip])
    return keras.Model(inputs=inputs, outputs=last(x), name='unet_generator')


def patchgan_discriminator(num_layers=3, input_channels=3, target_channels=3, base_filters=64,
                           dtype=None, matmul_weight_gradients=True,
                           synchronized_batch_norm=False):
    """PatchGAN on the (input, target) pair: two [batch, H, W, C] images in [-1, 1] -> logits
    [batch, H', W', 1], one per overlapping patch.

    num_layers stride-2 layers give receptive fields 16 (1), 34 (2), 70 (3, the paper's default),
    142 (4) and 286 (5); num_layers=0 is the paper's 1x1 PixelGAN.
    """
    input_image = keras.Input(shape=[None, None, input_channels], name='input_image')
    target_image = keras.Input(shape=[None, None, target_channels], name='target_image')
    options = dict(dtype=dtype, matmul_weight_gradients=matmul_weight_gradients,
                   synchronized_batch_norm=synchronized_batch_norm)
    x = keras.layers.Concatenate(dtype=dtype)([input_image, target_image])
    if num_layers == 0:
        x = downsample(base_filters, 1, apply_norm=False, strides=1, **options)(x)
        x = downsample(base_filters * 2, 1, strides=1, **options)(x)
        logits = layers.Conv2D(1, 1, kernel_initializer=conv_initializer(),
                               dtype=output_dtype(dtype),
                               matmul_weight_gradients=matmul_weight_gradients)(x)
    else:
        # C64 (no BatchNorm, paper appendix 6.1.2)-C128-C256-..., each halving the size.
        for i in range(num_layers):
            x = downsample(base_filters * min(2 ** i, 8), 4, apply_norm=i > 0, **options)(x)
        # Two stride-1 4x4 convs with one pixel of zero padding, as the tutorial and the paper's
        # code: C512 and a 1-channel output.
        x = keras.layers.ZeroPadding2D(dtype=dtype)(x)
        x = layers.Conv2D(base_filters * min(2 ** num_layers, 8), 4,
                          kernel_initializer=conv_initializer(), use_bias=False, dtype=dtype,
                          matmul_weight_gradients=matmul_weight_gradients)(x)
        x = batch_norm(dtype, synchronized_batch_norm)(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, dtype=dtype)(x)
        x = keras.layers.ZeroPadding2D(dtype=dtype)(x)
        logits = layers.Conv2D(1, 4, kernel_initializer=conv_initializer(),
                               dtype=output_dtype(dtype),
                               matmul_weight_gradients=matmul_weight_gradients)(x)
    return keras.Model(inputs=[input_image, target_image], outputs=logits,
                       name='patchgan_discriminator')


def receptive_field(num_layers):
    """Side of the square input window that one discriminator logit sees."""
    if num_layers == 0:
        return 1
    size = 1 + 3 + 3  # The two stride-1 4x4 convs.
    for _ in range(num_layers):
        size = 2 * size + 2  # A stride-2 4x4 conv.
    return size


def output_dtype(dtype):
    """Output layers compute in float32 under a mixed policy (the Keras mixed-precision guide's
    advice: a float16 sigmoid/tanh input loses precision and the losses want float32)."""
    return 'float32' if dtype and str(getattr(dtype, 'name', dtype)).startswith('mixed') else dtype


def generator_from_config(config, **options):
    """The U-Net a resolved config describes (its depth follows config.image_size); options:
    dtype, matmul_weight_gradients, synchronized_batch_norm."""
    return unet_generator(
        depth=config_lib.unet_depth(config.image_size), input_channels=config.input_channels,
        output_channels=config.output_channels, base_filters=config.generator_filters,
        dropout_rate=config.dropout_rate, **options)


def discriminator_from_config(config, **options):
    """The PatchGAN with the receptive field config.patch_size; options as for the generator."""
    return patchgan_discriminator(
        num_layers=config_lib.PATCH_SIZES[config.patch_size],
        input_channels=config.input_channels, target_channels=config.output_channels,
        base_filters=config.discriminator_filters, **options)


def fold_batch_norm(generator):
    """A copy of `generator` for eval-mode inference, with each BatchNorm folded into the
    convolution before it and Dropout left out: w' = w * s, b' = beta - mean * s with
    s = gamma / sqrt(variance + epsilon), per output channel. Its call (any `training`)
    equals generator(x, training=False) up to float rounding, with two fewer element-wise
    passes over each activation map."""
    folded_blocks = []  # (original layer, its copy, the BatchNorm folded away or None)

    def fold(layer):
        norms = [sub for sub in getattr(layer, 'layers', [])
                 if isinstance(sub, keras.layers.BatchNormalization)]
        if not isinstance(layer, keras.Sequential) or not norms:
            clone = layer.__class__.from_config(layer.get_config())
            folded_blocks.append((layer, clone, None))
            return clone
        conv, *rest = (sub for sub in layer.layers
                       if not isinstance(sub, (keras.layers.BatchNormalization,
                                               keras.layers.Dropout)))
        conv_config = dict(conv.get_config(), use_bias=True)
        block = keras.Sequential(
            [conv.__class__.from_config(conv_config)]
            + [sub.__class__.from_config(sub.get_config()) for sub in rest])
        folded_blocks.append((layer, block, norms[0]))
        return block

    folded = keras.models.clone_model(generator, clone_function=fold)
    for original, clone, norm in folded_blocks:
        if norm is None:
            clone.set_weights(original.get_weights())
            continue
        conv = original.layers[0]
        scale = (np.asarray(norm.gamma)
                 / np.sqrt(np.asarray(norm.moving_variance) + norm.epsilon))
        kernel = np.asarray(conv.kernel)
        # Conv2D kernels end in the output channels; Conv2DTranspose kernels are
        # [kh, kw, out, in].
        if isinstance(conv, keras.layers.Conv2DTranspose):
            kernel = kernel * scale[:, None]
        else:
            kernel = kernel * scale
        bias = np.asarray(norm.beta) - np.asarray(norm.moving_mean) * scale
        clone.layers[0].set_weights([kernel, bias])
    return folded
