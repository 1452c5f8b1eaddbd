"""Tests of the U-Net generator and the PatchGAN discriminator: shapes, ranges, the paper's
architecture details, and the discriminator's receptive field measured through its gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.nets import models


def all_layers(model):
    """Every leaf layer of `model`, looking inside the Sequential blocks, in model order."""
    leaves = []
    for layer in model.layers:
        if hasattr(layer, 'layers'):
            leaves.extend(all_layers(layer))
        else:
            leaves.append(layer)
    return leaves


def blocks(model, first_layer_type):
    """The Sequential blocks of `model` whose first layer is a `first_layer_type`, in order."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.Sequential)
            and isinstance(layer.layers[0], first_layer_type)]


def random_images(shape, seed=0):
    return tf.random.stateless_uniform(shape, seed=[seed, 0], minval=-1.0, maxval=1.0)


@pytest.mark.parametrize('depth, height, width', [(5, 32, 32), (6, 64, 64), (5, 64, 96)])
def test_generator_output_has_the_input_height_and_width(depth, height, width):
    generator = models.unet_generator(depth=depth, base_filters=4)
    output = generator(random_images([2, height, width, 3]), training=False)
    assert output.shape == (2, height, width, 3)


@pytest.mark.parametrize('input_channels, output_channels', [(1, 3), (3, 1)])
def test_generator_maps_between_channel_counts(input_channels, output_channels):
    generator = models.unet_generator(depth=5, input_channels=input_channels,
                                      output_channels=output_channels, base_filters=4)
    output = generator(random_images([1, 32, 32, input_channels]), training=False)
    assert output.shape == (1, 32, 32, output_channels)


def test_generator_output_is_tanh_bounded():
    generator = models.unet_generator(depth=5, base_filters=4)
    # Inputs far outside [-1, 1] push the pre-activations to large values; tanh still bounds them.
    output = generator(50.0 * random_images([2, 32, 32, 3]), training=True).numpy()
    assert np.all(np.abs(output) <= 1.0)
    assert np.abs(output).max() > 0.5  # Not trivially squashed to zero.
    last = generator.layers[-1]
    assert isinstance(last, keras.layers.Conv2DTranspose)
    assert last.activation is keras.activations.tanh


def test_encoder_filters_follow_the_paper():
    assert models.encoder_filters(8) == [64, 128, 256, 512, 512, 512, 512, 512]
    assert models.encoder_filters(8, base_filters=4) == [4, 8, 16, 32, 32, 32, 32, 32]


def test_depth_8_generator_has_the_papers_structure():
    generator = models.unet_generator(depth=8, base_filters=4)
    assert generator(random_images([1, 256, 256, 3]), training=False).shape == (1, 256, 256, 3)

    encoder = blocks(generator, keras.layers.Conv2D)
    decoder = blocks(generator, keras.layers.Conv2DTranspose)
    assert [block.layers[0].filters for block in encoder] == [4, 8, 16, 32, 32, 32, 32, 32]
    assert all(block.layers[0].strides == (2, 2) for block in encoder)
    # CD512-CD512-CD512-C512-C256-C128-C64, then the output convolution.
    assert [block.layers[0].filters for block in decoder] == [32, 32, 32, 32, 16, 8, 4]
    assert [any(isinstance(layer, keras.layers.Dropout) for layer in block.layers)
            for block in decoder] == [True] * 3 + [False] * 4
    leaves = all_layers(generator)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in leaves) == 8
    assert sum(isinstance(layer, keras.layers.Conv2DTranspose) for layer in leaves) == 8
    # Each decoder block but the innermost is followed by a skip concatenation, 7 in all.
    assert sum(isinstance(layer, keras.layers.Concatenate) for layer in leaves) == 7


