"""The shape of the house: data flows one way, no module imports itself back, Prefect stays in flows/."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("db", "ingest", "transcribe", "train", "generate", "flows", "sample")
STAGES = ("ingest", "transcribe", "train", "generate")  # in the order data flows through them


def _imports() -> dict[str, set[str]]:
    """Each of our modules -> our modules it imports, anywhere in it (inside functions too)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            name = f"{package}.{path.stem}"
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                found |= {m for m in modules if m.split(".")[0] in PACKAGES or m.split(".")[0] == "prefect"}
            graph[name] = found
    return graph


def test_no_module_imports_itself_back() -> None:
    graph = _imports()
    for start in graph:
        seen, stack = set(), [start]
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                assert nxt != start, f"{start} imports itself back"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)


def test_stages_read_earlier_stages_only_and_never_prefect_or_an_orchestrator() -> None:
    for module, imported in _imports().items():
        package = module.split(".")[0]
        if package not in STAGES:
            continue
        for target in imported:
            top = target.split(".")[0]
            assert top != "prefect" and top != "flows", f"{module} imports {target}"
            if top in STAGES:
                assert STAGES.index(top) <= STAGES.index(package), f"{module} reaches forward into {target}"
            if top != package:
                assert target not in {"train.training", "transcribe.catalogue", "ingest.catalogue"}, (
                    f"{module} imports another stage's orchestrator {target}"
                )


def test_importing_the_flows_changes_nothing(tmp_path: Path) -> None:
    """Importing a flow module (as a Prefect worker does) sets no variable, creates no folder, calls no server."""
    home = tmp_path / "home"
    ours = ("PREFECT_", "TUNESMITH_", "TF_")
    code = (
        "import os, flows.pipeline, flows.demo, flows.cli;"
        f"print(sorted(k for k in os.environ if k.startswith({ours!r})))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)} | {"TUNESMITH_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "['TUNESMITH_HOME']" and not home.exists()


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    """The README's table of TUNESMITH_* variables names each one the packages read, and no other."""
    from db.environment import Environment

    read = {
        name
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for name in re.findall(r"TUNESMITH_[A-Z_]+", path.read_text(encoding="utf-8"))
    } | {f"TUNESMITH_{field.upper()}" for field in Environment.model_fields}  # db.environment reads each
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = {name for line in readme.splitlines() if line.startswith("| `TUNESMITH_") for name in re.findall(
        r"TUNESMITH_[A-Z_]+", line.split("|")[1])}  # fmt: skip
    assert read <= table, f"not in the README's table: {sorted(read - table)}"
    assert table <= read, f"in the table, read nowhere: {sorted(table - read)}"


def test_no_generation_code_imports_a_judge() -> None:
    """The judges (bench/judges.py) stay apart from what they judge: nothing in train/ or generate/ reads them."""
    for package in ("train", "generate"):
        for path in sorted((ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                assert not any(n.split(".")[0] == "bench" or "judges" in n for n in names), f"{path} imports {names}"
