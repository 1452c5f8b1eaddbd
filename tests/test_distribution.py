"""tf.distribute: two local workers, bad TF_CONFIG, the strategy choice (mirrored replicas:
tests/test_mirrored_strategy.py).

Strategies need a fresh TensorFlow runtime, so the runs happen in subprocesses
(tests/distributed_worker.py, or the train command).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from conftest import REPO, WORKER_SCRIPT, max_difference, run_command


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    return json.dumps({'cluster': {'worker': [f'127.0.0.1:{port}' for port in ports]},
                       'task': {'type': 'worker', 'index': index}})


def weights(arrays):
    return [arrays[f'w{i}'] for i in range(len([k for k in arrays if k.startswith('w')]))]


def launch_workers(steps, workdirs, data_dir, tmp_path, tag, peer_env):
    ports = free_ports(2)
    processes = []
    for index, workdir in enumerate(workdirs):
        env = dict(peer_env, TF_CONFIG=tf_config(ports, index))
        processes.append(subprocess.Popen(
            [sys.executable, WORKER_SCRIPT, 'train', 'multi_worker', str(workdir), str(data_dir),
             str(steps), str(tmp_path / f'{tag}{index}.npz')],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            cwd=str(REPO)))
    try:
        outputs = [process.communicate(timeout=240)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return [np.load(tmp_path / f'{tag}{index}.npz') for index in range(2)], outputs


def test_two_workers_train_resume_and_match_one_device(tmp_path, shared_data):
    env = dict(os.environ)
    data_dir = shared_data / 'facades'
    workdir = tmp_path / 'run'
    # First 2 steps; the second worker is given a workdir of its own, which it must not write.
    (chief, worker), _ = launch_workers(2, [workdir, tmp_path / 'worker'], data_dir, tmp_path,
                                        'first', env)
    assert bool(chief['is_chief']) and not bool(worker['is_chief'])
    assert not (tmp_path / 'worker').exists()
    assert (workdir / 'checkpoints').is_dir() and (workdir / 'best' / 'best.json').exists()
    # Then both resume from the chief's checkpoint to step 4.
    (chief, worker), outputs = launch_workers(4, [workdir, workdir], data_dir, tmp_path,
                                              'resumed', env)
    for output in outputs:
        assert 'resumed from' in output and 'global batch 2 = 1 per replica x 2 replicas' in output
    assert int(chief['step']) == int(worker['step']) == 4
    assert max_difference(weights(chief), weights(worker)) == 0.0

    # The same 4 steps of global batch 2 on one device, uninterrupted (in this process: the
    # default strategy needs no fresh runtime).
    import distributed_worker
    single = tmp_path / 'single.npz'
    distributed_worker.train('default', tmp_path / 'one_device', data_dir, 4, single)
    assert max_difference(weights(chief), weights(np.load(single))) < 1e-5

    # The chief's checkpoint restores in a single-device process.
    from p2p_tf import workdirs
    generator, _ = workdirs.load_generator(str(workdir))
    assert max_difference(generator.get_weights(),
                          weights(chief)[:len(generator.get_weights())]) == 0.0


def test_bad_tf_config_fails_with_a_message(tmp_path):
    common = ('--strategy=multi_worker', '--config=configs/tiny.py',
              f'--workdir={tmp_path / "run"}')
    malformed = run_command('p2p_tf.train', *common,
                            env={'TF_CONFIG': '{"cluster": {"worker": ["127.0.0.1:1"'})
    assert malformed.returncode == 2
    assert 'TF_CONFIG is not valid JSON' in malformed.stderr

    # A peer that never comes: a message naming it within the bounded wait, not a hang.
    ports = free_ports(2)
    start = time.monotonic()
    unreachable = run_command('p2p_tf.train', *common, '--peer_timeout=3',
                              env={'TF_CONFIG': tf_config(ports, 0)}, timeout=120)
    assert time.monotonic() - start < 90
    assert unreachable.returncode != 0
    assert f'no answer from 127.0.0.1:{ports[1]}' in unreachable.stderr
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('text, message', [
    (None, 'needs TF_CONFIG'),
    ('[1, 2]', 'must be a JSON object'),
    ('{"task": {"type": "worker", "index": 0}}', 'no "cluster"'),
    ('{"cluster": {"worker": ["a:1"]}}', 'no "task"'),
    ('{"cluster": {"worker": ["hostonly"]}, "task": {"type": "worker", "index": 0}}',
     "'hostonly' is not host:port"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "task type 'chief' is not a job"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     'task index 2'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', 'not used'),
])
def test_read_tf_config_names_the_problem(monkeypatch, text, message):
    from p2p_tf.errors import UserError
    from p2p_tf.training import distribution
    monkeypatch.delenv('TF_CONFIG', raising=False)
    with pytest.raises(UserError, match=re.escape(message)):
        distribution.read_tf_config(text or '')


def test_read_tf_config_accepts_a_cluster():
    from p2p_tf.training import distribution
    text = ('{"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, '
            '"task": {"type": "worker", "index": 0}}')
    assert distribution.read_tf_config(text)['task'] == {'type': 'worker', 'index': 0}


def test_global_batch_must_split_over_replicas():
    from p2p_tf.errors import UserError
    from p2p_tf.training import distribution

    from conftest import tiny_config
    two_replicas = types.SimpleNamespace(num_replicas_in_sync=2)
    with pytest.raises(UserError, match='batch_size 3 .* does not split over 2 replicas'):
        distribution.per_replica_batch(3, two_replicas)
    assert distribution.per_replica_batch(4, two_replicas) == 2
    # auto: synchronized only when a replica sees a batch of 1.
    def sync_batch_norm(strategy, **overrides):
        return distribution.resolve_run(tiny_config(**overrides), strategy).sync_batch_norm

    assert sync_batch_norm(two_replicas, batch_size=2) == 'on'
    assert sync_batch_norm(two_replicas, batch_size=4) == 'off'
    one = types.SimpleNamespace(num_replicas_in_sync=1)
    assert sync_batch_norm(one, batch_size=1) == 'off'
    assert sync_batch_norm(one, sync_batch_norm='on') == 'on'


def test_auto_and_default_are_one_device_here_and_tpu_is_an_error():
    import tensorflow as tf

    from p2p_tf.errors import UserError
    from p2p_tf.training import distribution
    for name in ('auto', 'default'):
        strategy = distribution.create_strategy(name, global_batch=1)
        assert strategy is tf.distribute.get_strategy()
        assert distribution.is_chief(strategy)
        assert distribution.describe(strategy).startswith('default strategy: one replica')
    with pytest.raises(UserError, match="unknown strategy 'mirror'"):
        distribution.create_strategy('mirror')
    with pytest.raises(UserError, match='--strategy=tpu: no TPU found'):
        distribution.create_strategy('tpu')
