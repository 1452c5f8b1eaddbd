"""Speed settings: fused Adam, mixed precision, XLA, the hardware choice, and the benchmark's
plumbing (never its timings)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from p2p_tf.nets import models
from p2p_tf.training import distribution, performance
from p2p_tf.training import trainer as trainer_lib

from conftest import tiny_config, trainer_config


def adam_pair():
    return (optimizer_class(learning_rate=0.01, beta_1=0.5, beta_2=0.999)
            for optimizer_class in (keras.optimizers.Adam, performance.FusedAdam))


def test_fused_adam_matches_keras_adam_update_for_update():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 7)).astype(np.float32)
    keras_adam, fused_adam = adam_pair()
    variables = [keras.Variable(start) for _ in range(2)]
    for optimizer, variable in zip((keras_adam, fused_adam), variables):
        optimizer.build([variable])
    for _ in range(5):
        gradient = rng.normal(size=start.shape).astype(np.float32)
        for optimizer, variable in zip((keras_adam, fused_adam), variables):
            optimizer.apply_gradients([(tf.constant(gradient), variable)])
    assert not np.allclose(np.asarray(variables[0]), start)
    np.testing.assert_allclose(np.asarray(variables[1]), np.asarray(variables[0]), atol=1e-6)
    assert len(fused_adam.variables) == len(keras_adam.variables) == 4  # step, lr, m, v
    for mine, theirs in zip(fused_adam.variables, keras_adam.variables):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), atol=1e-6)


def test_fused_and_keras_adam_trainers_take_the_same_steps():
    inputs = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=1)
    targets = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=2)
    results = []
    for fused in (False, True):
        keras.utils.set_random_seed(0)
        # float32: under bfloat16 (auto on CPUs that have it) the kernels' rounding, which
        # depends on how the cores split the work, moves the losses by more than Adam's.
        trainer = trainer_lib.Trainer(trainer_config(fused_adam=fused, precision='float32'),
                                      total_steps=10)
        losses = [trainer.train_step(inputs, targets) for _ in range(3)]
        results.append(([float(step['gen_l1']) for step in losses],
                         trainer.generator.get_weights()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4)
    for fused_weight, keras_weight in zip(results[1][1], results[0][1]):
        # Adam moves every weight by about lr = 2e-4 per step; rounding may flip the sign of
        # a near-zero gradient's step, never more.
        np.testing.assert_allclose(fused_weight, keras_weight, atol=3 * 2 * 2e-4)


@pytest.mark.parametrize('flags, speedup, gpu, expected', [
    (set(), 2.0, False, 'float32'),
    ({'avx2'}, 2.0, False, 'float32'),
    # bfloat16 instructions are chosen only where the probe measured them faster.
    ({'avx2', 'avx512_bf16'}, 1.8, False, 'mixed_bfloat16'),
    ({'avx2', 'avx512_bf16'}, 0.6, False, 'float32'),
    ({'avx2', 'avx512_bf16'}, 1.1, False, 'float32'),
    ({'amx_bf16'}, 4.0, False, 'mixed_bfloat16'),
    ({'avx2'}, 0.1, True, 'mixed_float16'),
])
def test_auto_precision_follows_the_hardware(monkeypatch, flags, speedup, gpu, expected):
    probes = []
    monkeypatch.setattr(performance, 'cpu_flags', lambda: frozenset(flags))
    monkeypatch.setattr(performance, 'bfloat16_speedup', lambda: probes.append(1) or speedup)
    monkeypatch.setattr(performance, 'has_gpu', lambda: gpu)
    assert performance.choose_precision('auto') == expected
    # The probe runs only on CPUs that report bfloat16 instructions.
    assert bool(probes) == (not gpu and bool(set(flags) & set(performance.BF16_CPU_FLAGS)))
    assert performance.choose_precision('float32') == 'float32'
    assert performance.choose_xla('auto') == ('on' if gpu else 'off')
    assert performance.choose_xla('off') == 'off'
    # The convolution pass settings: measured faster on CPUs; off on GPUs and TPUs.
    assert performance.choose_convolution_passes('auto') == ('off' if gpu else 'on')
    assert performance.choose_convolution_passes('auto', accelerator=True) == 'off'
    assert performance.choose_convolution_passes('on', accelerator=True) == 'on'


def test_the_bfloat16_probe_times_both_products():
    # Small products: the measurement, not its speed, is under test.
    float32 = performance.matmul_gflops(64, 'float32', repeats=2)
    bfloat16 = performance.matmul_gflops(64, 'bfloat16', repeats=2)
    assert 0 < float32 < 1e5 and 0 < bfloat16 < 1e5


def test_the_bfloat16_probe_runs_once_per_machine(monkeypatch, tmp_path):
    monkeypatch.setenv('P2P_TF_CACHE_DIR', str(tmp_path))
    rates = {'float32': 300.0, 'bfloat16': 150.0}
    measured = []
    monkeypatch.setattr(performance, 'matmul_gflops',
                        lambda size, dtype, repeats: measured.append(dtype) or rates[dtype])
    performance.bfloat16_speedup.cache_clear()
    try:
        assert performance.bfloat16_speedup() == 0.5
        assert measured == ['float32', 'bfloat16']
        saved = json.loads((tmp_path / performance.BF16_PROBE_FILENAME).read_text())
        assert saved == {performance.machine_key(): 0.5}
        # A new process (the per-process cache cleared) reads the result back.
        performance.bfloat16_speedup.cache_clear()
        rates['bfloat16'] = 600.0
        assert performance.bfloat16_speedup() == 0.5 and len(measured) == 2
        # An unreadable file costs a new measurement, which replaces it.
        (tmp_path / performance.BF16_PROBE_FILENAME).write_text('{not json')
        performance.bfloat16_speedup.cache_clear()
        assert performance.bfloat16_speedup() == 2.0 and len(measured) == 4
        saved = json.loads((tmp_path / performance.BF16_PROBE_FILENAME).read_text())
        assert saved == {performance.machine_key(): 2.0}
    finally:
        performance.bfloat16_speedup.cache_clear()


def test_resolve_records_concrete_settings():
    config = distribution.resolve_run(tiny_config(), tf.distribute.get_strategy())
    assert config.precision in ('float32', 'mixed_bfloat16', 'mixed_float16')
    assert config.xla in ('on', 'off') and config.matmul_weight_gradients in ('on', 'off')
    assert config.fast_transposed_passes in ('on', 'off')


@pytest.mark.parametrize('recorded, setting', [(True, 'on'), (False, 'off'), ('off', 'off')])
def test_matmul_weight_gradients_as_old_runs_recorded_them(recorded, setting):
    assert tiny_config(matmul_weight_gradients=recorded).matmul_weight_gradients == setting


@pytest.mark.parametrize('field, value', [('precision', 'float8'), ('xla', 'yes')])
def test_unknown_speed_settings_are_errors(field, value):
    from p2p_tf.errors import UserError
    with pytest.raises(UserError, match=field):
        tiny_config(**{field: value})


@pytest.mark.parametrize('policy, compute', [('mixed_bfloat16', 'bfloat16'),
                                             ('mixed_float16', 'float16')])
def test_mixed_models_compute_in_16_bits_and_output_float32(policy, compute):
    generator = models.unet_generator(depth=5, base_filters=4, dtype=policy)
    discriminator = models.patchgan_discriminator(2, base_filters=4, dtype=policy)
    image = tf.random.uniform([1, 32, 32, 3], -1, 1)
    output, logits = generator(image), discriminator([image, image])
    assert output.dtype == tf.float32 and logits.dtype == tf.float32
    assert all(v.dtype == 'float32' for v in generator.weights + discriminator.weights)
    convs = [layer for layer in generator._flatten_layers()
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    assert len(convs) == 10 and convs[-1] is generator.layers[-1]
    assert all(layer.compute_dtype == compute for layer in convs[:-1])
    assert convs[-1].compute_dtype == 'float32'


@pytest.mark.parametrize('overrides', [dict(precision='mixed_bfloat16'),
                                       dict(precision='mixed_float16'), dict(xla='on')],
                         ids=['bfloat16', 'float16', 'xla'])
def test_gpu_oriented_settings_train_on_cpu(tmp_path, overrides):
    """Every speed setting constructs, trains finite steps and checkpoints the same variables
    as float32, so a run can resume under another precision."""
    inputs = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=1)
    targets = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=2)
    keras.utils.set_random_seed(0)
    trainer = trainer_lib.Trainer(trainer_config(**overrides), total_steps=10)
    for _ in range(2):
        values = trainer.train_step(inputs, targets)
    assert all(np.isfinite(float(v)) for v in values.values())
    assert int(trainer.step) == 2
    if overrides.get('precision') == 'mixed_float16':
        assert isinstance(trainer.generator_optimizer, keras.optimizers.LossScaleOptimizer)
    path = trainer.checkpoint.save(str(tmp_path / 'ckpt'))
    resumed = trainer_lib.Trainer(trainer_config(), total_steps=10)
    resumed.checkpoint.restore(path).assert_existing_objects_matched()
    assert int(resumed.step) == 2
    for saved, restored in zip(trainer.generator.get_weights(), resumed.generator.get_weights()):
        np.testing.assert_array_equal(saved, restored)
    # Under float16 loss scaling a step with overflowing gradients is skipped (and the scale
    # halved), so Adam may have counted fewer than 2 updates; the count must carry over.
    updates = int(trainer_lib.unwrapped(trainer.generator_optimizer).iterations)
    assert updates >= 1 and int(resumed.generator_optimizer.iterations) == updates