def test_depth_6_decoder_has_dropout_on_its_first_three_blocks_only():
    generator = models.unet_generator(depth=6, base_filters=4, dropout_rate=0.5)
    decoder = blocks(generator, keras.layers.Conv2DTranspose)
    assert len(decoder) == 5
    dropouts = [[layer for layer in block.layers if isinstance(layer, keras.layers.Dropout)]
                for block in decoder]
    assert [len(d) for d in dropouts] == [1, 1, 1, 0, 0]
    assert all(d[0].rate == 0.5 for d in dropouts[:3])
    last = generator.layers[-1]
    assert isinstance(last, keras.layers.Conv2DTranspose)
    assert last.filters == 3 and last.strides == (2, 2)
    assert last.activation is keras.activations.tanh


def test_generator_dropout_is_active_only_in_training():
    generator = models.unet_generator(depth=5, base_filters=4)
    images = random_images([1, 32, 32, 3])
    np.testing.assert_array_equal(generator(images, training=False),
                                  generator(images, training=False))
    assert not np.allclose(generator(images, training=True), generator(images, training=True))


@pytest.mark.parametrize('network', ['generator', 'discriminator'])
def test_every_leaky_relu_has_slope_0_2(network):
    model = (models.unet_generator(depth=5, base_filters=4) if network == 'generator'
             else models.patchgan_discriminator(num_layers=3, base_filters=4))
    leaky = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(leaky) == (5 if network == 'generator' else 4)
    assert all(layer.negative_slope == pytest.approx(0.2) for layer in leaky)


def test_generator_decoder_uses_plain_relu():
    # Paper appendix 6.1: "ReLUs in the decoder are not leaky".
    generator = models.unet_generator(depth=5, base_filters=4)
    for block in blocks(generator, keras.layers.Conv2DTranspose):
        activation = block.layers[-1]
        assert type(activation) is keras.layers.ReLU
        assert not activation.negative_slope


def test_first_and_bottleneck_encoder_blocks_have_no_batch_norm():
    generator = models.unet_generator(depth=6, base_filters=4)
    encoder = blocks(generator, keras.layers.Conv2D)
    has_norm = [any(isinstance(layer, keras.layers.BatchNormalization) for layer in block.layers)
                for block in encoder]
    assert has_norm == [False, True, True, True, True, False]
    # No encoder conv has a bias, as in the tutorial and the authors' code.
    assert not any(block.layers[0].use_bias for block in encoder)


def test_discriminator_first_block_has_no_batch_norm():
    discriminator = models.patchgan_discriminator(num_layers=3, base_filters=4)
    encoder = blocks(discriminator, keras.layers.Conv2D)
    assert [any(isinstance(layer, keras.layers.BatchNormalization) for layer in block.layers)
            for block in encoder] == [False, True, True]


@pytest.mark.parametrize('network', ['generator', 'discriminator'])
def test_initializers_are_the_papers_gaussians(network):
    model = (models.unet_generator(depth=5, base_filters=4) if network == 'generator'
             else models.patchgan_discriminator(num_layers=3, base_filters=4))
    leaves = all_layers(model)
    convs = [layer for layer in leaves if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in leaves if isinstance(layer, keras.layers.BatchNormalization)]
    assert convs and norms
    for conv in convs:
        assert isinstance(conv.kernel_initializer, keras.initializers.RandomNormal)
        config = conv.kernel_initializer.get_config()
        assert (config['mean'], config['stddev']) == (0.0, pytest.approx(0.02))
    for norm in norms:
        assert isinstance(norm.gamma_initializer, keras.initializers.RandomNormal)
        config = norm.gamma_initializer.get_config()
        assert (config['mean'], config['stddev']) == (1.0, pytest.approx(0.02))


def test_initialized_weights_have_the_papers_statistics():
    keras.utils.set_random_seed(0)
    generator = models.unet_generator(depth=5, base_filters=16)
    leaves = all_layers(generator)
    kernel = max((layer.kernel.numpy() for layer in leaves
                  if isinstance(layer, keras.layers.Conv2D)), key=np.size)
    assert kernel.size >= 100_000
    assert abs(kernel.mean()) < 0.002
    assert kernel.std() == pytest.approx(0.02, rel=0.1)
    gammas = np.concatenate([layer.gamma.numpy() for layer in leaves
                             if isinstance(layer, keras.layers.BatchNormalization)])
    assert gammas.size >= 400
    assert gammas.mean() == pytest.approx(1.0, abs=0.005)
    assert gammas.std() == pytest.approx(0.02, rel=0.1)


