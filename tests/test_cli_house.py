"""The command line's house rules (issue 20): a thin layer over the library, choices from the registries,
``--help`` without torch, one name per part (old spellings hidden aliases), and the layout limits."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "leo_video"
# command modules whose --help may still import torch (none now)
HEAVY_HELP_PENDING: set[str] = set()


def _modules(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.Module, path: Path) -> set[str]:
    """Absolute names of the modules ``tree`` (the file ``path``) imports."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_nothing_outside_cli_imports_cli_or_argparse():
    offenders = []
    for path, tree in _modules(SRC):
        if path.parent.name == "cli" or path.name == "__main__.py":  # `python -m leo_video` is the CLI's entry point
            continue
        imported = _imports(tree, path)
        if any(name == "leo_video.cli" or name.startswith("leo_video.cli.") for name in imported) or "argparse" in imported:
            offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}


def test_every_help_works_without_torch():
    script = (
        "import contextlib, io, sys\n"
        "sys.modules['torch'] = None\n"
        "import leo_video.cli.main as m\n"
        f"pending = {sorted(HEAVY_HELP_PENDING)!r}\n"
        "every = m.command_modules\n"
        "m.command_modules = lambda: [x for x in every() if x.__name__ not in pending]\n"
        "def paths(parser, path):\n"
        "    yield path\n"
        "    for action in parser._actions:\n"
        "        if isinstance(action.choices, dict):  # a sub-command\n"
        "            for name, sub in action.choices.items():\n"
        "                yield from paths(sub, path + [name])\n"
        "for path in paths(m.build_parser(), []):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n"
        "            m.main([*path, '--help'])\n"
        "        except SystemExit as exc:\n"
        "            assert not exc.code, path\n"
        "    assert 'usage: leo-video' in out.getvalue(), path\n"
        "    print(' '.join(path))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    helped = set(result.stdout.splitlines())
    assert {"", "generate", "eval fvd", "train lmdm", "demo", "ui"} <= helped


@pytest.mark.parametrize("argv, dest", [
    (["generate", "--out", "o.mp4"], ("animator", "motion", "start_code", "start_frame")),
    (["ui"], ("animator", "motion", "start_code", "start_frame")),
    (["assemble", "--out", "p"], ("animator", "motion", "start_code", "start_frame")),
    (["edit", "--video", "v", "--edited-first-frame", "e.png", "--out", "o.mp4"], ("animator",)),
    (["train", "lmdm", "--codes", "c"], ("animator",)),
    (["train", "cddpm", "--data", "d"], ("animator",)),
])
def test_part_flags_take_the_part_names_and_the_old_spellings_hide(argv, dest, capsys):
    from leo_video.cli._common import PART_FLAGS
    from leo_video.cli.main import build_parser, main

    parser = build_parser()
    for old in (True, False):
        flags = [PART_FLAGS[part][1 if old else 0] for part in dest]
        args = parser.parse_args([*argv, *(x for i, f in enumerate(flags) for x in (f, f"path{i}"))])
        assert [getattr(args, part) for part in dest] == [f"path{i}" for i in range(len(dest))]
    with pytest.raises(SystemExit):
        main([*argv[: 2 if argv[0] == "train" else 1], "--help"])
    text = capsys.readouterr().out
    assert all(PART_FLAGS[part][0] in text for part in dest)
    assert not any(old in text.split() or f"{old}," in text for _, old in PART_FLAGS.values()), text


def test_assemble_still_requires_the_animator_and_the_motion(capsys):
    from leo_video.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["assemble", "--motion", "m", "--out", "p"])
    assert "required: --animator\n" in capsys.readouterr().err  # the old spelling stays out of errors too
    with pytest.raises(SystemExit):
        build_parser().parse_args(["edit", "--pipeline", "p", "--lia", "l", "--video", "v", "--out", "o.mp4"])
    assert "argument --animator: not allowed with argument --pipeline" in capsys.readouterr().err


def test_choices_come_from_the_registries():
    from leo_video.cli.main import build_parser
    from leo_video.diffusion.schedulers import SAMPLERS
    from leo_video.metrics.acd import EMBEDDERS
    from leo_video.metrics.protocol import PROTOCOLS

    def choices(argv, dest):
        sub = build_parser()
        for name in argv:
            sub = next(a for a in sub._actions if getattr(a, "choices", None) and name in a.choices).choices[name]
        return list(next(a for a in sub._actions if a.dest == dest).choices)

    for command in (["generate"], ["assemble"], ["eval", "fvd"], ["eval", "kvd"], ["eval", "all"]):
        assert choices(command, "sampler") == list(SAMPLERS)
    for command in (["eval", "fvd"], ["eval", "all"]):
        assert choices(command, "protocol") == list(PROTOCOLS)
    assert choices(["eval", "acd"], "embedder") == list(EMBEDDERS)
    assert choices(["eval", "all"], "acd_embedder") == list(EMBEDDERS)
