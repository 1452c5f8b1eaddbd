"""The benchmark command's training sections (train, train_real_data, pipeline,
train_interleaved) on a tiny config, its flags, and the interleaved windows' order."""

import pytest

from benchmark_runs import run_benchmark
from conftest import run_command


def test_benchmark_writes_its_training_table_and_json(tmp_path, shared_data):
    done, report = run_benchmark(tmp_path, shared_data,
                                 'train,train_real_data,pipeline,train_interleaved')
    train = report['results']['train']
    assert list(train) == ['reference', 'fast']
    reference, fast = train['reference'], train['fast']
    assert (reference['precision'], reference['xla'], reference['fused_adam'],
            reference['fused_batch_norm'], reference['matmul_weight_gradients'],
            reference['fast_transposed_passes']) == ('float32', 'off', False, False, 'off', 'off')
    assert fast['fused_adam'] is True and fast['matmul_weight_gradients'] == 'on'
    assert fast['fused_batch_norm'] is True
    assert fast['fast_transposed_passes'] == 'on'
    for figures in (reference, fast, report['results']['train_real_data']):
        assert len(figures['windows']) == 2 and figures['images_per_second'] > 0
        assert figures['peak_rss_mb'] > 100
    assert reference['speed_ratio'] == 1.0
    assert fast['speed_ratio'] == pytest.approx(
        fast['images_per_second'] / reference['images_per_second'])
    # Side by side in one process: two windows each, the medians and their ratio.
    interleaved = report['results']['train_interleaved']
    assert [v for v in interleaved if v != 'peak_rss_mb'] == ['reference', 'fast']
    for figures in (interleaved['reference'], interleaved['fast']):
        assert len(figures['windows']) == 2 and figures['step_seconds'] == pytest.approx(
            sum(figures['windows']) / 2)
        assert figures['images_per_second'] == pytest.approx(1 / figures['step_seconds'])
    assert interleaved['fast']['speed_ratio'] == pytest.approx(
        interleaved['reference']['step_seconds'] / interleaved['fast']['step_seconds'])
    assert 'interleaved fast' in done.stdout
    assert 'train reference' in done.stdout and 'input pipeline alone' in done.stdout
    pipeline = report['results']['pipeline']
    assert pipeline['examples'] == 400 and pipeline['images_per_second'] > 0
    assert pipeline['ratio_to_training'] == pytest.approx(
        pipeline['images_per_second'] / report['results']['train_real_data']['images_per_second'])


@pytest.mark.parametrize('flag', ['--variants=fast,warp', '--profile_variants=warp'])
def test_benchmark_rejects_an_unknown_variant(flag):
    done = run_command('p2p_tf.benchmark', flag)
    assert done.returncode == 2 and "unknown variant or section 'warp'" in done.stderr


def test_interleaved_windows_alternate_the_order_of_the_variants():
    from p2p_tf.experiments import interleaved_steps
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ('a', 'b', 'c')}
    windows = interleaved_steps.alternating_windows(steps, rounds=3, steps_per_window=2,
                                                    warmup=1)
    # Warm-up once each, then windows of two steps: a b c, c b a, a b c.
    assert ''.join(calls) == 'abc' + 'aabbcc' + 'ccbbaa' + 'aabbcc'
    assert {name: len(seconds) for name, seconds in windows.items()} == dict(a=3, b=3, c=3)
    assert all(s >= 0 for seconds in windows.values() for s in seconds)
