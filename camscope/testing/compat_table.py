"""The README's "Switching from pytorch-grad-cam" table: every public name of the installed pytorch-grad-cam,
checked to exist at the same module path in camscope with a compatible signature.

Public names of a peer module: the classes and functions of pytorch-grad-cam found in its namespace
(defined there or imported from another of its modules, as ``from pytorch_grad_cam.base_cam import
ClassifierOutputTarget`` works) plus its top-level constants, for every module ``pkgutil.walk_packages``
finds. A signature is compatible when camscope's constructor (and ``__call__``/``forward``) accepts every
parameter of the peer's by name, the peer's positional ones in the same order. A name that behaves otherwise
on purpose is listed in :data:`camscope.compat.DIFFERENCES`, which the table shows.

``python benchmarks/compat_table.py`` rewrites the README block; ``--check`` exits 1 if it is out of date.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from camscope.testing.markers import replace_block

README = Path(__file__).resolve().parents[2] / "README.md"  # the source checkout's README
BEGIN, END = "<!-- compat-table:begin (written by benchmarks/compat_table.py) -->", "<!-- compat-table:end -->"
PEER, OURS = "pytorch_grad_cam", "camscope"
SED = "sed -i 's/pytorch_grad_cam/camscope/g' $(grep -rl pytorch_grad_cam --include='*.py' .)"


@dataclass(frozen=True)
class Row:
    module: str  # the peer's module path
    name: str
    present: bool
    signature_problem: str  # "" when compatible
    difference: str  # camscope.compat.DIFFERENCES entry, "" when none

    @property
    def ok(self) -> bool:
        return self.present and (not self.signature_problem or bool(self.difference))


def peer_modules() -> list[str]:
    package = importlib.import_module(PEER)
    return [PEER, *sorted(m.name for m in pkgutil.walk_packages(package.__path__, PEER + "."))]


def public_names(module_name: str) -> list[str]:
    """The peer's classes and functions in the module's namespace, and its top-level constants."""
    module = importlib.import_module(module_name)
    names = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith(PEER)
    }
    source = Path(module.__file__).read_text() if module.__file__ else ""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name) and not t.id.startswith("_"))
    return sorted(names)


def _parameters(func: Any) -> list[inspect.Parameter] | None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    if params and params[0].name in ("self", "ctx", "cls"):
        params = params[1:]
    return params


def _signature_problem(theirs: Any, ours: Any) -> str:
    """What the peer's call would pass that camscope's does not take ("" if nothing)."""
    peer, mine = _parameters(theirs), _parameters(ours)
    if peer is None or mine is None:
        return ""
    if any(p.kind is p.VAR_KEYWORD for p in mine):
        return ""
    names = [p.name for p in mine]
    missing = [p.name for p in peer if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names]
    if missing:
        return f"no parameter {', '.join(missing)}"
    positional = [p.name for p in peer if p.kind is p.POSITIONAL_OR_KEYWORD]
    if names[: len(positional)] != positional:
        return f"positional order {positional} differs"
    return ""


def _call(cls: type) -> Any:
    """The method a peer object is called through: ``__call__``, or ``forward`` when ``__call__`` is generic."""
    call = cls.__dict__.get("__call__")
    params = _parameters(call) if call is not None else None
    if params is not None and all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return getattr(cls, "forward", None)
    return call


def compare(peer: Any, ours: Any) -> str:
    if inspect.isclass(peer) and inspect.isclass(ours):
        if issubclass(peer, torch.autograd.Function):
            return _signature_problem(peer.forward, getattr(ours, "forward", None))
        problems = [_signature_problem(peer, ours)]
        peer_call = _call(peer)
        if peer_call is not None:
            problems.append(_signature_problem(peer_call, getattr(ours, "forward", None) or ours.__call__))
        return "; ".join(p for p in problems if p)
    if inspect.isfunction(peer):
        return _signature_problem(peer, ours) if callable(ours) else "not callable"
    return ""


def rows() -> list[Row]:
    from camscope.compat import DIFFERENCES

    out = []
    for module_name in peer_modules():
        peer_module = importlib.import_module(module_name)
        ours_name = OURS + module_name[len(PEER) :]
        try:
            ours_module: Any = importlib.import_module(ours_name)
        except ImportError:
            ours_module = None
        for name in public_names(module_name):
            peer = getattr(peer_module, name)
            present = ours_module is not None and hasattr(ours_module, name)
            problem = compare(peer, getattr(ours_module, name)) if present else ""
            defined = (
                getattr(peer, "__module__", module_name)
                if inspect.isclass(peer) or inspect.isfunction(peer)
                else module_name
            )
            difference = DIFFERENCES.get(f"{defined}.{name}", "")
            out.append(Row(module_name, name, present, problem, difference))
    return out


def markdown(table: list[Row]) -> str:
    """The README block: one row per peer module, its names (‡ = documented difference), then the differences."""
    from camscope.compat import DIFFERENCES
    from camscope.compat import PEER as PEER_RELEASE

    present = sum(r.present for r in table)
    unique = {(r.name, r.difference) for r in table}
    lines = [
        BEGIN,
        f"{present} of {len(table)} public names of {PEER_RELEASE} ({len({r.name for r in table})} distinct, in "
        f"{len({r.module for r in table})} modules) import from camscope at the same path; "
        f"{sum(1 for _, d in unique if d)} behave differently on purpose (‡, listed below).",
        "",
        "| pytorch_grad_cam module | names (all also under `camscope.` + the same path) |",
        "|---|---|",
    ]
    for module in dict.fromkeys(r.module for r in table):
        cells = []
        for r in (r for r in table if r.module == module):
            mark = "" if r.present else " **missing**"
            mark += " ‡" if r.difference else ""
            mark += f" (signature: {r.signature_problem})" if r.signature_problem and not r.difference else ""
            cells.append(f"`{r.name}`{mark}")
        lines.append(f"| `{module[len(PEER) :] or '(package)'}` | {', '.join(cells) or '—'} |")
    lines += ["", "| ‡ name | how camscope differs |", "|---|---|"]
    for key, text in DIFFERENCES.items():
        lines.append(f"| `{key[len(PEER) + 1 :]}` | {text} |")
    lines.append(END)
    return "\n".join(lines)


def write_readme(block: str, readme: Path = README) -> None:
    """Replace the README's marked block (:func:`camscope.testing.markers.replace_block`)."""
    replace_block(readme, BEGIN, END, block)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README block is out of date")
    args = parser.parse_args()
    table = rows()
    for r in table:
        if not r.ok:
            print(f"{r.module}.{r.name}: {'missing' if not r.present else r.signature_problem}", file=sys.stderr)
    block = markdown(table)
    if args.check:
        return 0 if block in README.read_text() else 1
    write_readme(block)
    print(block)
    return 0 if all(r.ok for r in table) else 1


if __name__ == "__main__":
    raise SystemExit(main())
