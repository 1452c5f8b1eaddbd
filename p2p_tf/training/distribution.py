"""Which devices train: a tf.distribute strategy from `--strategy`, TF_CONFIG for several
machines, and what each worker of a run may write.

config.batch_size is the global batch, the paper's hyperparameter, whatever the hardware: each
of the strategy's replicas takes batch_size / replicas examples of every step, and the train
step sums their gradients (training.Trainer), so one step on N devices is one step of the same
batch on one device. With a batch of 1 per replica, BatchNorm is synchronized across replicas
by default (config.sync_batch_norm): a replica would otherwise normalize its one example by its
own statistics (instance normalization), and the run would no longer be the single-device run
with the global batch.

Strategies must be created before TensorFlow runs anything (multi-worker collectives are set up
when the runtime starts), so entry points create one first and hand it to pix2pix.train.
"""

import json
import os
import sys

import ml_collections
import tensorflow as tf

from p2p_tf import config as config_lib
from p2p_tf.errors import UserError
from p2p_tf.training import peer_watchdog, performance

STRATEGIES = config_lib.STRATEGIES


def tpu_available():
    """Whether a TPU runtime seems attached: a Colab/Cloud TPU address in the environment, or
    TPU VM accelerator devices."""
    return bool(os.environ.get('COLAB_TPU_ADDR') or os.environ.get('TPU_NAME')
                or os.path.exists('/dev/accel0') or os.path.exists('/dev/vfio/0'))


def create_strategy(name: str = config_lib.AUTO, global_batch: int | None = None,
                    tpu: str | None = None,
                    peer_timeout: float = peer_watchdog.DEFAULT_TIMEOUT_SECONDS,
                    stream=None) -> tf.distribute.Strategy:
    """The tf.distribute strategy called `name` (one of STRATEGIES).

    auto: mirrored when more than one GPU is visible and `global_batch` (if given) splits
      evenly over them, else default (saying so on `stream` when GPUs are left idle).
    default: TensorFlow's default strategy: one device, the first GPU if any.
    mirrored: one replica per GPU on this machine, or per logical CPU device when there is no
      GPU (one, unless the CPU was split with split_cpu).
    multi_worker: MultiWorkerMirroredStrategy over the machines TF_CONFIG names; waits at most
      `peer_timeout` seconds for every worker to join, then ends the process (SIGKILL) with a
      message naming the workers that do not answer (p2p_tf/training/peer_watchdog.py says why).
    tpu: TPUStrategy on the TPU at `tpu` (default: the one the environment names).
    """
    stream = stream or sys.stdout
    if name not in STRATEGIES:
        raise UserError(f'unknown strategy {name!r}; strategies: {", ".join(STRATEGIES)}')
    if name == 'auto':
        gpus = tf.config.list_physical_devices('GPU')
        if len(gpus) > 1 and global_batch and global_batch % len(gpus):
            print(f'strategy auto: batch_size {global_batch} does not split over {len(gpus)} '
                  f'GPUs, training on one; set --config.batch_size to a multiple of '
                  f'{len(gpus)} to use them all', file=stream, flush=True)
            return tf.distribute.get_strategy()
        name = 'mirrored' if len(gpus) > 1 else 'default'
    if name == 'default':
        return tf.distribute.get_strategy()
    if name == 'mirrored':
        if tf.config.list_physical_devices('GPU'):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy(
            [device.name for device in tf.config.list_logical_devices('CPU')])
    if name == 'multi_worker':
        return multi_worker_strategy(peer_timeout)
    return tpu_strategy(tpu)


def split_cpu(count):
    """Splits the CPU into `count` logical devices, so that a mirrored strategy can be tried on
    a machine without GPUs (the tests do). Must run before TensorFlow starts its runtime."""
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])


