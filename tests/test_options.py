"""The options beyond the paper (pix2pixHD and its successors): GAN objectives, feature
matching, the multi-scale discriminator, resize-convolution upsampling, instance
normalization and the alternating update order; each against a hand computation, and
through checkpoints and exports."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_models import random_images

from p2p_tf import config as config_lib
from p2p_tf.errors import UserError
from p2p_tf.nets import losses, models
from p2p_tf.serving import export as export_lib
from p2p_tf.serving import translation
from p2p_tf.training.trainer import Trainer

from conftest import REPO, tiny_config, trainer_config
from test_inference import make_run_dir


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


REAL = np.array([[0.5, -1.0], [2.0, 0.0]], np.float32)
FAKE = np.array([[-0.5, 1.5], [0.25, -2.0]], np.float32)


@pytest.mark.parametrize('gan_loss, generator_term, real_term, fake_term', [
    ('vanilla', np.mean(-np.log(sigmoid(FAKE))), np.mean(-np.log(sigmoid(REAL))),
     np.mean(-np.log(1 - sigmoid(FAKE)))),
    ('lsgan', np.mean((FAKE - 1) ** 2), np.mean((REAL - 1) ** 2), np.mean(FAKE ** 2)),
    ('hinge', -np.mean(FAKE), np.mean(np.maximum(0, 1 - REAL)),
     np.mean(np.maximum(0, 1 + FAKE)))])
def test_gan_objectives_equal_their_hand_computed_values(gan_loss, generator_term, real_term,
                                                         fake_term):
    assert losses.generator_gan_term(FAKE, gan_loss).numpy() == pytest.approx(generator_term,
                                                                              rel=1e-5)
    total, real, fake = losses.discriminator_loss(REAL, FAKE, gan_loss)
    assert (real.numpy(), fake.numpy()) == pytest.approx((real_term, fake_term), rel=1e-5)
    assert total.numpy() == pytest.approx(0.5 * (real_term + fake_term), rel=1e-5)  # Halved.
    # Over scales the terms are averaged.
    two_scales = losses.generator_gan_term([FAKE, FAKE[:1] * 2], gan_loss).numpy()
    expected = 0.5 * (generator_term + losses.generator_gan_term(FAKE[:1] * 2, gan_loss))
    assert two_scales == pytest.approx(float(expected), rel=1e-5)


def test_feature_matching_equals_its_hand_computed_value_and_leaves_real_features_alone():
    real = [[tf.constant([[1.0, 2.0]]), tf.constant([[0.0, 4.0]])],
            [tf.constant([[3.0]])]]
    fake = [[tf.Variable([[1.5, 1.0]]), tf.Variable([[0.0, 0.0]])], [tf.Variable([[1.0]])]]
    with tf.GradientTape() as tape:
        tape.watch(real)
        loss = losses.feature_matching(real, fake)
    # Scale 0: 4/2 * (mean(0.5, 1) + mean(0, 4)) = 5.5; scale 1: 4/1 * 2 = 8; mean 6.75.
    assert loss.numpy() == pytest.approx(6.75)
    assert all(gradient is None for gradient in tape.gradient(loss, real[0] + real[1]))
    total, _, _ = losses.generator_loss(FAKE, tf.zeros([1]), tf.zeros([1]), l1_weight=0.0,
                                        gan_weight=0.0, feature_matching_loss=loss,
                                        feature_matching_weight=10.0)
    assert total.numpy() == pytest.approx(67.5)
    # Under mixed precision D's activations are bfloat16: the loss is still float32 and adds
    # to the float32 total (these values are exact in bfloat16).
    low = [[tf.cast(t, tf.bfloat16) for t in scale] for scale in real]
    mixed = losses.feature_matching(low, [[tf.cast(t, tf.bfloat16) for t in scale]
                                          for scale in fake])
    assert mixed.dtype == tf.float32 and mixed.numpy() == pytest.approx(6.75)
    total, _, _ = losses.generator_loss(FAKE, tf.zeros([1]), tf.zeros([1]), l1_weight=0.0,
                                        gan_weight=0.0, feature_matching_loss=mixed,
                                        feature_matching_weight=10.0)
    assert total.numpy() == pytest.approx(67.5)


def test_a_multiscale_discriminator_judges_three_resolutions():
    discriminator = models.multiscale_discriminator(3, num_layers=3, base_filters=4,
                                                    features=True)
    outputs = models.scales(discriminator([random_images([1, 256, 256, 3], seed=1),
                                           random_images([1, 256, 256, 3], seed=2)]))
    assert [logits.shape[1] for _, logits in outputs] == [30, 14, 6]
    assert all(len(features) == 4 for features, _ in outputs)  # 3 stride-2 layers + C512.
    # Each scale has weights of its own.
    assert len(discriminator.trainable_variables) == 3 * len(
        models.patchgan_discriminator(num_layers=3, base_filters=4).trainable_variables)


@pytest.mark.parametrize('scale', [1, 2])
def test_each_scale_sees_exactly_its_receptive_field(scale):
    size = 128
    keras.utils.set_random_seed(scale)
    discriminator = models.multiscale_discriminator(scale + 1, num_layers=1, base_filters=4)
    images = [tf.Variable(random_images([1, size, size, 3], seed=seed)) for seed in (1, 2)]
    with tf.GradientTape() as tape:
        _, logits = models.scales(discriminator(images, training=False))[scale]
        logit = logits[0, logits.shape[1] // 2, logits.shape[2] // 2, 0]
    gradients = tape.gradient(logit, images)
    seen = (tf.reduce_sum(tf.abs(gradients[0]) + tf.abs(gradients[1]), axis=[0, 3]) > 0).numpy()
    rows, columns = np.nonzero(seen)
    assert rows.min() > 0 and rows.max() < size - 1  # Inside the image.
    window = models.receptive_field(1, scale)
    assert window == {1: 33, 2: 67}[scale]  # 16 -> 2 * 16 + 1 -> 2 * 33 + 1.
    box = seen[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    assert box.shape == (window, window) and box.all()


@pytest.mark.parametrize('upsample', ['resize_conv', 'resize_conv_bilinear'])
def test_resize_conv_generators_translate_and_fold_their_batch_norm(upsample):
    generator = models.unet_generator(depth=5, base_filters=4, upsampling=upsample)
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose)
                   for layer in generator._flatten_layers())
    images = random_images([1, 32, 64, 3])
    outputs = generator(images, training=False)
    assert outputs.shape == (1, 32, 64, 3)
    np.testing.assert_allclose(models.fold_batch_norm(generator)(images), outputs, atol=1e-5)


@pytest.mark.parametrize('norm, mixes', [('batch', True), ('instance', False)])
def test_instance_norm_keeps_the_examples_of_a_batch_apart(norm, mixes):
    generator = models.unet_generator(depth=5, base_filters=4, dropout_rate=0.0, norm=norm)
    first, other = random_images([1, 32, 32, 3], seed=1), random_images([1, 32, 32, 3], seed=2)
    alone = generator(tf.concat([first, first], 0), training=True)[0]
    beside = generator(tf.concat([first, other], 0), training=True)[0]
    assert (np.abs(alone - beside).max() > 1e-4) == mixes
    if norm == 'instance':  # No statistics are kept: training and inference agree.
        np.testing.assert_allclose(generator(first, training=False)[0], alone, atol=1e-5)


def one_step(update_order, x, y):
    keras.utils.set_random_seed(0)
    # float32, as the step by hand below (auto picks bfloat16 on CPUs that have it).
    trainer = Trainer(trainer_config(dropout_rate=0.0, fused_adam=False, precision='float32',
                                     update_order=update_order), 10)
    before = trainer.generator.get_weights(), trainer.discriminator.get_weights()
    trainer.train_step(x, y)
    return trainer, before


def test_alternating_updates_step_g_through_the_updated_discriminator():
    x, y = (random_images([1, 32, 32, 3], seed=seed) for seed in (3, 4))
    trainer, (generator_before, discriminator_before) = one_step('alternating', x, y)
    simultaneous, _ = one_step('simultaneous', x, y)
    # D's step is the same in both orders: one step on the same generated image (its
    # BatchNorm averages differ: the alternating order calls it once more).
    for a, b in zip(trainer.discriminator.trainable_variables,
                    simultaneous.discriminator.trainable_variables):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # G's step, by hand: the generator as it was, through the discriminator as it is now.
    config = trainer.config
    generator = models.generator_from_config(config, matmul_weight_gradients=False)
    generator.set_weights(generator_before)
    discriminator = trainer.discriminator
    with tf.GradientTape() as tape:
        generated = generator(x, training=True)
        fake = discriminator([x, generated], training=True)
        total, _, _ = losses.generator_loss(fake, generated, y, config.l1_weight)
    gradients = tape.gradient(total, generator.trainable_variables)
    adam = keras.optimizers.Adam(config.learning_rate, config.beta_1, config.beta_2)
    adam.apply_gradients(zip(gradients, generator.trainable_variables))
    expected = [v.numpy() for v in generator.trainable_variables]
    got = [v.numpy() for v in trainer.generator.trainable_variables]
    # Adam's first step moves each weight by about the learning rate (2e-4) times the sign of
    # its gradient: through the D before its step, many move the other way.
    assert max(float(np.abs(a - b).max()) for a, b in zip(got, expected)) < 1e-5
    other = [v.numpy() for v in simultaneous.generator.trainable_variables]
    assert max(float(np.abs(a - b).max()) for a, b in zip(other, expected)) > 1e-4


# At 32x32, two scales need a PatchGAN of two stride-2 layers (34x34 patches).
ALL_OPTIONS = dict(num_discriminators=2, patch_size=34, feature_matching_weight=10.0,
                   gan_loss='lsgan', upsample='resize_conv', norm='instance',
                   update_order='alternating')


@pytest.mark.parametrize('size', [32, (32, 64)])
def test_a_resumed_trainer_with_every_option_equals_an_uninterrupted_one(tmp_path, size):
    shape = (size, size) if isinstance(size, int) else size
    batches = [tuple(random_images([1, *shape, 3], seed=2 * i + j) for j in range(2))
               for i in range(3)]
    config = trainer_config(**ALL_OPTIONS, image_size=size, load_size=size)
    keras.utils.set_random_seed(0)
    uninterrupted = Trainer(config, 10)
    for x, y in batches:
        uninterrupted.train_step(x, y)
    keras.utils.set_random_seed(0)
    first = Trainer(config, 10)
    for x, y in batches[:2]:
        first.train_step(x, y)
    path = first.checkpoint.save(str(tmp_path / 'ckpt'))
    keras.utils.set_random_seed(1)  # The restore, not the seed, must bring everything back.
    resumed = Trainer(config, 10)
    resumed.checkpoint.restore(path).assert_consumed()
    resumed.train_step(*batches[2])
    for a, b in zip(resumed.generator.get_weights() + resumed.discriminator.get_weights(),
                    uninterrupted.generator.get_weights()
                    + uninterrupted.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_feature_matching_term_is_logged_on_its_own():
    x, y = random_images([1, 32, 32, 3], seed=0), random_images([1, 32, 32, 3], seed=1)
    assert 'gen_feature_matching' not in Trainer(trainer_config(), 10).train_step(x, y)
    for update_order in config_lib.UPDATE_ORDERS:
        trainer = Trainer(trainer_config(feature_matching_weight=10.0,
                                         update_order=update_order), 10)
        values = {name: float(value) for name, value in trainer.train_step(x, y).items()}
        assert list(values) == list(trainer.loss_names) and values['gen_feature_matching'] > 0
        np.testing.assert_allclose(values['gen_total'], values['gen_gan'] + 100 * values[
            'gen_l1'] + 10 * values['gen_feature_matching'], rtol=1e-5)


@pytest.mark.filterwarnings('ignore:.*tf.lite.Interpreter is deprecated')
def test_exports_of_the_generator_options_equal_the_checkpoint(tmp_path):
    workdir, _ = make_run_dir(tmp_path / 'run', upsample='resize_conv_bilinear', norm='instance')
    assert json.loads((workdir / 'config.json').read_text())['norm'] == 'instance'
    checkpoint = translation.Translator(str(workdir), mode='eval')
    export_dir = export_lib.export_saved_model(str(workdir), str(tmp_path / 'sm'))
    images = random_images([1, 32, 32, 3]).numpy()
    expected = checkpoint.run(images)
    np.testing.assert_allclose(translation.Translator(export_dir).run(images), expected,
                               atol=1e-5)
    tflite_dir = export_lib.export_tflite(str(workdir), str(tmp_path / 'lite'))
    interpreter = tf.lite.Interpreter(str(tmp_path / 'lite' / 'model_float32.tflite'))
    runner = interpreter.get_signature_runner('translate_float')
    np.testing.assert_allclose(runner(images=images)['translated'], expected, atol=1e-4)
    assert tflite_dir.endswith('lite')


def test_old_run_configs_read_the_papers_options():
    defaults = config_lib.get_config()
    assert (defaults.num_discriminators, defaults.feature_matching_weight, defaults.gan_loss,
            defaults.upsample, defaults.norm) == (1, 0.0, 'vanilla', 'transpose', 'batch')


@pytest.mark.parametrize('overrides, message', [
    (dict(num_discriminators=3, patch_size=34),
     r'^num_discriminators must be at most 2 for image_size 32 and patch_size 34 .*got 3$'),
    (dict(patch_size=286), r'^patch_size 286 needs image_size >= 96, got 32$'),
    (dict(num_discriminators=4), r'^num_discriminators must be one of 1, 2, 3, got 4$'),
    (dict(gan_loss='wgan'), r'^gan_loss must be one of vanilla, lsgan, hinge'),
    (dict(upsample='pixel_shuffle'), r'^upsample must be one of transpose, resize_conv'),
    (dict(norm='layer'), r'^norm must be one of batch, instance'),
    (dict(update_order='random'), r'^update_order must be one of simultaneous, alternating'),
    (dict(feature_matching_weight=-1.0), r'^feature_matching_weight must be >= 0')])
def test_bad_option_values_are_one_line_naming_the_field(overrides, message):
    with pytest.raises(UserError, match=message):
        tiny_config(**overrides)


def test_the_side_by_side_config_changes_one_option_per_variant():
    module = config_lib.config_file_module(str(REPO / 'configs' / 'pix2pixhd.py'))
    paper = config_lib.resolve(module.get_config('paper')).to_dict()
    table1 = config_lib.config_file_module(str(REPO / 'configs' / 'table1.py'))
    assert paper == config_lib.resolve(table1.get_config('l1_cgan')).to_dict()
    for name, options in module.VARIANTS.items():
        variant = config_lib.resolve(module.get_config(name)).to_dict()
        assert {key for key in paper if variant[key] != paper[key]} == set(options), name
