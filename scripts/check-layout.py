#!/usr/bin/env python3
"""Checks the workspace's shape (issue: architecture): no import circle between the files
of a crate, and no non-test source file longer than the limit unless listed with a reason.

    python3 scripts/check-layout.py            # prints findings, exits 1 when any

A file's imports are the `crate::<module>` paths it names (in `use` lines and inline
paths), resolved to the module files of its crate; `#[cfg(test)]` sections are ignored.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["shared-logic", "io", "batch", "speed", "serving", "tools", "tests", "."]
LIMIT = 500
# Files allowed above the limit, with the reason (keep this list short).
LONG_OK = {}


def crate_modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] in ("lib", "main"):
                rel = rel[:-1]
            elif rel[-1] == "mod":
                rel = rel[:-1]
            mods[tuple(rel)] = path
    return mods


def non_test(text):
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]


def code(text):
    """The text without comments (doc links name modules without importing them)."""
    return "\n".join(re.sub(r"//.*", "", line) for line in text.split("\n"))


def imports(text, module, mods):
    """Module files that `text` (the file of `module`) refers to through `crate::`/`super::`."""
    out = set()
    body = code(non_test(text))
    # Expand `use crate::{a, b::c}` groups into paths.
    for m in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*)\{([^}]*)\}", body):
        prefix = [p for p in m.group(1).split("::") if p]
        for item in m.group(2).split(","):
            first = item.strip().split("::")[0].strip()
            if first and first != "self":
                out.add(resolve(prefix + [first], mods))
            elif first == "self" and prefix:
                out.add(resolve(prefix, mods))
    for m in re.finditer(r"crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", body):
        out.add(resolve(m.group(1).split("::"), mods))
    for m in re.finditer(r"super::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)", body):
        parent = list(module[:-1])
        out.add(resolve(parent + m.group(1).split("::"), mods))
    out.discard(None)
    out.discard(module)
    return out


def children(text, module, mods):
    """Submodules a module file declares (`mod x;`): it imports what they define."""
    out = set()
    for m in re.finditer(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod ([a-z_][a-z0-9_]*);", code(text)):
        child = tuple(module) + (m.group(1),)
        if child in mods and m.group(1) != "tests":
            out.add(child)
    return out


def resolve(parts, mods):
    for n in range(len(parts), 0, -1):
        if tuple(parts[:n]) in mods:
            return tuple(parts[:n])
    return None


def cycles(graph):
    found, index, low, stack, on, counter = [], {}, {}, [], set(), [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return found


def main():
    problems = []
    for crate in CRATES:
        src = os.path.join(ROOT, crate, "src")
        if not os.path.isdir(src):
            continue
        mods = crate_modules(src)
        graph = {}
        for module, path in mods.items():
            text = open(path, encoding="utf-8").read()
            if module and module[-1] == "tests":
                continue  # a test module reads its parent: test code, not a dependency
            graph[module] = imports(text, module, mods) | children(text, module, mods)
            lines = non_test(text).count("\n")
            rel = os.path.relpath(path, ROOT)
            if lines > LIMIT and rel not in LONG_OK:
                problems.append(f"{rel}: {lines} lines before its tests (limit {LIMIT})")
        for comp in cycles(graph):
            names = sorted(os.path.relpath(mods[m], ROOT) for m in comp)
            problems.append("import circle: " + " <-> ".join(names))
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("layout: no import circles; every source file within the limit")


if __name__ == "__main__":
    main()
