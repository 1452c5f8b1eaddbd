"""The pix2pix networks: a U-Net generator and a PatchGAN discriminator (paper Sec. 3.2, 6.1).

Built with the Keras functional API from the TensorFlow tutorial's `downsample` / `upsample`
blocks. Where the tutorial departs from the paper we follow the paper; each such line says so.
Both networks take images of any height and width (multiples of 2**depth for the generator).

`dtype` is a Keras dtype policy ('float32', 'mixed_bfloat16', 'mixed_float16'): with a mixed
policy, weights stay float32 and layers compute in 16 bits, except the output layers, which
compute in float32 so that images, logits and losses stay float32 (p2p_tf/training/performance.py
picks the policy). `matmul_weight_gradients` and `fast_transposed_passes` pick how convolutions
compute their passes in training (p2p_tf/nets/convolution_passes.py); they change no variable and
no result beyond float rounding.
`synchronized_batch_norm` makes BatchNorm's training-mode statistics those of the global batch
of all replicas of a tf.distribute strategy (p2p_tf/training/distribution.py); it changes no
variable either, so checkpoints of networks built with and without it are interchangeable.
"""

import keras
import numpy as np

from p2p_tf import config as config_lib
from p2p_tf import image_sizes
from p2p_tf.nets import layers

# Paper appendix 6.1: "All ReLUs in the encoder are leaky, with slope 0.2" (Keras' default is 0.3).
LEAKY_RELU_SLOPE = 0.2


def conv_initializer():
    # Paper appendix 6.2: weights initialised from a Gaussian with mean 0 and std 0.02.
    return keras.initializers.RandomNormal(0.0, 0.02)


def batch_norm(dtype=None, synchronized=False, fused=False):
    # Same N(1, 0.02) scale initialisation as the authors' code (weights_init in the reference).
    # synchronized: statistics over the global batch of all replicas
    # (p2p_tf/training/distribution.py); fused: training-mode calls as one TensorFlow kernel
    # (layers.FusedBatchNormalization; not with synchronized statistics).
    layer_class = (layers.FusedBatchNormalization if fused and not synchronized
                   else keras.layers.BatchNormalization)
    return layer_class(gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02),
                       dtype=dtype, synchronized=synchronized)


def normalization(norm='batch', dtype=None, synchronized=False, fused=False):
    """norm 'batch' (the paper) or 'instance': each example's own statistics per channel, in
    training and inference alike, so a batch never mixes them (the authors' and pix2pixHD's
    InstanceNorm: no learned scale or offset, no running averages)."""
    if norm == 'instance':
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=False,
                                               scale=False, dtype=dtype)
    return batch_norm(dtype, synchronized, fused)


def downsample(filters, size, apply_norm=True, strides=2, dtype=None,
               matmul_weight_gradients=True, synchronized_batch_norm=False, norm='batch',
               fast_transposed_passes=False, fused_batch_norm=False):
    """Conv (stride 2) -> BatchNorm -> LeakyReLU(0.2): halves height and width."""
    block = keras.Sequential()
    # No bias, as in the tutorial and the authors' encoder: BatchNorm's beta takes its place.
    # (A biased conv + LeakyReLU also trips a TensorFlow graph-rewrite error on CPU.)
    block.add(layers.Conv2D(filters, size, strides=strides, padding='same',
                            kernel_initializer=conv_initializer(), use_bias=False, dtype=dtype,
                            matmul_weight_gradients=matmul_weight_gradients,
                            fast_transposed_passes=fast_transposed_passes))
    if apply_norm:
        block.add(normalization(norm, dtype, synchronized_batch_norm, fused_batch_norm))
    block.add(keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, dtype=dtype))
    return block


# How the decoder doubles height and width: the paper's 4x4 transposed convolution, or a resize
# (nearest or bilinear) then a 3x3 convolution, which cannot leave the checkerboard pattern of
# overlapping transposed-convolution strides (Odena et al. 2016, "Deconvolution and
# Checkerboard Artifacts").
# config.UPSAMPLINGS other than 'transpose' -> their resize.
UPSAMPLE_INTERPOLATIONS = {'resize_conv': 'nearest', 'resize_conv_bilinear': 'bilinear'}


