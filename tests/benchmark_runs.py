"""The benchmark command on a tiny config, for the tests of its sections."""

import json

from conftest import run_command

# The benchmark's flags for a tiny run; each test runs some of its sections, the training
# ones in tests/test_benchmark_training.py, the others in
# tests/test_benchmark_inference_and_profile.py: two files, so that pytest-xdist, which keeps
# a file on one worker, can run them side by side.
TINY_BENCHMARK = ('--image_size=32', '--generator_filters=4', '--discriminator_filters=4',
                  '--windows=2', '--steps_per_window=1', '--warmup_steps=1',
                  '--quality_size=32', '--quality_steps=4', '--quality_window=2',
                  '--matmul_sizes=256', '--profile_steps=2',
                  '--profile_variants=reference,fast,bfloat16')


def run_benchmark(tmp_path, shared_data, sections):
    report_path = tmp_path / 'bench.json'
    done = run_command('p2p_tf.benchmark', *TINY_BENCHMARK, f'--data_dir={shared_data}',
                       f'--json={report_path}', f'--sections={sections}')
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report['settings']['image_size'] == 32
    assert report['machine']['cpu_cores'] >= 1 and report['machine']['tensorflow']
    return done, report
