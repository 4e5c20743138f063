#!/usr/bin/env python3
"""Checks that every requirement ID the code cites is defined in docs/REQUIREMENTS.md.

Scans the comments of every .rs file under src/ (recursively), build.rs and the headers in
include/ for requirement IDs: one capital letter and one or two digits (SPEC.md's scheme:
L1, R3, C2, D4, S3, V1, M2, P1, A5, U4 ...), and ranges of them ("L1-L3" cites L1, L2 and
L3). In string literals only an explicit "SPEC X1, Y2" citation counts (a log line that
names its requirement). Code is never scanned: `u8`, `i16`, `x86_64`, `0xA5` and the like
cannot match, and a name after `::` (`SampleFormat::F32`) is code, not a citation.

IDs are taken from the first column of the tables in docs/REQUIREMENTS.md. A token in a
comment that looks like an ID but has a prefix the document does not use (a typo, or an ID
scheme from somewhere else) is reported too, so nothing hides; names that only look like
IDs (sample formats such as F32, S16, U24) are listed in NOT_IDS and skipped unless the
document defines them.

Exit status: 0 when every ID cited in src/, build.rs and include/ is defined, 1 when some
are not (each listed with file:line), 2 when the document is missing or defines nothing.
Warnings, which never fail the run: IDs cited in the comments of tests/ and benches/ but
not defined; IDs defined but cited nowhere in src/ (tests/ and benches/ are named when they
are the only place); `issue N` references in src/ missing from the document's issue table;
references in the document that no longer resolve (`tests/<file>.rs::<fn>`,
`<module>::tests::<fn>`, and backticked Rust paths such as `render::RenderCore::render` or
`ap_write`, looked up by name so they survive files moving between folders).

Usage: scripts/check-requirements.py [--root DIR] [--doc PATH] [-q]
  -q prints errors only. Python 3 standard library only; runs in about 0.1 s of CPU.
"""

import argparse
import re
import sys
from pathlib import Path

# Look like requirement IDs but are not: sample-format names (cpal's SampleFormat, the
# library's InputFormat / AP_FORMAT_*) that comments mention.
NOT_IDS = {
    "I8", "I16", "I24", "I32", "I64",
    "U8", "U16", "U24", "U32", "U64",
    "F32", "F64",
    "S8", "S16", "S24", "S32",
}

ID = r"[A-Z][0-9]{1,2}"
# An ID, or a range of IDs with the same prefix ("R1-R3", "D2–D4").
TOKEN = re.compile(rf"(?<![\w:.])({ID})(?:\s*[-\u2013]\s*({ID}))?(?![\w])")
# In string literals: "SPEC S3, U2", "SPEC C2/A5", "SPEC L1-L3 and R1".
ONE = rf"{ID}(?:\s*[-\u2013]\s*{ID})?"
SPEC_CITE = re.compile(rf"\bSPEC\s+({ONE}(?:\s*(?:,|/|and)\s*{ONE})*)")
ISSUE = re.compile(r"\b[Ii]ssues?\s+#?([0-9]+)\b")


