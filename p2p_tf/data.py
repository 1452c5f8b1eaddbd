"""Prepare side-by-side pairs and check datasets in any layout training reads:

    python -m p2p_tf.data combine --a=photos --b=labels --out=pairs
    python -m p2p_tf.data split --src=pairs --out=my_data --val=0.1 --test=0.1 --seed=0
    python -m p2p_tf.data check my_data

The work is done by `p2p_tf.datasets.tools` (combine, split) and `p2p_tf.datasets.checking`
(check); this file parses the arguments and prints what they return.
absl flags have no subcommands, so this command uses argparse, with the error convention of
the other commands (`p2p_tf.cli`): bad input is one line on stderr and exit status 2.
"""

import argparse
import sys

from p2p_tf import cli
from p2p_tf.errors import UserError

CHECK_HELP = """Read a dataset as training would and decode every image. DIR holds splits
(train/, val/, test/ folders of side-by-side pairs or of A/ and B/ folders, or train.csv, val.csv,
test.csv manifests with columns a,b) or is itself one folder of pairs (side-by-side files, or A/
and B/). Per split: its layout, pair count, image sizes and channel counts, and the pairs whose A
and B differ in size (training resizes both). Problems: unreadable or truncated files,
side-by-side files that are not twice as wide as high, files in A/ or B/ without a partner,
manifests without the a,b header or naming missing files, empty splits, and byte-identical files
within or across splits. Exit status: 0 if no problems were found, 1 if some were (listed), 2 for
bad usage (e.g. a missing folder)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, like the absl commands."""

    def error(self, message):
        cli.fail(message)