def upsampling_layers(filters, size, upsample, dtype, **conv_options):
    """The layers that double H and W with `filters` outputs (config.UPSAMPLINGS);
    conv_options: the convolution's (pass settings, bias, activation)."""
    if upsample == 'transpose':
        return [layers.Conv2DTranspose(filters, size, strides=2, padding='same',
                                       kernel_initializer=conv_initializer(), dtype=dtype,
                                       **conv_options)]
    return [layers.Upsample2x(UPSAMPLE_INTERPOLATIONS[upsample], dtype=dtype),
            layers.Conv2D(filters, 3, padding='same', kernel_initializer=conv_initializer(),
                          dtype=dtype, **conv_options)]


def upsample(filters, size, apply_dropout=False, dropout_rate=0.5, dtype=None,
             matmul_weight_gradients=True, synchronized_batch_norm=False, norm='batch',
             upsampling='transpose', fast_transposed_passes=False, fused_batch_norm=False):
    """Transposed conv (stride 2) -> BatchNorm -> Dropout (optional) -> ReLU: doubles H and W
    (upsampling: one of config.UPSAMPLINGS)."""
    block = keras.Sequential()
    for layer in upsampling_layers(filters, size, upsampling, dtype, use_bias=False,
                                   matmul_weight_gradients=matmul_weight_gradients,
                                   fast_transposed_passes=fast_transposed_passes):
        block.add(layer)
    block.add(normalization(norm, dtype, synchronized_batch_norm, fused_batch_norm))
    if apply_dropout:
        block.add(layers.Dropout(dropout_rate, dtype=dtype))
    block.add(keras.layers.ReLU(dtype=dtype))
    return block


def encoder_filters(depth, base_filters=64):
    """C64-C128-C256-C512-C512-... for `depth` layers, scaled by base_filters / 64."""
    return [base_filters * min(2 ** i, 8) for i in range(depth)]


def unet_generator(depth=8, input_channels=3, output_channels=3, base_filters=64,
                   dropout_rate=0.5, dtype=None, matmul_weight_gradients=True,
                   synchronized_batch_norm=False, norm='batch', upsampling='transpose',
                   fast_transposed_passes=False, fused_batch_norm=False):
    """The paper's U-Net: [batch, H, W, input_channels] in [-1, 1] -> [batch, H, W, output_channels]
    in [-1, 1] (tanh). H and W must be multiples of 2**depth; depth 8 is the paper's 256x256 net.

    Encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder CD512-CD512-CD512-C512-C256-C128-C64
    with skip connections between mirrored layers (for depth 8).
    """
    filters = encoder_filters(depth, base_filters)
    # Paper appendix 6.1: no BatchNorm on the first encoder layer. Nor on the 1x1 bottleneck
    # (the authors' code; the tutorial keeps it): with batch size 1 a training-mode BatchNorm of a
    # single value outputs its beta, so the bottleneck would carry no information.
    passes = dict(matmul_weight_gradients=matmul_weight_gradients,
                  fast_transposed_passes=fast_transposed_passes)
    options = dict(dtype=dtype, synchronized_batch_norm=synchronized_batch_norm, norm=norm,
                   fused_batch_norm=fused_batch_norm, **passes)
    down_stack = [downsample(f, 4, apply_norm=0 < i < depth - 1, **options)
                  for i, f in enumerate(filters)]
    # Dropout (rate 0.5) on the first three decoder layers (paper Sec. 3.2, appendix 6.1.1).
    up_stack = [upsample(f, 4, apply_dropout=i < 3, dropout_rate=dropout_rate,
                         upsampling=upsampling, **options)
                for i, f in enumerate(reversed(filters[:-1]))]
    last_layers = upsampling_layers(output_channels, 4, upsampling, output_dtype(dtype),
                                    activation='tanh', **passes)
    last = last_layers[0] if len(last_layers) == 1 else keras.Sequential(last_layers)

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


def pair_inputs(input_channels, target_channels):
    return (keras.Input(shape=[None, None, input_channels], name='input_image'),
            keras.Input(shape=[None, None, target_channels], name='target_image'))


