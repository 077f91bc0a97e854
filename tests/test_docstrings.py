"""Each public helper says which chapter introduces it, and that chapter is the first to use it.

The pointer is the docstring's "Introduced in chapter N" (or "(chapter N)"). A chapter *uses* a
helper when its code imports it from `course_utils` or reaches it through an imported
`course_utils` module (`models.get_device`); names are resolved to the objects they denote, so
two helpers that share a name (`pretraining.training_flops`, `tools.training_flops`) are told
apart. A helper that no chapter calls itself (an internal piece of a module) must point at a
chapter that uses its module, or at a chapter still to be written.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re

import pytest

import course_utils
from course_utils.experiments import ROOT

POINTER = re.compile(r"(?:[Ii]ntroduced in chapters? |\(chapter )(\d+)")
SKIP_MODULES = ("course_utils.solutions", "course_utils.__main__")


def _resolve(module_name: str, attr: str | None = None):
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return module if attr is None else getattr(module, attr, None)


def objects_used(source: str) -> tuple[set[int], set[str]]:
    """The course_utils objects a chapter's code uses (by id) and the modules they come from."""
    objects, modules = {}, {}  # local name -> object; local name -> module object
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils"):
            for alias in node.names:
                obj = _resolve(node.module, alias.name)
                if obj is None:
                    obj = _resolve(f"{node.module}.{alias.name}")
                if inspect.ismodule(obj):
                    modules[alias.asname or alias.name] = obj
                elif obj is not None:
                    objects[alias.asname or alias.name] = obj
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("course_utils"):
                    modules[alias.asname or alias.name] = _resolve(alias.name)
    used = list(objects.values())
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            if module is not None and hasattr(module, node.attr):
                used.append(getattr(module, node.attr))
    used_ids = {id(obj) for obj in used}
    module_names = {getattr(obj, "__module__", None) for obj in used if not inspect.ismodule(obj)}
    module_names |= {m.__name__ for m in modules.values() if m is not None}
    return used_ids, module_names


CHAPTERS = {
    int(path.name[:2]): objects_used(path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
}


def public_helpers():
    """(qualified name, object, docstring) of every public function and class."""
    for info in pkgutil.walk_packages(course_utils.__path__, "course_utils."):
        if info.name.startswith(SKIP_MODULES):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{info.name}.{name}", obj, inspect.getdoc(obj) or ""


HELPERS = [h for h in public_helpers() if POINTER.search(h[2])]


def test_there_are_pointers_to_check():
    assert len(HELPERS) > 40


@pytest.mark.parametrize("qualified, obj, doc", HELPERS, ids=[h[0] for h in HELPERS])
def test_pointer_names_the_first_chapter_that_uses_it(qualified, obj, doc):
    said = int(POINTER.search(doc).group(1))
    first = next((n for n, (ids, _) in CHAPTERS.items() if id(obj) in ids), None)
    if first is not None:
        assert said == first, f"{qualified} says chapter {said}; chapter {first} uses it first"
    elif said in CHAPTERS:
        assert obj.__module__ in CHAPTERS[said][1], (
            f"{qualified} says chapter {said}, which exists but uses neither it nor its module"
        )
