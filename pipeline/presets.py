"""Presets: one YAML file per experiment (pipeline/presets/NAME.yaml) naming the corpus, the teacher, the
distillation and the students. Each stage's configuration is built in layers, later layers winning:

  dataclass defaults < pipeline/configs/<base>.yaml < the preset's section < --config FILE < command-line flags

Folders follow from the preset's run_dir: data/, teacher/, distill/, students/<size>/<name>/, report.md.
"""
from __future__ import annotations

from pathlib import Path

from seqkd.config import load_yaml, merge
from seqkd.io import SeqkdError

HERE = Path(__file__).parent
PRESETS = HERE / "presets"
CONFIGS = HERE / "configs"
PRESET_KEYS = ("description", "run_dir", "data", "teacher", "distill", "students", "evaluate", "report", "paper")
STUDENT_KEYS = ("sizes", "names", "seeds", "train", "finetune", "size_overrides", "name_overrides")
SIZES = ("student", "student-small")


def available(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_preset(name: str) -> dict:
    """A preset by name (pipeline/presets/NAME.yaml) or by path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESETS / f"{name}.yaml"
    if not path.exists():
        raise SeqkdError(f"preset '{name}' not found; presets: {', '.join(available(PRESETS))}")
    preset = load_yaml(path)
    for key in preset:
        if key not in PRESET_KEYS:
            raise SeqkdError(f"{path}: unknown key '{key}'; known keys: {', '.join(PRESET_KEYS)}")
    for key in preset.get("students", {}):
        if key not in STUDENT_KEYS:
            raise SeqkdError(f"{path}: students: unknown key '{key}'; known keys: {', '.join(STUDENT_KEYS)}")
    for name in preset.get("students", {}).get("name_overrides", {}):
        if name not in preset["students"].get("names", []):
            raise SeqkdError(f"{path}: students.name_overrides: '{name}' is not one of students.names")
    preset["_path"] = str(path)
    preset["_name"] = path.stem
    return preset


def run_dir(preset: dict, override: str | None = None) -> Path:
    return Path(override or preset.get("run_dir") or f"runs/{preset['_name']}")


def base_config(name: str) -> tuple[dict, str]:
    path = CONFIGS / f"{name}.yaml"
    if not path.exists():
        raise SeqkdError(f"config '{name}' not found under {CONFIGS}; configs: {', '.join(available(CONFIGS))}")
    return load_yaml(path), str(path)


def student_method(name: str) -> tuple[dict, str]:
    """A student configuration (pipeline/configs/students/NAME.yaml): its parent and its training keys."""
    folder = CONFIGS / "students"
    path = folder / f"{name}.yaml"
    if not path.exists():
        raise SeqkdError(f"student configuration '{name}' not found; configurations: {', '.join(available(folder))}")
    return load_yaml(path), str(path)


def data_layers(preset: dict, run: Path) -> list[tuple[dict, str]]:
    return [({"out_dir": str(run / "data")}, "preset"), (preset.get("data", {}), preset["_path"] + ": data")]


def teacher_layers(preset: dict, run: Path) -> list[tuple[dict, str]]:
    section = dict(preset.get("teacher", {}))
    base = section.pop("base", "teacher")
    return [base_config(base), ({"data_dir": str(run / "data"), "out_dir": str(run / "teacher")}, "preset"),
            (section, preset["_path"] + ": teacher")]


def distill_layers(preset: dict, run: Path) -> list[tuple[dict, str]]:
    return [({"teacher": str(run / "teacher" / "best.pt"), "data_dir": str(run / "data"),
              "out_dir": str(run / "distill")}, "preset"), (preset.get("distill", {}), preset["_path"] + ": distill")]


def seeds(preset: dict) -> list[int | None]:
    """The seeds every student is trained with (students.seeds); [None] = the configuration's own seed, once."""
    return list(preset.get("students", {}).get("seeds") or [None])


def student_dir(run: Path, name: str, size: str, seed: int | None = None, first_seed: int | None = None) -> Path:
    """students/<size>/<name>, with '.seed<N>' for every seed but the preset's first."""
    if name == "teacher+seq-inter":
        return run / "teacher+seq-inter"
    return run / "students" / size / (name if seed == first_seed else f"{name}.seed{seed}")


def student_layers(preset: dict, run: Path, name: str, size: str, seed: int | None = None) -> list[tuple[dict, str]]:
    """Layers for student `name` of size `size` trained with `seed` (one of the preset's seeds; None = its first),
    or the teacher itself for teacher+seq-inter."""
    method, method_path = student_method(name)
    method = dict(method)
    parent = method.pop("parent", None)
    students = preset.get("students", {})
    first = seeds(preset)[0]
    seed = first if seed is None else seed
    if seed not in seeds(preset):
        raise SeqkdError(f"seed {seed} is not one of the preset's students.seeds {seeds(preset)}")
    is_teacher = name == "teacher+seq-inter"
    if is_teacher:
        layers = teacher_layers(preset, run)[:1] + [(
            {k: v for k, v in preset.get("teacher", {}).items() if k != "base"}, preset["_path"] + ": teacher")]
    else:
        if size not in SIZES:
            raise SeqkdError(f"size '{size}' is not one of {', '.join(SIZES)}")
        layers = [base_config(size), (students.get("train", {}), preset["_path"] + ": students.train"),
                  (students.get("size_overrides", {}).get(size, {}), preset["_path"] + f": students.size_overrides.{size}")]
    paths = {"data_dir": str(run / "data"), "out_dir": str(student_dir(run, name, size, seed, first)),
             "distill_dir": str(run / "distill"), "kd_teacher": str(run / "teacher" / "best.pt")}
    layers.append((paths, "preset"))
    if parent:
        parent_dir = run / "teacher" if parent == "teacher" else student_dir(run, parent, size, seed, first)
        layers.append(({"init_from": str(parent_dir / "best.pt")}, method_path))
        layers.append((students.get("finetune", {}), preset["_path"] + ": students.finetune"))
    layers.append((method, method_path))
    layers.append((students.get("name_overrides", {}).get(name, {}), preset["_path"] + f": students.name_overrides.{name}"))
    if seed is not None:
        layers.append(({"seed": seed}, preset["_path"] + ": students.seeds"))
    return layers


def student_parent(name: str) -> str | None:
    return student_method(name)[0].get("parent")


def merged(layers: list[tuple[dict, str]]) -> dict:
    out: dict = {}
    for values, _ in layers:
        out = merge(out, values)
    return out
