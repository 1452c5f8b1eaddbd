"""Measure a trained run's translations against the targets of a held-out split:
`python -m p2p_tf.evaluate --workdir=runs/facades [--split=val] [--checkpoint=best]`.

Prints mean, median, min and max of L1, PSNR and SSIM and the worst images by L1, and writes
metrics.json (per image and overall) and contact_sheet.png (input | output | target rows) into
--output, by default WORKDIR/eval/SPLIT-stepN.
"""

from absl import flags

from p2p_tf import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of a training run (or one of its '
                               'checkpoints, WORKDIR/checkpoints/ckpt-N).', required=True)
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'A checkpoint path, or best for the best '
                                  'one training kept in WORKDIR/best (default: latest).')
_DATASET = flags.DEFINE_string('dataset', None, "A dataset other than the run's (e.g. folder, "
                               'with --data_dir).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Folder with a local copy of the dataset, or '
                                'the folder of --dataset=folder; default $P2P_TF_DATA_DIR.')
_SPLIT = flags.DEFINE_string('split', None, 'The split to score (default: the one training '
                             'evaluates, config.eval_split: val, else test).')
_MODE = flags.DEFINE_enum('mode', 'paper', ['paper', 'eval'],
                          'paper: dropout and batch statistics as in the paper, seeded; eval: '
                          'deterministic Keras inference mode.')
_MAX_IMAGES = flags.DEFINE_integer('max_images', 0, 'Score only the first N images (0: all).',
                                   lower_bound=0)
_SHEET_IMAGES = flags.DEFINE_integer('sheet_images', 8, 'Rows of the contact sheet (0: none).',
                                     lower_bound=0)
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for metrics.json and contact_sheet.png '
                              '(default: WORKDIR/eval/SPLIT-stepN).')

_OVERWRITE = flags.DEFINE_boolean('overwrite', False, 'Write into an --output folder that holds '
                                  'files already.')

def main():
    from p2p_tf.evaluation import scoring
    report = scoring.evaluate_run(
        _WORKDIR.value, split=_SPLIT.value, dataset=_DATASET.value, data_dir=_DATA_DIR.value,
        checkpoint=_CHECKPOINT.value, mode=_MODE.value, max_images=_MAX_IMAGES.value,
        sheet_images=_SHEET_IMAGES.value, output_dir=_OUTPUT.value, overwrite=_OVERWRITE.value)
    print(scoring.format_report(report))
    print(f'wrote {report["output_dir"]}')


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
