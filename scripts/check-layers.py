#!/usr/bin/env python3
"""Checks that src/ is layered: each top-level module imports only the layers below it, and
no two modules import each other, directly or round a loop, at the top level or inside a
layer's folder. Reads `crate::` paths as text (comments and strings stripped); run by
scripts/test.sh. Exit status 1 lists every offending import with file and line."""

import os
import re
import sys

# Lowest first. A module may import any module listed before it, never one after it.
LAYERS = ["sync", "thread_role", "data", "dsp", "realtime", "virtual_device", "control", "player", "ffi", "lib"]

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def strip(text):
    """Comments, strings and `#[cfg(test)]` modules removed: the shipped code's imports."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        # Keep the line count, so reported lines stay right.
        text = text[: m.start()] + "\n" * text.count("\n", m.start(), i) + text[i:]


def module_of(path):
    """(top-level module, module within its folder or None)."""
    parts = os.path.relpath(path, ROOT).split(os.sep)
    if parts[0] == "bin":
        return None
    if len(parts) == 1:
        return parts[0][:-3], None
    inner = parts[1][:-3]
    return parts[0], (None if inner == "mod" else inner)


def imports(text):
    """Every `crate::a::b` path, with `use crate::a::{b, c::d}` groups expanded to a::b, a::c."""
    found = []
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)(?:::(\{[^;]*?\}|[a-z_][a-z0-9_]*))?", text):
        top, rest = m.group(1), m.group(2)
        line = text.count("\n", 0, m.start()) + 1
        if rest and rest.startswith("{"):
            for part in re.split(r"[,\s]+", rest.strip("{}")):
                name = part.split("::")[0].strip()
                if re.fullmatch(r"[a-z_][a-z0-9_]*", name) and name != "self":
                    found.append((top, name, line))
            found.append((top, None, line))
        else:
            found.append((top, rest, line))
    return found


def cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
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
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    errors = []
    top_edges, inner_edges, where = {}, {}, {}
    for dirpath, _, files in os.walk(ROOT):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            mod = module_of(path)
            if mod is None:
                continue
            top, inner = mod
            rel = os.path.relpath(path, os.path.join(ROOT, ".."))
            for target, sub, line in imports(strip(open(path).read())):
                if target not in LAYERS:
                    errors.append(f"{rel}:{line}: crate::{target} is in no layer of LAYERS")
                    continue
                if target != top:
                    top_edges.setdefault(top, set()).add(target)
                    where.setdefault((top, target), f"{rel}:{line}")
                    if top != "lib" and LAYERS.index(target) > LAYERS.index(top):
                        errors.append(f"{rel}:{line}: {top} imports crate::{target}, a layer above it")
                elif inner and sub and sub != inner:
                    inner_edges.setdefault(top, {}).setdefault(inner, set()).add(sub)
                    where.setdefault((f"{top}::{inner}", f"{top}::{sub}"), f"{rel}:{line}")
    for comp in cycles(top_edges):
        errors.append("import cycle among top-level modules: " + " <-> ".join(comp))
    for top, edges in sorted(inner_edges.items()):
        for comp in cycles(edges):
            links = [
                f"{a} -> {b} ({where[(f'{top}::{a}', f'{top}::{b}')]})"
                for a in comp
                for b in sorted(edges.get(a, ()))
                if b in comp
            ]
            errors.append(f"import cycle inside {top}/: " + "; ".join(links))
    for e in errors:
        print(e)
    if errors:
        sys.exit(1)
    print(f"layers ok: {len(LAYERS)} layers, no import cycle")


if __name__ == "__main__":
    main()