def patchgan_discriminator(num_layers=3, input_channels=3, target_channels=3, base_filters=64,
                           dtype=None, matmul_weight_gradients=True,
                           synchronized_batch_norm=False, norm='batch', features=False,
                           name='patchgan_discriminator', fast_transposed_passes=False,
                           fused_batch_norm=False):
    """PatchGAN on the (input, target) pair: two [batch, H, W, C] images in [-1, 1] -> logits
    [batch, H', W', 1], one per overlapping patch; features=True: [the activations of each
    layer before the last, ..., logits] (for the feature-matching loss).

    num_layers stride-2 layers give receptive fields 16 (1), 34 (2), 70 (3, the paper's default),
    142 (4) and 286 (5); num_layers=0 is the paper's 1x1 PixelGAN.
    """
    input_image, target_image = pair_inputs(input_channels, target_channels)
    passes = dict(matmul_weight_gradients=matmul_weight_gradients,
                  fast_transposed_passes=fast_transposed_passes)
    options = dict(dtype=dtype, synchronized_batch_norm=synchronized_batch_norm, norm=norm,
                   fused_batch_norm=fused_batch_norm, **passes)
    x = keras.layers.Concatenate(dtype=dtype)([input_image, target_image])
    activations = []
    if num_layers == 0:
        x = downsample(base_filters, 1, apply_norm=False, strides=1, **options)(x)
        activations.append(x)
        x = downsample(base_filters * 2, 1, strides=1, **options)(x)
        activations.append(x)
        logits = layers.Conv2D(1, 1, kernel_initializer=conv_initializer(),
                               dtype=output_dtype(dtype), **passes)(x)
    else:
        # C64 (no BatchNorm, paper appendix 6.1.2)-C128-C256-..., each halving the size.
        for i in range(num_layers):
            x = downsample(base_filters * min(2 ** i, 8), 4, apply_norm=i > 0, **options)(x)
            activations.append(x)
        # Two stride-1 4x4 convs with one pixel of zero padding, as the tutorial and the paper's
        # code: C512 and a 1-channel output.
        x = keras.layers.ZeroPadding2D(dtype=dtype)(x)
        x = layers.Conv2D(base_filters * min(2 ** num_layers, 8), 4,
                          kernel_initializer=conv_initializer(), use_bias=False, dtype=dtype,
                          **passes)(x)
        x = normalization(norm, dtype, synchronized_batch_norm, fused_batch_norm)(x)
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE, dtype=dtype)(x)
        activations.append(x)
        x = keras.layers.ZeroPadding2D(dtype=dtype)(x)
        logits = layers.Conv2D(1, 4, kernel_initializer=conv_initializer(),
                               dtype=output_dtype(dtype), **passes)(x)
    return keras.Model(inputs=[input_image, target_image],
                       outputs=activations + [logits] if features else logits, name=name)


def downscaled(image, times, dtype=None):
    """`image` average-pooled `times` times by 3x3 windows of stride 2 (pix2pixHD's
    downsampling between discriminator scales; padding not counted in the mean)."""
    for _ in range(times):
        image = keras.layers.AveragePooling2D(3, strides=2, padding='same', dtype=dtype)(image)
    return image


def multiscale_discriminator(num_scales=2, input_channels=3, target_channels=3, features=False,
                             dtype=None, **patchgan_options):
    """pix2pixHD's multi-scale discriminator (Wang et al. 2018, Sec. 3.2): num_scales PatchGANs
    of the same architecture and their own weights, on the pair at full, 1/2 and 1/4
    resolution. Outputs [[features..., logits] of each scale] (features as for the PatchGAN;
    none without `features`), full resolution first."""
    input_image, target_image = pair_inputs(input_channels, target_channels)
    outputs = []
    for scale in range(num_scales):
        patchgan = patchgan_discriminator(
            input_channels=input_channels, target_channels=target_channels, dtype=dtype,
            features=True, name=f'patchgan_scale_{scale}', **patchgan_options)
        scaled = patchgan([downscaled(input_image, scale, dtype),
                           downscaled(target_image, scale, dtype)])
        outputs.append(scaled if features else scaled[-1:])
    return keras.Model(inputs=[input_image, target_image], outputs=outputs,
                       name='multiscale_discriminator')


def scales(outputs):
    """A discriminator's outputs (any of patchgan_discriminator's or
    multiscale_discriminator's) -> [(features list, logits) of each scale]."""
    if not isinstance(outputs, (list, tuple)):
        return [([], outputs)]
    if not isinstance(outputs[0], (list, tuple)):
        outputs = [outputs]
    return [(list(scale[:-1]), scale[-1]) for scale in outputs]


