"""Translate images with a trained run:
`python -m p2p_tf.translate --workdir=runs/facades --input=IMAGE_OR_FOLDER --output=DIR`.

Each input is a source image or array (no target half) of any size and aspect ratio, and its
output is written in the training targets' type and range, in the input's file family (.npy,
TIFF, or PNG); `--paired` takes side-by-side pairs and writes input | output | target strips.
Unreadable files and files with another band count are skipped with a warning; the command
then exits with status 2 after translating the rest.
"""

from absl import flags

from p2p_tf import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of a training run (or one of its '
                               'checkpoints, WORKDIR/checkpoints/ckpt-N).')
_EXPORT_DIR = flags.DEFINE_string('export_dir', None, 'A SavedModel written by p2p_tf.export, '
                                  'instead of --workdir.')
_INPUT = flags.DEFINE_string('input', None, 'An image or array file (.npy, TIFF) or a folder '
                             'of them.', required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the translations: .npy for .npy '
                              'inputs, TIFF for TIFF, PNG (8- or 16-bit) for images.',
                              required=True)
_PAIRED = flags.DEFINE_boolean('paired', False, 'Inputs are side-by-side pairs in the '
                               "dataset's layout; write input | output | target strips.")
_MODE = flags.DEFINE_enum('mode', None, ['paper', 'eval'],
                          'paper (default for a workdir): dropout and batch statistics as in '
                          'the paper; eval: deterministic Keras inference mode. An export runs '
                          'in the mode it was exported with.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'A checkpoint path, or best for the '
                                  'best one periodic evaluation kept (default: latest).')
_FIT = flags.DEFINE_enum('fit', 'pad', ['pad', 'resize'],
                         'pad: mirror-pad to a multiple of 2**depth, translate at the image\'s '
                         'own scale, crop back; resize: resize to the training size and back.')
_TILE_SIZE = flags.DEFINE_integer('tile_size', 1024, 'With --fit=pad, images with a longer '
                                  'side are translated in overlapping tiles of this size '
                                  '(a multiple of 2**depth); 0: never tile.')
_TILE_OVERLAP = flags.DEFINE_integer('tile_overlap', 128, 'Overlap of neighbouring tiles, '
                                     'blended linearly.')
_OVERWRITE = flags.DEFINE_boolean('overwrite', False, 'Replace output files that exist already '
                                  '(an output never replaces one of the inputs).')
_CONVERT_CHANNELS = flags.DEFINE_boolean('convert_channels', False, 'Convert inputs whose '
                                         'channel count differs from the model\'s (RGB <-> '
                                         'gray, alpha dropped) instead of stopping.')


def main():
    from p2p_tf.errors import UserError
    from p2p_tf.serving import translation
    if bool(_WORKDIR.value) == bool(_EXPORT_DIR.value):
        raise UserError('give exactly one of --workdir and --export_dir')
    translator = translation.Translator(
        _WORKDIR.value or _EXPORT_DIR.value, mode=_MODE.value, fit=_FIT.value,
        tile_size=_TILE_SIZE.value, tile_overlap=_TILE_OVERLAP.value,
        convert_channels=_CONVERT_CHANNELS.value, checkpoint=_CHECKPOINT.value)
    written, skipped = translator.translate_files(_INPUT.value, _OUTPUT.value,
                                                  paired=_PAIRED.value,
                                                  overwrite=_OVERWRITE.value)
    print(f'wrote {len(written)} image(s) to {_OUTPUT.value}')
    if skipped:
        raise UserError(f'{len(skipped)} of {len(written) + len(skipped)} input(s) could not be '
                        'translated (warnings above)')


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
