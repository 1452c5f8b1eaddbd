"""The benchmark command's inference, quality and profile sections on a tiny config."""

import pytest

from p2p_tf.nets import models

from benchmark_runs import run_benchmark


def generator_flops(size, base_filters):
    """By hand: the U-Net's encoder convs (size / 2 ... 1) and decoder transposed convs, with
    the skip concatenations doubling the decoder's inputs but its innermost one."""
    depth = size.bit_length() - 1
    filters = models.encoder_filters(depth, base_filters)
    flops, channels = 0, 3
    for i, f in enumerate(filters):
        flops += 2 * (size >> (i + 1)) ** 2 * 16 * channels * f
        channels = f
    outputs = list(reversed(filters[:-1])) + [3]
    for i, f in enumerate(outputs):
        inputs = filters[-1] if i == 0 else 2 * outputs[i - 1]
        flops += 2 * (1 << i) ** 2 * 16 * inputs * f
    return flops


def test_benchmark_writes_its_inference_quality_and_profile_tables(tmp_path, shared_data):
    done, report = run_benchmark(tmp_path, shared_data, 'inference,quality,profile')
    latency = report['results']['inference']['latency']
    assert set(latency) == {'eager_training_call', 'tf_function_training_call',
                            'saved_model_paper', 'saved_model_eval'}
    assert all(figures['milliseconds'] > 0 for figures in latency.values())
    assert latency['eager_training_call']['speedup_over_eager'] == 1.0
    # The generator's FLOPs from its graph: 2 per kernel weight and output position of its
    # 5 convs and 5 transposed convs at 32x32 (4 base filters), each latency over the peak.
    inference = report['results']['inference']
    assert inference['generator_gflop'] * 1e9 == pytest.approx(generator_flops(32, 4))
    for figures in latency.values():
        assert figures['fraction_of_peak'] == pytest.approx(
            inference['generator_gflop'] / figures['milliseconds'] * 1000
            / inference['peak']['gflops'])
    assert 'of peak' in done.stdout
    quality = report['results']['quality']
    for run in ('reference', 'fast', 'reference_seed_1'):
        assert len(quality['window_means'][run]['gen_l1']) == 2
    assert quality['passed'] == all(
        quality['fast_vs_reference'][name] <= quality['seed_1_vs_seed_0'][name]
        for name in ('gen_l1', 'disc'))
    assert quality['seed_1_vs_seed_0']['gen_l1'] > 0
    # The profile, at the top level of the JSON (tests/test_speed_profile.py checks its rows).
    profile = report['profile']
    assert list(profile['peak']['by_size']) == ['256']
    for variant in ('reference', 'fast'):
        assert 0 < profile[variant]['fraction_of_peak'] < 1
        assert {row['pass'] for row in profile[variant]['rows']} == {
            'forward', 'input_gradient', 'weight_gradient'}
    assert 'float32 matmul peak' in done.stdout and 'dispatch / host' in done.stdout
    # Each step also against the peak of the type it multiplies in: a bfloat16 step against
    # bfloat16 products, measured in the same process; a float32 one against the float32 peak.
    peaks = profile['peak']['by_dtype']
    assert set(peaks) == {'float32', 'bfloat16'} and peaks['float32'] == profile['peak']['gflops']
    for variant, dtype in (('reference', 'float32'), ('bfloat16', 'bfloat16')):
        figures = profile[variant]
        assert figures['compute_dtype'] == dtype
        assert figures['fraction_of_precision_peak'] == pytest.approx(
            figures['gflop_per_step'] / figures['step_seconds'] / peaks[dtype])
    assert 'of the bfloat16 peak' in done.stdout
