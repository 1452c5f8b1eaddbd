"""Shared test fixtures: tiny configs, generated image pairs, the shared real datasets."""

import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
# The real data (README of the shared datasets): CI sets it; elsewhere the tests that need it
# are skipped when it is unset.
DATA_DIR_ENV = 'P2P_TF_DATA_DIR'
SHARED_DATA = pathlib.Path(os.environ.get(DATA_DIR_ENV) or '/nonexistent/P2P_TF_DATA_DIR')


def require_shared_data():
    """The shared real datasets' folder; skips the test when $P2P_TF_DATA_DIR does not hold
    them, except under CI=true, where that is a failure (CI must test on the real data)."""
    if (SHARED_DATA / 'facades' / 'train').is_dir():
        return SHARED_DATA
    if not os.environ.get(DATA_DIR_ENV):
        message = f'needs the real datasets: set {DATA_DIR_ENV} (a folder with facades/)'
    else:
        message = f'{DATA_DIR_ENV}={SHARED_DATA} has no facades/train'
    if os.environ.get('CI') == 'true':
        pytest.fail(message)
    pytest.skip(message)


def tiny_config(**overrides):
    """The configs/tiny.py settings (32x32, 8 filters) as a resolved ConfigDict, with no
    periodic evaluation (the tests of evaluation turn it on)."""
    from p2p_tf import config as config_lib
    config = config_lib.get_config()
    config.update(dict(image_size=32, load_size=36, generator_filters=8, discriminator_filters=8,
                       steps=4, log_every=1, sample_every=1000, checkpoint_every=1000,
                       num_samples=2, eval_every=0))
    config.update(overrides)
    return config_lib.resolve(config)


def trainer_config(strategy=None, **overrides):
    """tiny_config(**overrides) resolved for `strategy` (default: the current one), as a
    Trainer takes it (distribution.resolve_run)."""
    import tensorflow as tf

    from p2p_tf.training import distribution
    return distribution.resolve_run(tiny_config(**overrides),
                                    strategy or tf.distribute.get_strategy())


def write_pairs(folder, count, height=40, seed=0, suffix='.png'):
    """Writes `count` random side-by-side pairs (2*height wide) named 1..count; returns paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(1, count + 1):
        pixels = rng.integers(0, 256, size=(height, 2 * height, 3), dtype=np.uint8)
        path = os.path.join(folder, f'{i}{suffix}')
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


# A made-up "photo" colour per facades class, so that a photo is a function of its labels.
PHOTO_COLOURS = np.random.default_rng(7).integers(0, 256, size=(12, 3), dtype=np.uint8)


def synthetic_label_pair(rng, size=64):
    """A side-by-side pair (photo | facades-coloured labels) of random rectangles of classes
    on facade; uint8 [size, 2 * size, 3], and the classes 1..12 [size, size]."""
    from p2p_tf.datasets import label_maps
    facades_colours = np.array([colour for _, colour in label_maps.PALETTES['facades']],
                               np.uint8)
    classes = np.full((size, size), 2)
    for _ in range(6):
        top, left = rng.integers(0, size - size // 5, size=2)
        height, width = rng.integers(size // 5, size // 2, size=2)
        classes[top:top + height, left:left + width] = rng.integers(1, 13)
    photo, labels = PHOTO_COLOURS[classes - 1], facades_colours[classes - 1]
    return np.concatenate([photo, labels], axis=1), classes


def make_archive(folder, name='facades'):
    """folder/NAME.tar.gz holding NAME/train (3 pairs) and NAME/val (2 pairs); returns its path."""
    source = folder / 'source'
    write_pairs(source / name / 'train', 3)
    write_pairs(source / name / 'val', 2, seed=1)
    archive = folder / f'{name}.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(source / name, arcname=name)
    return archive


# Runs a strategy's steps in a fresh TensorFlow runtime (tests/test_distribution.py,
# tests/test_mirrored_strategy.py).
WORKER_SCRIPT = str(REPO / 'tests' / 'distributed_worker.py')


def max_difference(a, b):
    """The largest absolute difference between two lists of arrays of the same shapes."""
    assert len(a) == len(b)
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def run_command(module, *args, env=None, timeout=300):
    """Runs `python -m module args...` in a subprocess; returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, '-m', module, *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=str(REPO))


@pytest.fixture(scope='session', autouse=True)
def session_cache(tmp_path_factory):
    """The cache of every test and command run (the environment is inherited), never the
    user's: the shared facades is prepared for TFDS once per session."""
    from p2p_tf.datasets import sources
    before = os.environ.get(sources.CACHE_DIR_ENV)
    os.environ[sources.CACHE_DIR_ENV] = str(tmp_path_factory.mktemp('cache'))
    yield pathlib.Path(os.environ[sources.CACHE_DIR_ENV])
    if before is None:
        del os.environ[sources.CACHE_DIR_ENV]
    else:
        os.environ[sources.CACHE_DIR_ENV] = before


@pytest.fixture
def shared_data():
    return require_shared_data()


@pytest.fixture
def pair_folder(tmp_path):
    """A `folder` dataset of generated 40x80 pairs: train/ with 6, val/ with 2."""
    root = tmp_path / 'pairs'
    write_pairs(root / 'train', 6)
    write_pairs(root / 'val', 2, seed=1)
    return root