def read_tf_config(text=None):
    """TF_CONFIG (or `text`) parsed and checked: {'cluster': {job: [host:port, ...]},
    'task': {'type': job, 'index': i}}. Raises UserError naming what is wrong."""
    text = os.environ.get('TF_CONFIG') if text is None else text
    if not text:
        raise UserError('--strategy=multi_worker needs TF_CONFIG set to the cluster, e.g. '
                        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                        '"task": {"type": "worker", "index": 0}} (docs/distributed.md)')
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f'TF_CONFIG is not valid JSON ({e}): {text!r}') from None
    if not isinstance(tf_config, dict):
        raise UserError(f'TF_CONFIG must be a JSON object with "cluster" and "task", got {text!r}')
    cluster, task = tf_config.get('cluster'), tf_config.get('task')
    if not isinstance(cluster, dict) or not cluster:
        raise UserError('TF_CONFIG has no "cluster" object mapping job names ("chief", '
                        '"worker") to lists of host:port addresses')
    for job, addresses in cluster.items():
        if job not in ('chief', 'worker', 'evaluator', 'ps'):
            raise UserError(f'TF_CONFIG cluster has an unknown job {job!r}; jobs: chief, worker')
        if job in ('evaluator', 'ps'):
            raise UserError(f'TF_CONFIG cluster job {job!r} is not used by multi_worker '
                            'training; give "chief" and/or "worker" only')
        if not isinstance(addresses, list) or not addresses:
            raise UserError(f'TF_CONFIG cluster job {job!r} must be a non-empty list of '
                            'host:port addresses')
        for address in addresses:
            host_and_port(address)
    if not isinstance(task, dict) or 'type' not in task or 'index' not in task:
        raise UserError('TF_CONFIG has no "task" object with "type" and "index" saying which '
                        'of the cluster\'s tasks this process is')
    job, index = task['type'], task['index']
    if job not in cluster:
        raise UserError(f'TF_CONFIG task type {job!r} is not a job of the cluster '
                        f'({", ".join(cluster)})')
    if not isinstance(index, int) or isinstance(index, bool) or not (
            0 <= index < len(cluster[job])):
        raise UserError(f'TF_CONFIG task index {index!r} is not an index of the cluster\'s '
                        f'{job!r} list (0 to {len(cluster[job]) - 1})')
    return tf_config


def host_and_port(address):
    """('host', port) of a TF_CONFIG address 'host:port'; UserError if it is not one."""
    host, _, port = str(address).rpartition(':')
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f'TF_CONFIG address {address!r} is not host:port')
    return host.strip('[]'), int(port)


def multi_worker_strategy(peer_timeout=peer_watchdog.DEFAULT_TIMEOUT_SECONDS):
    """MultiWorkerMirroredStrategy over TF_CONFIG's cluster, once every worker has joined
    (an all-reduce has gone round), or the process ends after peer_timeout seconds."""
    tf_config = read_tf_config()
    job, index = tf_config['task']['type'], tf_config['task']['index']
    own = tf_config['cluster'][job][index]
    peers = [address for addresses in tf_config['cluster'].values() for address in addresses
             if address != own]
    with peer_watchdog.Watchdog(peer_timeout, f'{job} {index}', peers):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        # Creating the strategy waits for the coordination service; a first collective
        # returns only once the whole ring is up.
        strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)),
                        axis=None)
    return strategy


# TPUStrategy per TPU name: initializing a TPU system again (a notebook cell run twice) would
# wipe the variables already on it.
_TPU_STRATEGIES = {}


def tpu_strategy(tpu=None):
    if tpu in _TPU_STRATEGIES:
        return _TPU_STRATEGIES[tpu]
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as e:
        raise UserError(f'--strategy=tpu: no TPU found ({str(e).splitlines()[0]}); use '
                        '--strategy=auto on machines without one') from None
    return _TPU_STRATEGIES.setdefault(tpu, tf.distribute.TPUStrategy(resolver))


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on the workers of a
    multi-worker run other than the chief (the "chief" task, or worker 0 when there is none)."""
    resolver = getattr(strategy, 'cluster_resolver', None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type == 'chief':
        return True
    jobs = resolver.cluster_spec().as_dict()
    return 'chief' not in jobs and resolver.task_type == 'worker' and resolver.task_id == 0


def per_replica_batch(global_batch, strategy):
    """The batch each replica takes of a global batch; UserError if it does not split evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise UserError(f'batch_size {global_batch} (the global batch) does not split over '
                        f'{replicas} replicas; use a multiple of {replicas}, e.g. '
                        f'--config.batch_size={replicas * max(1, global_batch // replicas)}')
    return global_batch // replicas