def build_parser():
    parser = ArgumentParser(prog=cli.program_name(), description=__doc__.split('\n\nThe')[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True,
                                     metavar='{combine,split,check}')

    combine = commands.add_parser(
        'combine', help='make side-by-side pairs from two folders',
        description='Write OUT/NAME.png with A/NAME.* on the left and B/NAME.* on the right '
                    '(files are matched by name without extension). Checks names, sizes and '
                    'existing outputs before writing anything.')
    combine.add_argument('--a', required=True, help='folder of inputs (left halves)')
    combine.add_argument('--b', required=True, help='folder of targets (right halves)')
    combine.add_argument('--out', required=True, help='folder for the pairs')
    combine.add_argument('--format', default='png', choices=['png', 'jpg'],
                         help='png (lossless, default) or jpg (quality 95)')
    combine.add_argument('--resize', nargs='?', const='bicubic', choices=['bicubic', 'nearest'],
                         help='resize B to the size of A where they differ (default: an '
                              'error); nearest keeps the colours of label maps')
    combine.add_argument('--allow_unmatched', action='store_true',
                         help='pair the files that match and list the rest, instead of '
                              'stopping')
    combine.add_argument('--overwrite', action='store_true',
                         help='replace existing output files')

    split = commands.add_parser(
        'split', help='split a folder of pairs into train/, val/ and test/',
        description='Copy the images in SRC into OUT/train, OUT/val and OUT/test. The split '
                    'is a function of the file names, the fractions and the seed; no file '
                    'lands in two splits. OUT must be new or empty.')
    split.add_argument('--src', required=True, help='folder of pairs')
    split.add_argument('--out', required=True, help='new folder for train/, val/, test/')
    split.add_argument('--val', type=float, default=0.1, help='fraction for val/ (0.1)')
    split.add_argument('--test', type=float, default=0.1, help='fraction for test/ (0.1)')
    split.add_argument('--seed', type=int, default=0, help='seed of the shuffle (0)')
    split.add_argument('--link', action='store_true',
                       help='hard-link instead of copying (same file system only)')

    check = commands.add_parser('check', help='report what is in a dataset (any layout training '
                                              'reads) and what is wrong',
                                description=CHECK_HELP)
    check.add_argument('dir', metavar='DIR', help='dataset folder')
    return parser


def run_combine(args):
    from p2p_tf.datasets import tools as pairs
    result = pairs.combine(args.a, args.b, args.out, resize=args.resize,
                           image_format=args.format, overwrite=args.overwrite,
                           allow_unmatched=args.allow_unmatched)
    print(f'wrote {len(result.written)} pair(s) to {args.out}')
    for unmatched, folder in ((result.unmatched_a, args.a), (result.unmatched_b, args.b)):
        if unmatched:
            print(f'skipped {len(unmatched)} file(s) in {folder} with no partner: '
                  f'{", ".join(unmatched)}')
    if result.resized:
        print(f'resized B to the size of A ({args.resize}) in {len(result.resized)} pair(s): '
              f'{pairs.names_list(result.resized)}')
    if result.converted:
        name, mode_a, mode_b = result.converted[0]
        print(f'converted {len(result.converted)} pair(s) to RGB or gray (halves of different '
              f'channel counts or modes), e.g. {name}: A {mode_a}, B {mode_b}')
    if result.not_square:
        print(f'warning: {len(result.not_square)} pair(s) have halves that are not square, '
              f'e.g. {result.not_square[0]}; training needs pairs twice as wide as high')
    return 0


def run_split(args):
    from p2p_tf.datasets import tools as pairs
    written = pairs.split(args.src, args.out, val=args.val, test=args.test, seed=args.seed,
                          link=args.link)
    counts = ', '.join(f'{name} {len(files)}' for name, files in written.items())
    verb = 'linked' if args.link else 'copied'
    print(f'{verb} {sum(map(len, written.values()))} file(s) into {args.out}: {counts}')
    return 0


def run_check(args):
    from p2p_tf.datasets import checking
    report = checking.check(args.dir)
    for line in report_lines(report):
        print(line)
    return 0 if report.ok else 1


PROBLEM_TITLES = {'unreadable': 'unreadable', 'not_a_pair': 'not a pair',
                  'duplicate': 'duplicate', 'empty_split': 'empty split',
                  'unmatched': 'no partner', 'missing_file': 'missing file',
                  'bad_manifest': 'bad manifest', 'no_training_pairs': 'nothing to train on'}


def report_lines(report):
    """The check report as text: per split its layout, pair and file counts, sizes, modes and
    the pairs whose A and B differ in size, then every problem."""
    from p2p_tf.datasets import checking, layouts
    lines = [f'{report.root}:']
    for split in report.splits:
        unreadable = sum(1 for i in split.images if i.error)
        files = (f', {len(split.images)} image(s)' if len(split.images) != len(split.pairs)
                 else '')
        lines.append(f'  {split.name}: {len(split.pairs)} pair(s) in {split.source} '
                     f'({layouts.LAYOUT_NAMES[split.layout]}{files})'
                     + (f', {unreadable} unreadable' if unreadable else ''))
        if split.images:
            sizes = [f'{w}x{h} ({n})' for (w, h), n in split.sizes.most_common()]
            lines.append(f'    sizes: {", ".join(sizes[:8])}'
                         + (f' and {len(sizes) - 8} more' if len(sizes) > 8 else ''))
            # An array's mode ('5-band uint16') names its bands already.
            modes = [f'{mode} ({n})' if checking.ARRAY_MODE in mode else
                     f'{mode}, {checking.channel_count(mode)} channel(s) ({n})'
                     for mode, n in split.modes.most_common()]
            lines.append(f'    modes: {"; ".join(modes)}')
        if split.resized:
            a, b = split.resized[0]
            lines.append(f'    A and B differ in size in {len(split.resized)} pair(s), e.g. '
                         f'{a.path} ({a.size[0]}x{a.size[1]}) and {b.path} '
                         f'({b.size[0]}x{b.size[1]}): training resizes both')
    lines += [f'note: {note}' for note in report.notes]
    if report.ok:
        lines.append('no problems found')
        return lines
    lines.append(f'{len(report.problems)} problem(s):')
    for problem in report.problems:
        lines.append(f'  {PROBLEM_TITLES[problem.kind]}: {" = ".join(problem.paths)}: '
                     f'{problem.detail}')
    return lines


COMMANDS = {'combine': run_combine, 'split': run_split, 'check': run_check}


def main(argv=None):
    """Runs the command in argv (default sys.argv[1:]); returns its exit status."""
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


def run():
    try:
        status = main()
    except UserError as e:
        cli.fail(str(e))
    except KeyboardInterrupt:
        cli.fail('interrupted', cli.EXIT_INTERRUPTED)
    sys.exit(status)


if __name__ == '__main__':
    run()
