"""Reproduce the paper's Table 1 (loss ablation, FCN-scores) at CPU scale:
`python -m p2p_tf.table1 --data_dir=../shared/datasets --workdir=runs/table1`.

Trains the variants of --config (configs/table1.py: L1, cGAN, L1+cGAN), the FCN-score
segmenter of --scorer_config at the variants' image size, and prints the table. Run from the
repository root (the config files live in configs/); a second run reuses what is done.
"""

import os

from absl import flags

from p2p_tf import cli

_WORKDIR = flags.DEFINE_string('workdir', 'runs/table1', 'Folder for the runs, the scorer and '
                               'the report.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder holding facades/ or facades.tar.gz.')
_CONFIG = flags.DEFINE_string('config', 'configs/table1.py', 'Config file whose VARIANTS and '
                              'get_config(variant) define the runs.')
_SCORER_CONFIG = flags.DEFINE_string('scorer_config', 'configs/fcn/facades.py',
                                     "Config file of the FCN-score segmenter.")
_VARIANTS = flags.DEFINE_list('variants', None, 'Variants to run (default: all of --config).')
_SPLIT = flags.DEFINE_string('split', 'val', 'Split whose translations are scored.')


def main():
    from p2p_tf import config as config_lib
    from p2p_tf.errors import UserError
    from p2p_tf.experiments import table1 as ablation
    variants_module = config_lib.config_file_module(_CONFIG.value)
    names = _VARIANTS.value or list(variants_module.VARIANTS)
    unknown = sorted(set(names) - set(variants_module.VARIANTS))
    if unknown:
        raise UserError(f'unknown variant {unknown[0]!r}; {_CONFIG.value} has '
                        f'{", ".join(variants_module.VARIANTS)}')
    report = ablation.run_ablation(
        {name: variants_module.get_config(name) for name in names},
        config_lib.config_file_module(_SCORER_CONFIG.value).get_config(), _WORKDIR.value,
        _DATA_DIR.value, _SPLIT.value)
    print(ablation.format_report(report))
    print(f'wrote {os.path.join(_WORKDIR.value, ablation.REPORT_FILENAME)} and '
          f'{os.path.join(_WORKDIR.value, ablation.SAMPLES_FILENAME)}')


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