def receptive_field(num_layers, scale=0):
    """Side of the square input window that one discriminator logit sees; scale k: that of
    the PatchGAN on the input downscaled k times (multiscale_discriminator), in full-resolution
    pixels."""
    size = 1 if num_layers == 0 else 1 + 3 + 3  # The two stride-1 4x4 convs.
    for _ in range(num_layers):
        size = 2 * size + 2  # A stride-2 4x4 conv.
    for _ in range(scale):
        size = 2 * size + 1  # A 3x3 average pool of stride 2.
    return size


def output_dtype(dtype):
    """Output layers compute in float32 under a mixed policy (the Keras mixed-precision guide's
    advice: a float16 sigmoid/tanh input loses precision and the losses want float32)."""
    return 'float32' if dtype and str(getattr(dtype, 'name', dtype)).startswith('mixed') else dtype


def generator_from_config(config, **options):
    """The U-Net a resolved config describes (its depth follows config.image_size); options:
    dtype, matmul_weight_gradients, fast_transposed_passes, synchronized_batch_norm,
    fused_batch_norm."""
    return unet_generator(
        depth=image_sizes.unet_depth(config.image_size), input_channels=config.input_channels,
        output_channels=config.output_channels, base_filters=config.generator_filters,
        dropout_rate=config.dropout_rate, norm=config.norm, upsampling=config.upsample,
        **options)


def discriminator_from_config(config, **options):
    """The PatchGAN with the receptive field config.patch_size, at config.num_discriminators
    scales, with the features that feature matching compares when its weight is not 0; options
    as for the generator. Its outputs go through `scales`."""
    architecture = dict(num_layers=config_lib.PATCH_SIZES[config.patch_size],
                        input_channels=config.input_channels,
                        target_channels=config.output_channels,
                        base_filters=config.discriminator_filters, norm=config.norm,
                        features=config.feature_matching_weight > 0, **options)
    if config.num_discriminators == 1:
        return patchgan_discriminator(**architecture)
    return multiscale_discriminator(config.num_discriminators, **architecture)


def fold_batch_norm(generator, fast_transposed_passes=False):
    """A copy of `generator` for eval-mode inference, with each BatchNorm folded into the
    convolution before it and Dropout left out: w' = w * s, b' = beta - mean * s with
    s = gamma / sqrt(variance + epsilon), per output channel. Its call (any `training`)
    equals generator(x, training=False) up to float rounding, with two fewer element-wise
    passes over each activation map. fast_transposed_passes: the copy's transposed
    convolutions compute in the weight-stationary form on small maps, chosen at run time for
    maps of unknown size (p2p_tf/nets/convolution_passes.py)."""
    folded_blocks = []  # (original layer, its copy, the BatchNorm folded away or None)
    convolutions = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)

    def copy_config(layer, **changes):
        config = dict(layer.get_config(), **changes)
        if fast_transposed_passes and isinstance(layer, layers.Conv2DTranspose):
            config['fast_transposed_passes'] = True
        return config

    def fold(layer):
        norms = [sub for sub in getattr(layer, 'layers', [])
                 if isinstance(sub, keras.layers.BatchNormalization)]
        if not isinstance(layer, keras.Sequential) or not norms:
            clone = layer.__class__.from_config(copy_config(layer))
            folded_blocks.append((layer, clone, None))
            return clone
        # The block without BatchNorm and Dropout, its convolution given the folded bias (a
        # resize-conv block keeps its resize in front).
        block = keras.Sequential([
            sub.__class__.from_config(copy_config(sub, use_bias=True)
                                      if isinstance(sub, convolutions) else sub.get_config())
            for sub in layer.layers
            if not isinstance(sub, (keras.layers.BatchNormalization, keras.layers.Dropout))])
        folded_blocks.append((layer, block, norms[0]))
        return block

    folded = keras.models.clone_model(generator, clone_function=fold)
    for original, clone, norm in folded_blocks:
        if norm is None:
            clone.set_weights(original.get_weights())
            continue
        conv = next(sub for sub in original.layers if isinstance(sub, convolutions))
        folded_conv = next(sub for sub in clone.layers if isinstance(sub, convolutions))
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
        folded_conv.set_weights([kernel, bias])
    return folded