def input_window_of_center_logit(num_layers, size):
    """The input pixels on which the center logit of a discriminator depends: a boolean
    [size, size] mask of nonzero gradient, summed over both images and their channels."""
    keras.utils.set_random_seed(num_layers)
    discriminator = models.patchgan_discriminator(num_layers=num_layers, base_filters=4)
    input_image = tf.Variable(random_images([1, size, size, 3], seed=1))
    target_image = tf.Variable(random_images([1, size, size, 3], seed=2))
    with tf.GradientTape() as tape:
        # training=False: BatchNorm then uses its moving statistics and mixes no positions.
        logits = discriminator([input_image, target_image], training=False)
        row, column = logits.shape[1] // 2, logits.shape[2] // 2
        logit = logits[0, row, column, 0]
    input_grad, target_grad = tape.gradient(logit, [input_image, target_image])
    magnitude = tf.reduce_sum(tf.abs(input_grad) + tf.abs(target_grad), axis=[0, 3]).numpy()
    return magnitude > 0


@pytest.mark.parametrize('num_layers, input_size', [(0, 32), (1, 64), (2, 64), (3, 128),
                                                    (5, 320)])
def test_discriminator_logit_sees_exactly_its_receptive_field(num_layers, input_size):
    window = models.receptive_field(num_layers)
    assert window == {0: 1, 1: 16, 2: 34, 3: 70, 5: 286}[num_layers]
    seen = input_window_of_center_logit(num_layers, input_size)
    rows, columns = np.nonzero(seen)
    # The window must lie inside the image, away from the border, or the test measures less.
    assert rows.min() > 0 and columns.min() > 0
    assert rows.max() < input_size - 1 and columns.max() < input_size - 1
    box = seen[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    assert box.shape == (window, window)
    assert box.all()


def test_receptive_field_of_four_layers():
    assert models.receptive_field(4) == 142


def test_70x70_discriminator_gives_30x30_logits_for_256x256_pairs():
    discriminator = models.patchgan_discriminator(num_layers=3, base_filters=4)
    logits = discriminator([random_images([1, 256, 256, 3], seed=1),
                            random_images([1, 256, 256, 3], seed=2)], training=False)
    assert logits.shape == (1, 30, 30, 1)


def test_discriminator_accepts_different_input_and_target_channels():
    discriminator = models.patchgan_discriminator(num_layers=2, input_channels=1,
                                                  target_channels=3, base_filters=4)
    logits = discriminator([random_images([2, 64, 64, 1], seed=1),
                            random_images([2, 64, 64, 3], seed=2)], training=False)
    assert logits.shape == (2, 14, 14, 1)


def test_folded_generator_equals_eval_mode_without_batch_norm():
    generator = models.unet_generator(depth=5, base_filters=8)
    rng = np.random.default_rng(0)
    # Statistics and affine parameters far from their initial values, so folding is exercised.
    for variable in generator.variables:
        if any(name in variable.path for name in ('moving', 'gamma', 'beta')):
            variable.assign(variable + rng.uniform(0.1, 0.5, variable.shape).astype(np.float32))
    folded = models.fold_batch_norm(generator)
    inputs = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=1)
    expected = generator(inputs, training=False)
    np.testing.assert_allclose(folded(inputs), expected, atol=1e-5)
    # No BatchNorm and no Dropout left: a training-mode call is the same computation.
    np.testing.assert_allclose(folded(inputs, training=True), expected, atol=1e-5)
    kinds = {type(layer).__name__ for layer in folded._flatten_layers()}
    assert 'BatchNormalization' not in kinds and 'Dropout' not in kinds
    assert len(folded.weights) < len(generator.weights)
