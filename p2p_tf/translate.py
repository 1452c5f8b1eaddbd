"""Translate images with a trained run:
`python -m p2p_tf.translate --workdir=runs/facades --input=IMAGE_OR_FOLDER --output=DIR`.

Each input is a source image (no target half) of any size; `--paired` takes side-by-side
pairs and writes input | output | target strips.
"""

from absl import flags

from p2p_tf import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of a training run.', required=True)
_INPUT = flags.DEFINE_string('input', None, 'An image file or a folder of images.',
                             required=True)
_OUTPUT = flags.DEFINE_string('output', None, 'Folder for the translated PNGs.', required=True)
_PAIRED = flags.DEFINE_boolean('paired', False, 'Inputs are side-by-side pairs in the '
                               "dataset's layout; write input | output | target strips.")
_MODE = flags.DEFINE_enum('mode', 'paper', ['paper', 'eval'],
                          'paper: dropout and batch statistics as in the paper; eval: '
                          'deterministic Keras inference mode.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'A checkpoint path (default: latest).')


def main():
    from p2p_tf import inference
    written = inference.translate_files(_WORKDIR.value, _INPUT.value, _OUTPUT.value,
                                        paired=_PAIRED.value, mode=_MODE.value,
                                        checkpoint=_CHECKPOINT.value)
    print(f'wrote {len(written)} image(s) to {_OUTPUT.value}')


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
