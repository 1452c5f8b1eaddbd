"""The package's shape, read from its sources: no import cycles (imports inside functions
included), dependencies that run one way between the layers, and modules of a readable size."""

import ast

import pytest

from conftest import REPO

PACKAGE = REPO / 'p2p_tf'
MAX_MODULE_LINES = 400
# Each layer may import only from the layers after it (commands -> ... -> config / errors).
LAYERS = (
    ('train', 'translate', 'export', 'evaluate', 'data', 'fcn_score', 'table1', 'benchmark',
     'demo'),
    ('cli', 'notebook'),
    ('experiments',),
    ('training', 'serving'),
    ('evaluation',),
    ('workdirs',),
    ('nets',),
    ('datasets',),
    ('scorer_config',),
    ('config',),
    ('image_sizes',),
    ('errors', 'native_logs'),
)


def module_name(path, root=REPO):
    parts = path.relative_to(root).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(path, modules, root=REPO):
    """The package modules `path` imports anywhere in its code (lazily too)."""
    name = module_name(path, root)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(parts + ([node.module] if node.module else []))
            targets = [base] + [f'{base}.{alias.name}' for alias in node.names]
        else:
            continue
        # A module importing the package it is in (for its other modules) is not an edge.
        found |= {t for t in targets if t in modules and t != name
                  and not name.startswith(t + '.')}
    return found


def import_graph(package=PACKAGE):
    root = package.parent
    paths = {module_name(path, root): path for path in package.rglob('*.py')}
    return {name: imported_modules(path, paths, root) for name, path in paths.items()}


def find_cycle(graph):
    """One import cycle as [a, b, ..., a], or None."""
    state = {}

    def visit(node, trail):
        state[node] = 'open'
        for target in sorted(graph[node]):
            if state.get(target) == 'open':
                return trail[trail.index(target):] + [target]
            if target not in state:
                cycle = visit(target, trail + [target])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def layer(module):
    """The index in LAYERS of a p2p_tf module (p2p_tf.X or p2p_tf.X.Y -> X's layer)."""
    top = module.split('.')[1] if '.' in module else ''
    return next((i for i, names in enumerate(LAYERS) if top in names), None)


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and sum(map(len, graph.values())) > 100
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_the_cycle_finder_finds_a_lazy_import_cycle(tmp_path):
    package = tmp_path / 'pkg'
    (package / 'sub').mkdir(parents=True)
    (package / '__init__.py').write_text('')
    (package / 'sub' / '__init__.py').write_text('')
    (package / 'a.py').write_text('from pkg.sub import b\n')
    (package / 'sub' / 'b.py').write_text('def f():\n    from .. import a\n')
    graph = import_graph(package)
    assert graph['pkg.a'] == {'pkg.sub', 'pkg.sub.b'} and graph['pkg.sub.b'] == {'pkg.a'}
    assert find_cycle(graph) == ['pkg.a', 'pkg.sub.b', 'pkg.a']
    (package / 'sub' / 'b.py').write_text('def f():\n    return 1\n')
    assert find_cycle(import_graph(package)) is None


def test_dependencies_run_one_way_between_layers():
    graph = import_graph()
    for module, targets in graph.items():
        if module == 'p2p_tf':
            continue  # __init__ registers the TFDS builder.
        for target in targets:
            if target == 'p2p_tf':
                continue
            assert layer(module) is not None and layer(target) is not None, (module, target)
            # Within a subpackage its modules may import each other (no cycles, above).
            same_package = module.split('.')[:2] == target.split('.')[:2]
            assert same_package or layer(target) > layer(module), f'{module} imports {target}'


@pytest.mark.parametrize('path', sorted(PACKAGE.rglob('*.py')), ids=lambda p: module_name(p))
def test_modules_stay_readable(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f'{path} has {lines} lines'
