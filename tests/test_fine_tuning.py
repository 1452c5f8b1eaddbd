"""Fine-tuning (`train --init_from`): a new run starts from another run's weights at step 0,
then trains and resumes from its own checkpoints; mismatched architectures are one line."""

import io
import json

import numpy as np
import pytest

from p2p_tf import workdirs
from p2p_tf.errors import UserError
from p2p_tf.serving import export as export_lib
from p2p_tf.training import distribution, initialization, pix2pix
from p2p_tf.training.trainer import Trainer

from conftest import tiny_config


@pytest.fixture(scope='module')
def source_run(tmp_path_factory):
    """A tiny run trained 2 steps on generated pairs: (workdir, data folder)."""
    from conftest import write_pairs
    root = tmp_path_factory.mktemp('source')
    write_pairs(root / 'data' / 'train', 4)
    write_pairs(root / 'data' / 'val', 2, seed=1)
    config = tiny_config(dataset='folder', steps=2, checkpoint_every=2)
    pix2pix.train(config, str(root / 'run'), str(root / 'data'), stream=io.StringIO())
    return root / 'run', root / 'data'


def new_trainer(**overrides):
    import tensorflow as tf
    config = distribution.resolve_run(tiny_config(dataset='folder', **overrides),
                                      tf.distribute.get_strategy())
    return Trainer(config, total_steps=2, decay_steps=0), config


def assert_same(targets, sources):
    targets, sources = initialization.weights(targets), initialization.weights(sources)
    assert len(targets) == len(sources) > 10
    for target, source in zip(targets, sources):
        np.testing.assert_array_equal(np.asarray(target), np.asarray(source))


@pytest.mark.parametrize('with_discriminator', [False, True])
def test_at_step_0_the_networks_equal_the_sources(source_run, with_discriminator):
    workdir, _ = source_run
    source = initialization.resolve_source(str(workdir))
    assert source == str(workdir / 'checkpoints' / 'ckpt-2')
    generator, discriminator, _ = initialization.source_variables(source, True)
    trainer, config = new_trainer(init_from=source, init_discriminator=with_discriminator)
    before = [v.numpy() for v in initialization.weights(trainer.discriminator.variables)]
    messages = []
    initialization.initialize(trainer, config, messages.append)
    assert int(trainer.step) == 0 and int(trainer.generator_optimizer.iterations) == 0
    assert_same(trainer.generator.variables, generator)
    if with_discriminator:
        assert_same(trainer.discriminator.variables, discriminator)
        assert messages == [f'initialized the generator and discriminator from {source}']
    else:
        for variable, fresh in zip(initialization.weights(trainer.discriminator.variables),
                                   before):  # Its own fresh weights, untouched.
            np.testing.assert_array_equal(variable.numpy(), fresh)
        assert messages == [f'initialized the generator from {source}']


def test_a_fine_tuned_run_records_its_source_trains_and_resumes(source_run, tmp_path, capsys):
    workdir, data = source_run
    config = tiny_config(dataset='folder', steps=2, checkpoint_every=2,
                         init_from=str(workdir))
    log = io.StringIO()
    trainer = pix2pix.train(config, str(tmp_path / 'tuned'), str(data), stream=log)
    assert int(trainer.step) == 2
    assert f'initialized the generator from {workdir}/checkpoints/ckpt-2' in log.getvalue()
    recorded = json.loads((tmp_path / 'tuned' / 'config.json').read_text())
    assert recorded['init_from'] == str(workdir / 'checkpoints' / 'ckpt-2')
    # Resuming wins: another --init_from is ignored with a warning, the record stays.
    config = tiny_config(dataset='folder', steps=4, checkpoint_every=2,
                         init_from=str(tmp_path / 'elsewhere'))
    log = io.StringIO()
    trainer = pix2pix.train(config, str(tmp_path / 'tuned'), str(data), stream=log)
    assert int(trainer.step) == 4
    assert 'resumed from' in log.getvalue() and 'initialized' not in log.getvalue()
    assert 'is ignored' in capsys.readouterr().err
    recorded = json.loads((tmp_path / 'tuned' / 'config.json').read_text())
    assert recorded['init_from'] == str(workdir / 'checkpoints' / 'ckpt-2')


def test_a_paper_mode_export_starts_the_generator_and_an_eval_one_is_refused(source_run,
                                                                              tmp_path):
    workdir, _ = source_run
    paper = export_lib.export_saved_model(str(workdir), str(tmp_path / 'paper'), mode='paper')
    trainer, config = new_trainer(init_from=paper)
    initialization.initialize(trainer, config, lambda text: None)
    generator, _ = workdirs.load_generator(str(workdir))
    assert_same(trainer.generator.variables, generator.variables)
    # What an eval-mode export says of itself is enough to refuse it.
    evaluated = tmp_path / 'eval'
    metadata = dict(json.loads((tmp_path / 'paper' / workdirs.EXPORT_METADATA).read_text()),
                    mode='eval')
    export_lib.write_metadata(metadata, str(evaluated / workdirs.EXPORT_METADATA))
    (evaluated / 'saved_model.pb').write_bytes(b'')
    with pytest.raises(UserError, match='eval-mode export has its BatchNorm folded'):
        initialization.resolve_source(str(evaluated))


def test_another_architecture_is_one_line_naming_the_first_layer(source_run):
    """A UserError: one line on stderr and exit status 2 from `train` (cli.py)."""
    workdir, _ = source_run
    trainer, config = new_trainer(generator_filters=4, init_from=str(workdir))
    with pytest.raises(UserError, match=r'^--init_from \S+/ckpt-2: the generators differ from '
                       r'layer \S+ on \(\(4, 4, 3, 8\) in the source, \(4, 4, 3, 4\) in this '
                       r'run\); architectures must match \(depth, filters, channels\)$'):
        initialization.initialize(trainer, config, lambda text: None)
    trainer, config = new_trainer(image_size=64, load_size=72, init_from=str(workdir))
    with pytest.raises(UserError, match='the generators differ from layer'):
        initialization.initialize(trainer, config, lambda text: None)
