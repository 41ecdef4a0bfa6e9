"""What every stage entry point shares: logging, the error contract, config layering from flags."""
from __future__ import annotations

import argparse
import ctypes
import logging
import sys
from pathlib import Path
from typing import Callable

from seqkd.config import add_arguments, build, flags_to_dict, load_yaml
from seqkd.io import SeqkdError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def tune_malloc() -> None:
    """Keep freed memory in the process (glibc). By default glibc maps every block over 32 MB afresh and returns
    it on free, so each training step page-faults its (tokens x vocabulary) buffers again: 8-10% of a step on the
    CPU, measured. This changes only the process running a stage; the library itself never does it."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_trim_threshold, m_mmap_max = -1, -4
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 1 << 30)


def setup_logging(out_dir: str | Path | None = None, *, quiet: bool = False) -> None:
    """Log to stderr and, when the stage has a folder, to its log.txt (appending across restarts)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    stream.setLevel(logging.WARNING if quiet else logging.INFO)
    root.addHandler(stream)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(Path(out_dir) / "log.txt", encoding="utf-8")
        file.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(file)


def config_parser(prog: str, description: str, cls, *, preset: bool = True,
                  defaults: dict | None = None) -> argparse.ArgumentParser:
    """The stage's flags, one per config field; `defaults` (a preset's merged layers) are shown in the help."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if preset:
        parser.add_argument("--preset", help="preset name (pipeline/presets/NAME.yaml) or path; with --help, the "
                                             "help shows the preset's values")
        parser.add_argument("--run_dir", help="the preset's run folder (default: its run_dir, or runs/PRESET)")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML file(s) of this stage's keys")
    add_arguments(parser, cls, defaults=defaults)
    return parser


def preset_defaults(argv: list[str], layers_of) -> dict:
    """For --help with --preset: the preset's merged layers (`layers_of(args)` from the flags parsed so far), or {}
    when there is no preset or it does not load."""
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--preset", "--run_dir", "--student", "--size"):
        pre.add_argument(flag)
    pre.add_argument("--teacher", action="store_true")
    pre.add_argument("--student_seed", type=int)
    args, _ = pre.parse_known_args(argv)
    if not args.preset or not any(a in ("-h", "--help") for a in argv):
        return {}
    try:
        from pipeline.presets import merged

        return merged(layers_of(args))
    except SeqkdError:
        return {}


def stage_config(prog: str, doc: str, cls, argv: list[str], layers_of, flags=None):
    """A stage's command line -> (its config, the parsed flags): defaults < the preset's layers (`layers_of(args)`)
    < --config files < flags. `flags(parser)` adds the stage's own non-config flags."""
    parser = config_parser(prog, doc, cls, defaults=preset_defaults(argv, layers_of))
    if flags:
        flags(parser)
    args = parser.parse_args(argv)
    return resolve(cls, args, layers_of(args)), args


def preset_layers(section):
    """layers_of for a stage whose preset layers are `section(preset, run_dir)` (presets.data_layers, ...)."""
    def layers_of(args) -> list:
        if not args.preset:
            return []
        from pipeline import presets

        preset = presets.load_preset(args.preset)
        return section(preset, presets.run_dir(preset, args.run_dir))
    return layers_of


def entry(prog: str, run: Callable[[list[str]], int]) -> Callable[[list[str] | None], int]:
    """A stage's main(argv=None): run(argv) under main_guard, argv defaulting to sys.argv[1:]."""
    def main(argv: list[str] | None = None) -> int:
        return main_guard(prog, lambda: run(sys.argv[1:] if argv is None else argv))
    return main


def resolve(cls, args: argparse.Namespace, layers: list[tuple[dict, str]]):
    """dataclass defaults < `layers` (from a preset) < --config files < flags."""
    layers = list(layers)
    for path in args.config:
        layers.append((load_yaml(path), path))
    layers.append((flags_to_dict(args, cls), "command line"))
    return build(cls, layers)


def main_guard(prog: str, fn: Callable[[], int | None]) -> int:
    """Run `fn`; user errors print one clear line and exit 2, Ctrl-C exits 130."""
    tune_malloc()
    try:
        return int(fn() or 0)
    except SeqkdError as e:
        logging.getLogger(prog).debug("error", exc_info=True)
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
