"""The pix2pix networks: a U-Net generator and a PatchGAN discriminator (paper Sec. 3.2, 6.1).

Built with the Keras functional API from the TensorFlow tutorial's `downsample` / `upsample`
blocks. Where the tutorial departs from the paper we follow the paper; each such line says so.
Both networks take images of any height and width (multiples of 2**depth for the generator).
"""

import keras

from p2p_tf import config as config_lib

# Paper appendix 6.1: "All ReLUs in the encoder are leaky, with slope 0.2" (Keras' default is 0.3).
LEAKY_RELU_SLOPE = 0.2


def conv_initializer():
    # Paper appendix 6.2: weights initialised from a Gaussian with mean 0 and std 0.02.
    return keras.initializers.RandomNormal(0.0, 0.02)


def batch_norm():
    # Same N(1, 0.02) scale initialisation as the authors' code (weights_init in the reference).
    return keras.layers.BatchNormalization(
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))


def downsample(filters, size, apply_norm=True, strides=2):
    """Conv (stride 2) -> BatchNorm -> LeakyReLU(0.2): halves height and width."""
    block = keras.Sequential()
    # No bias, as in the tutorial and the authors' encoder: BatchNorm's beta takes its place.
    # (A biased conv + LeakyReLU also trips a TensorFlow graph-rewrite error on CPU.)
    block.add(keras.layers.Conv2D(filters, size, strides=strides, padding='same',
                                  kernel_initializer=conv_initializer(), use_bias=False))
    if apply_norm:
        block.add(batch_norm())
    block.add(keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE))
    return block


def upsample(filters, size, apply_dropout=False, dropout_rate=0.5):
    """Transposed conv (stride 2) -> BatchNorm -> Dropout (optional) -> ReLU: doubles H and W."""
    block = keras.Sequential()
    block.add(keras.layers.Conv2DTranspose(filters, size, strides=2, padding='same',
                                           kernel_initializer=conv_initializer(), use_bias=False))
    block.add(batch_norm())
    if apply_dropout:
        block.add(keras.layers.Dropout(dropout_rate))
    block.add(keras.layers.ReLU())
    return block


def encoder_filters(depth, base_filters=64):
    """C64-C128-C256-C512-C512-... for `depth` layers, scaled by base_filters / 64."""
    return [base_filters * min(2 ** i, 8) for i in range(depth)]


def unet_generator(depth=8, input_channels=3, output_channels=3, base_filters=64,
                   dropout_rate=0.5):
    """The paper's U-Net: [batch, H, W, input_channels] in [-1, 1] -> [batch, H, W, output_channels]
    in [-1, 1] (tanh). H and W must be multiples of 2**depth; depth 8 is the paper's 256x256 net.

    Encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder CD512-CD512-CD512-C512-C256-C128-C64
    with skip connections between mirrored layers (for depth 8).
    """
    filters = encoder_filters(depth, base_filters)
    # Paper appendix 6.1: no BatchNorm on the first encoder layer. Nor on the 1x1 bottleneck
    # (the authors' code; the tutorial keeps it): with batch size 1 a training-mode BatchNorm of a
    # single value outputs its beta, so the bottleneck would carry no information.
    down_stack = [downsample(f, 4, apply_norm=0 < i < depth - 1) for i, f in enumerate(filters)]
    # Dropout (rate 0.5) on the first three decoder layers (paper Sec. 3.2, appendix 6.1.1).
    up_stack = [upsample(f, 4, apply_dropout=i < 3, dropout_rate=dropout_rate)
                for i, f in enumerate(reversed(filters[:-1]))]
    last = keras.layers.Conv2DTranspose(output_channels, 4, strides=2, padding='same',
                                        kernel_initializer=conv_initializer(), activation='tanh')

    inputs = keras.Input(shape=[None, None, input_channels], name='input_image')
    x = inputs
    skips = []
    for down in down_stack:
        x = down(x)
        skips.append(x)
    for up, skip in zip(up_stack, reversed(skips[:-1])):
        x = up(x)
        x = keras.layers.Concatenate()([x, skip])
    return keras.Model(inputs=inputs, outputs=last(x), name='unet_generator')


def patchgan_discriminator(num_layers=3, input_channels=3, target_channels=3, base_filters=64):
    """PatchGAN on the (input, target) pair: two [batch, H, W, C] images in [-1, 1] -> logits
    [batch, H', W', 1], one per overlapping patch.

    num_layers stride-2 layers give receptive fields 16 (1), 34 (2), 70 (3, the paper's default),
    142 (4) and 286 (5); num_layers=0 is the paper's 1x1 PixelGAN.
    """
    input_image = keras.Input(shape=[None, None, input_channels], name='input_image')
    target_image = keras.Input(shape=[None, None, target_channels], name='target_image')
    x = keras.layers.Concatenate()([input_image, target_image])
    if num_layers == 0:
        x = downsample(base_filters, 1, apply_norm=False, strides=1)(x)
        x = downsample(base_filters * 2, 1, strides=1)(x)
        logits = keras.layers.Conv2D(1, 1, kernel_initializer=conv_initializer())(x)
    else:
        # C64 (no BatchNorm, paper appendix 6.1.2)-C128-C256-..., each halving the size.
        for i in range(num_layers):
            x = downsample(base_filters * min(2 ** i, 8), 4, apply_norm=i > 0)(x)
        # Two stride-1 4x4 convs with one pixel of zero padding, as the tutorial and the paper's
        # code: C512 and a 1-channel output.
        x = keras.layers.ZeroPadding2D()(x)
        x = keras.layers.Conv2D(base_filters * min(2 ** num_layers, 8), 4,
                                kernel_initializer=conv_initializer(), use_bias=False)(x)
        x = batch_norm()(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)
        x = keras.layers.ZeroPadding2D()(x)
        logits = keras.layers.Conv2D(1, 4, kernel_initializer=conv_initializer())(x)
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


def generator_from_config(config):
    """The U-Net a resolved config describes (its depth follows config.image_size)."""
    return unet_generator(
        depth=config_lib.unet_depth(config.image_size), input_channels=config.input_channels,
        output_channels=config.output_channels, base_filters=config.generator_filters,
        dropout_rate=config.dropout_rate)


def discriminator_from_config(config):
    """The PatchGAN with the receptive field config.patch_size."""
    return patchgan_discriminator(
        num_layers=config_lib.PATCH_SIZES[config.patch_size],
        input_channels=config.input_channels, target_channels=config.output_channels,
        base_filters=config.discriminator_filters)