def resolve_run(config: ml_collections.ConfigDict,
                strategy: tf.distribute.Strategy) -> ml_collections.ConfigDict:
    """The one resolve of a training run's config: config.resolve (dataset facts and checks,
    no TensorFlow), then the settings that depend on the strategy and the machine: the global
    batch checked, sync_batch_norm 'on' or 'off', precision (bfloat16 on TPUs when left to
    auto), xla and the convolution pass settings. Returns a new ConfigDict; a resolved config
    resolves to an equal one."""
    config = config_lib.resolve(config)
    batch = per_replica_batch(config.batch_size, strategy)
    if config.sync_batch_norm == config_lib.AUTO:
        replicas = strategy.num_replicas_in_sync
        config.sync_batch_norm = 'on' if replicas > 1 and batch == 1 else 'off'
    if isinstance(strategy, tf.distribute.TPUStrategy) and config.precision == config_lib.AUTO:
        config.precision = 'mixed_bfloat16'
    config.precision = performance.choose_precision(config.precision)
    config.xla = performance.choose_xla(config.xla)
    tpu = isinstance(strategy, tf.distribute.TPUStrategy)
    for name in performance.CONVOLUTION_PASS_FIELDS:
        config[name] = performance.choose_convolution_passes(
            config[name], accelerator=True if tpu else None)
    return config


def check_workers_agree(strategy, step):
    """Under a multi-worker strategy, raises UserError unless every worker resumed at the same
    step (a worker that cannot read the chief's workdir starts from scratch)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    steps = strategy.gather(strategy.run(lambda: tf.constant([step], tf.int64)), axis=0)
    steps = sorted(set(steps.numpy().tolist()))
    if len(steps) > 1:
        raise UserError(f'the workers resumed at different steps ({", ".join(map(str, steps))}): '
                        'every worker must read the chief\'s workdir, e.g. on a shared '
                        'filesystem, and be given the same --workdir')


def is_default(strategy):
    """Whether `strategy` is TensorFlow's default strategy (one device, no distribution)."""
    return strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()


def describe(strategy):
    """One line: the strategy, its replicas and, for several workers, this task."""
    replicas = strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        resolver = strategy.cluster_resolver
        workers = sum(len(tasks) for tasks in resolver.cluster_spec().as_dict().values())
        role = 'chief' if is_chief(strategy) else 'not the chief'
        return (f'MultiWorkerMirroredStrategy: {replicas} replicas on {workers} workers; this '
                f'is {resolver.task_type} {resolver.task_id} ({role})')
    if is_default(strategy):
        gpus = tf.config.list_logical_devices('GPU')
        return f'default strategy: one replica on {gpus[0].name if gpus else "the CPU"}'
    devices = ', '.join(getattr(strategy.extended, 'worker_devices', ()))
    return f'{type(strategy).__name__}: {replicas} replicas' + (f' on {devices}' if devices else '')


def batch_description(config, strategy):
    replicas = strategy.num_replicas_in_sync
    return (f'global batch {config.batch_size} = '
            f'{per_replica_batch(config.batch_size, strategy)} per replica x {replicas} '
            f'replica{"s" if replicas > 1 else ""}; synchronized BatchNorm '
            f'{config.sync_batch_norm}')


def distribute_dataset(strategy, make_dataset, global_batch):
    """The strategy's distributed dataset of `make_dataset(batch, shards, shard)`, which must
    return batches of `batch` examples made from every `shards`-th example of the run from
    number `shard` on: one input pipeline per worker, each reading its own share, and each
    replica taking whole per-replica batches."""
    def pipeline(context):
        return make_dataset(context.get_per_replica_batch_size(global_batch),
                            context.num_input_pipelines, context.input_pipeline_id)
    return strategy.distribute_datasets_from_function(pipeline)
