"""The stages import only in the allowed directions, code strings included; no product module holds a harness."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("data", "training", "serving", "monitoring")
ALLOWED = {
    "data": set(),
    "training": {"data"},
    "serving": {"data", "training"},
    "monitoring": {"data", "training"},
}
HARNESS_WORDS = ("locust", "bench.", "launcher", "perf_counter() - t0")


def _modules_named(tree: ast.AST) -> set[str]:
    """Top-level packages imported anywhere in the tree, including `python -c` code and `-m module` in strings."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "import" in node.value:
            with contextlib.suppress(SyntaxError):
                found |= _modules_named(ast.parse(node.value))
        elif isinstance(node, ast.List | ast.Tuple):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            found |= {items[i + 1].split(".")[0] for i, v in enumerate(items[:-1]) if v == "-m"}
            found |= {s.split(".")[0] for s in items if ":" in s and s.split(":")[0].count(".") == 1}  # "pkg.mod:Attr"
    return found


def test_each_stage_imports_only_what_it_may():
    wrong = []
    for stage in STAGES:
        for path in sorted((ROOT / stage).rglob("*.py")):
            used = _modules_named(ast.parse(path.read_text(), str(path))) & (set(STAGES) | {"earlywarn", "bench", "tests"})
            wrong += [f"{path.relative_to(ROOT)} imports {m}" for m in sorted(used - ALLOWED[stage] - {stage})]
    assert not wrong, "\n".join(wrong)


def test_the_walker_sees_code_strings_and_module_arguments():
    code = 'import subprocess\nsubprocess.run(["python", "-m", "serving.bench"])\nX = "from monitoring.monitor import monitor"\n'
    assert {"serving", "monitoring", "subprocess"} <= _modules_named(ast.parse(code))


def test_no_product_module_holds_a_benchmark_or_launcher():
    offenders = [
        str(p.relative_to(ROOT))
        for stage in (*STAGES, "earlywarn")
        for p in (ROOT / stage).rglob("*.py")
        if any(w in p.read_text() for w in HARNESS_WORDS) or "bench" in p.stem
    ]
    assert not offenders, offenders


WRAPPED = {  # each fast-moving library is called from one module (docs/architecture.md)
    "mlflow": {"training/tracking.py", "training/pyfunc_model.py"},  # the pyfunc is the models-from-code file MLflow loads
    "evidently": {"monitoring/evidently_io.py"},
    "optuna": {"training/tune.py"},
}


def test_each_fast_moving_library_is_wrapped_in_one_module():
    wrong = []
    for stage in (*STAGES, "earlywarn"):
        for path in sorted((ROOT / stage).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            used = _modules_named(ast.parse(path.read_text(), name))
            used |= {
                "mlflow"
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Name) and node.id == "MLFlowLogger"
            }
            wrong += [f"{name} imports {lib}" for lib, owners in WRAPPED.items() if lib in used and name not in owners]
    assert not wrong, "\n".join(wrong)
