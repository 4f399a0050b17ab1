"""The stages import only in the allowed directions, code strings included; no product module holds a harness."""

from __future__ import annotations

import ast
import contextlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("data", "training", "serving", "monitoring")
ALLOWED = {
    "data": set(),
    "training": {"data"},
    "serving": {"data", "training"},
    "monitoring": {"data", "training"},
}
HARNESS_WORDS = ("locust", "bench.", "launcher", "perf_counter() - t0")


def _owner(dotted: str) -> str:
    """The stage a dotted module name belongs to (`earlywarn.data.x` -> `data`); a bare stage name reads `bare data`."""
    parts = dotted.split(".")
    if parts[0] == "earlywarn" and len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    return f"bare {parts[0]}" if parts[0] in STAGES else parts[0]


def _modules_named(tree: ast.AST) -> set[str]:
    """Stages and top-level packages imported anywhere in the tree, including `python -c` code and `-m module` in strings."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {_owner(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(_owner(node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "import" in node.value:
            with contextlib.suppress(SyntaxError):
                found |= _modules_named(ast.parse(node.value))
        elif isinstance(node, ast.List | ast.Tuple):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            found |= {_owner(items[i + 1]) for i, v in enumerate(items[:-1]) if v == "-m"}
            found |= {_owner(s.split(":")[0]) for s in items if ":" in s and "." in s.split(":")[0]}  # "pkg.mod:Attr"
    return found


def test_each_stage_imports_only_what_it_may():
    wrong = []
    for stage in STAGES:
        for path in sorted((ROOT / stage).rglob("*.py")):
            used = _modules_named(ast.parse(path.read_text(), str(path))) & (set(STAGES) | {"earlywarn", "bench", "tests"})
            used |= {m for m in _modules_named(ast.parse(path.read_text())) if m.startswith("bare ")}
            wrong += [f"{path.relative_to(ROOT)} imports {m}" for m in sorted(used - ALLOWED[stage] - {stage})]
    assert not wrong, "\n".join(wrong)


def test_the_walker_sees_code_strings_and_module_arguments():
    code = (
        'import subprocess\nsubprocess.run(["python", "-m", "earlywarn.serving.bench"])\n'
        'X = "from earlywarn.monitoring.monitor import monitor"\nimport data.contract\n'
    )
    assert {"serving", "monitoring", "subprocess", "bare data"} <= _modules_named(ast.parse(code))


def test_everything_imports_the_stages_through_the_earlywarn_namespace():
    """The wheel installs only `earlywarn`: a bare `import data` would find another distribution's package, or none."""
    files = [p for d in (*STAGES, "earlywarn", "bench", "tests") for p in (ROOT / d).rglob("*.py") if p != Path(__file__)]
    files += sorted((ROOT / "notebooks").glob("*.ipynb"))
    wrong = []
    for path in files:
        text = path.read_text()
        if path.suffix == ".ipynb":
            cells = json.loads(text)["cells"]
            text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        wrong += [
            f"{path.relative_to(ROOT)} imports {m}" for m in sorted(_modules_named(ast.parse(text))) if m.startswith("bare ")
        ]
    assert not wrong, "\n".join(wrong)


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


def test_modules_stay_small_and_the_service_thin():
    """Issue 27's limits: every product module at most 300 lines; the BentoML service class at most 100 lines and each
    of its routes at most 20."""
    sizes = {p: len(p.read_text().splitlines()) for stage in (*STAGES, "earlywarn") for p in (ROOT / stage).rglob("*.py")}
    sizes = {p: n for p, n in sizes.items() if "migrations" not in p.parts}
    assert max(sizes.values()) <= 300, max(sizes, key=lambda p: sizes[p])
    tree = ast.parse((ROOT / "serving" / "service.py").read_text())
    service = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RiskService")
    assert service.end_lineno - service.lineno + 1 + len(service.decorator_list) <= 100
    routes = [f for f in service.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and f.decorator_list]
    assert len(routes) >= 6 and all(f.end_lineno - f.lineno + 1 <= 20 for f in routes), [f.name for f in routes]
