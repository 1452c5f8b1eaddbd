"""Play with a trained model in the browser:
`python -m p2p_tf.demo --workdir=runs/facades` (or `--export_dir=DIR`), then open the URL it
prints. Needs the demo extra: `pip install "p2p_tf[demo]"`.

The page draws label maps with the dataset's classes (or any colour), translates uploads of
any size as `translate` does, and switches between paper and eval mode
(p2p_tf/serving/demo_app.py). It listens on 127.0.0.1 unless --host says otherwise.
"""

from absl import flags

from p2p_tf import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Workdir of a training run (or one of its '
                               'checkpoints, WORKDIR/checkpoints/ckpt-N).')
_EXPORT_DIR = flags.DEFINE_string('export_dir', None, 'A SavedModel written by p2p_tf.export, '
                                  'instead of --workdir.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'A checkpoint path, or best for the '
                                  'best one periodic evaluation kept (default: latest).')
_HOST = flags.DEFINE_string('host', '127.0.0.1', 'Address to listen on; 0.0.0.0 lets anyone '
                            'on the network reach the demo.')
_PORT = flags.DEFINE_integer('port', 7860, 'Port to listen on.', lower_bound=1,
                             upper_bound=65535)
_MODE = flags.DEFINE_enum('mode', None, ['paper', 'eval'], 'The mode the page starts in '
                          '(default: paper for a workdir, an export\'s own mode).')
_EXAMPLES = flags.DEFINE_string('examples', None, 'An image or a folder of input images to '
                                'start drawing from (default: the val inputs of a local copy '
                                'of the run\'s dataset, when there is one).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Where to look for the dataset\'s local '
                                'copy (as train --data_dir).')
_PALETTE = flags.DEFINE_string('palette', 'auto', 'Brush colours: auto (the dataset\'s label '
                               'classes for a labels -> photo model, else any colour), free, '
                               'or a palette name (facades, cityscapes).')
_MAX_MEGAPIXELS = flags.DEFINE_float('max_megapixels', 25.0, 'Larger uploads are refused with '
                                     'a message.', lower_bound=0.001)
_TILE_SIZE = flags.DEFINE_integer('tile_size', 1024, 'Images with a longer side are translated '
                                  'in overlapping tiles of this size, as translate does.')
_TILE_OVERLAP = flags.DEFINE_integer('tile_overlap', 128, 'Overlap of neighbouring tiles.')


def main():
    from p2p_tf.errors import UserError
    if bool(_WORKDIR.value) == bool(_EXPORT_DIR.value):
        raise UserError('give exactly one of --workdir and --export_dir')
    try:
        from p2p_tf.serving import demo_app
    except ModuleNotFoundError as e:
        if e.name != 'gradio':
            raise
        raise UserError('the demo needs Gradio: pip install "p2p_tf[demo]"') from None
    demo_app.serve(_WORKDIR.value or _EXPORT_DIR.value, checkpoint=_CHECKPOINT.value,
                   host=_HOST.value, port=_PORT.value, mode=_MODE.value,
                   examples_path=_EXAMPLES.value, data_dir=_DATA_DIR.value,
                   palette=_PALETTE.value, max_megapixels=_MAX_MEGAPIXELS.value,
                   tile_size=_TILE_SIZE.value, tile_overlap=_TILE_OVERLAP.value)


def run():
    cli.run(main)


if __name__ == '__main__':
    run()