# Where a comment, string or char literal may start (the lexer jumps from one to the next).
RUST_START = re.compile(r"//|/\*|\bb?r#*\"|\"|'")
C_START = re.compile(r"//|/\*|\"|'")
BLOCK_EDGE = re.compile(r"/\*|\*/")
STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
CHAR_LIT = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.)|[^\\'\n])'")


def comments_and_strings(text, rust):
    """Yields (kind, line, text) for every line of every comment ("c") and string literal
    ("s") in C or Rust source. Handles nested block comments, raw and byte strings, char
    literals and lifetimes (Rust)."""
    start_re = RUST_START if rust else C_START
    n, pos, line, last = len(text), 0, 1, 0
    while (m := start_re.search(text, pos)):
        i, tok = m.start(), m.group()
        line += text.count("\n", last, i)
        last = i
        if tok == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
            yield "c", line, text[i + 2:j]
            pos = j
        elif tok == "/*":
            depth, j = 1, n
            for e in BLOCK_EDGE.finditer(text, i + 2):
                if e.group() == "*/":
                    depth -= 1
                elif rust:
                    depth += 1
                if depth == 0:
                    j = e.start()
                    break
            yield from _split_lines("c", line, text[i + 2:j])
            pos = j + 2
        elif tok == "'":
            c = CHAR_LIT.match(text, i)
            pos = c.end() if c else i + 1  # not a char literal: a lifetime or label
        elif tok == '"':
            e = STRING_REST.match(text, i + 1)
            j = e.end() - 1 if e else n
            yield from _split_lines("s", line, text[i + 1:j])
            pos = j + 1
        else:  # r"..", r#".."#, br".."
            close = '"' + tok[tok.index("r") + 1:-1]
            j = text.find(close, m.end())
            j = n if j < 0 else j
            yield from _split_lines("s", line, text[m.end():j])
            pos = j + len(close)


def _split_lines(kind, start, body):
    for k, part in enumerate(body.split("\n")):
        yield kind, start + k, part


def expand(a, b):
    """IDs cited by a token: one ID, or every ID of a same-prefix range a..b."""
    if b and a[0] == b[0] and int(a[1:]) < int(b[1:]) <= int(a[1:]) + 20:
        return [f"{a[0]}{k}" for k in range(int(a[1:]), int(b[1:]) + 1)]
    return [a] + ([b] if b else [])


def cited_ids(kind, text, defined):
    """IDs cited in one line of a comment or string."""
    if kind == "s":
        spans = [m.group(1) for m in SPEC_CITE.finditer(text)]
    else:
        spans = [text]
    out = []
    for span in spans:
        for m in TOKEN.finditer(span):
            for ident in expand(m.group(1), m.group(2)):
                if ident in NOT_IDS and ident not in defined:
                    continue
                out.append(ident)
    return out


def scan_files(root):
    """(group, path): "code" is what the check enforces (src/, build.rs, include/); "tests"
    (tests/, benches/) only warns, and counts as a citation for the unused-ID warning."""
    files = [("code", p) for p in sorted((root / "src").rglob("*.rs"))]
    files += [("code", p) for p in [root / "build.rs"] if p.is_file()]
    inc = root / "include"
    if inc.is_dir():
        files += [("code", p) for p in sorted(inc.iterdir()) if p.suffix in (".h", ".hpp")]
    for d in ("tests", "benches"):
        if (root / d).is_dir():
            files += [("tests", p) for p in sorted((root / d).rglob("*.rs"))]
    return files


def parse_doc(doc):
    """Requirement IDs and issue numbers defined by the first cells of the doc's tables."""
    ids, issues = {}, set()
    row = re.compile(r"^\|\s*\**\s*([A-Z][0-9]{1,2})\s*\**\s*\|")
    issue_row = re.compile(r"^\|\s*\**\s*[Ii]ssue\s+#?([0-9]+)\s*\**\s*\|")
    for k, text in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        if m := row.match(text):
            ids.setdefault(m.group(1), k)
        elif m := issue_row.match(text):
            issues.add(int(m.group(1)))
    return ids, issues


def defined_names(root, src):
    """Names the Rust code defines: modules (file and folder names), items, fields and
    enum variants. Good enough to catch a misspelt or removed name in the doc."""
    names = set()
    item = re.compile(r"\b(?:fn|struct|enum|const|static|type|mod|trait|union)\s+(\w+)")
    # Fields (`pub name: T`) and enum variants (`Name,` `Name { .. }` `Name = 3`).
    member = re.compile(
        r"^\s*(?:pub(?:\([\w:]+\))?\s+)?([A-Za-z_]\w*)\s*(?::[^:]|[,({]|=\s*\d|$)", re.M)
    for p, text in src.items():
        names.add(p.stem)
        names.update(d.name for d in p.relative_to(root / "src").parents if d.name)
        names.update(item.findall(text))
        names.update(member.findall(text))
    names.add("tests")
    return names


def stale_doc_refs(root, doc, src):
    """References in the doc that no longer resolve: `tests/<file>.rs::<fn>` whose test
    function is gone, `<module>::tests::<fn>` unit tests, and backticked Rust paths or
    `ap_*` names that name nothing in src/."""
    stale, cache = [], {}
    test_ref = re.compile(r"tests/([\w/]+\.rs)::(\w+)")
    unit_ref = re.compile(r"(?<![/\w])(\w+)::tests::(\w+)")
    code_span = re.compile(r"`([^`]+)`")
    path_ref = re.compile(r"^(?:[A-Za-z_]\w*::)+[A-Za-z_]\w*|^ap_\w+")
    names = defined_names(root, src)
    for k, text in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        for m in test_ref.finditer(text):
            path = root / "tests" / m.group(1)
            if path not in cache:
                cache[path] = path.read_text(encoding="utf-8") if path.is_file() else None
            body = cache[path]
            if body is None or not re.search(rf"\bfn\s+{m.group(2)}\b", body):
                stale.append((k, f"tests/{m.group(1)}::{m.group(2)}"))
        for m in unit_ref.finditer(text):
            mod, fn = m.groups()
            hits = [t for p, t in src.items()
                    if p.stem == mod or (p.stem == "mod" and p.parent.name == mod)]
            if not any(re.search(rf"\bfn\s+{fn}\b", t) for t in hits):
                stale.append((k, f"{mod}::tests::{fn}"))
        if not text.startswith("|"):
            continue
        for span in code_span.findall(text):
            m = path_ref.match(span.strip())
            if not m or "tests/" in span or "::tests::" in span:
                continue
            missing = [seg for seg in m.group(0).split("::") if seg not in names]
            if missing:
                stale.append((k, f"`{m.group(0)}` ({', '.join(missing)} not found in src/)"))
    return stale


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="repository root (default: this script's repository)")
    ap.add_argument("--doc", type=Path, help="default: ROOT/docs/REQUIREMENTS.md")
    ap.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    args = ap.parse_args()
    root = args.root.resolve()
    doc = args.doc or root / "docs" / "REQUIREMENTS.md"
    if not doc.is_file():
        print(f"check-requirements: {doc} not found", file=sys.stderr)
        return 2
    defined, issues_defined = parse_doc(doc)
    if not defined:
        print(f"check-requirements: {doc} defines no requirement IDs", file=sys.stderr)
        return 2
    prefixes = {i[0] for i in defined}
    doc_rel = doc.resolve()
    doc_rel = doc_rel.relative_to(root).as_posix() if doc_rel.is_relative_to(root) else str(doc)

    cites = {"code": {}, "tests": {}}  # group -> id -> [(file, line)]
    issue_cites = {}
    src = {}  # src/ texts, reused for the doc's references
    for group, path in scan_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".rs" and path.is_relative_to(root / "src"):
            src[path] = text
        rel = path.relative_to(root).as_posix()
        for kind, line, part in comments_and_strings(text, path.suffix == ".rs"):
            for ident in cited_ids(kind, part, defined):
                cites[group].setdefault(ident, []).append((rel, line))
            if kind == "c" and group == "code":
                for m in ISSUE.finditer(part):
                    issue_cites.setdefault(int(m.group(1)), []).append((rel, line))

    def order(i):
        return (i[0], int(i[1:]))

    def why(ident):
        if ident[0] in prefixes:
            return f"not defined in {doc.name}"
        return (f"prefix {ident[0]} is used by no requirement in {doc.name} (define it there, "
                "or add the name to NOT_IDS in this script if it is not a requirement)")

    code, tests = cites["code"], cites["tests"]
    undefined = sorted((i for i in code if i not in defined), key=order)
    for ident in undefined:
        for rel, line in code[ident]:
            print(f"{rel}:{line}: error: requirement {ident} is cited but {why(ident)}",
                  file=sys.stderr)

    warnings = []
    for ident in sorted((i for i in tests if i not in defined), key=order):
        for rel, line in tests[ident]:
            warnings.append(f"{rel}:{line}: warning: requirement {ident} is cited but {why(ident)}")
    for ident in sorted(defined, key=order):
        if ident not in code:
            where = "cited only in tests/ or benches/" if ident in tests else "cited nowhere"
            warnings.append(f"{doc_rel}:{defined[ident]}: warning: {ident} is defined but {where}"
                            " (not in src/, build.rs or include/)")
    for num in sorted(issue_cites):
        if num not in issues_defined:
            rel, line = issue_cites[num][0]
            warnings.append(f"{rel}:{line}: warning: issue {num} is cited "
                            f"({len(issue_cites[num])}x) but not in the doc's issue table")
    for k, ref in stale_doc_refs(root, doc, src):
        warnings.append(f"{doc_rel}:{k}: warning: {ref} does not exist")
    if not args.quiet:
        for w in warnings:
            print(w, file=sys.stderr)
    n_code = sum(len(v) for v in code.values())
    if undefined:
        print(f"check-requirements: FAIL: {len(undefined)} cited ID(s) undefined "
              f"({sum(len(code[i]) for i in undefined)} citation(s)): "
              f"{', '.join(undefined)}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"check-requirements: ok: {len(code)} distinct IDs cited {n_code} times in src/, "
              f"build.rs and include/, all defined; {len(defined)} defined in {doc.name}; "
              f"{len(warnings)} warning(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
