#!/usr/bin/env python3
"""Lists import cycles between the modules of src/ (each file is a module; a folder's
mod.rs is the folder's module). A reference is any `crate::a::b` or `super::x` path in
code (comments and tests excluded). Exit 1 when a cycle exists."""
import os, re, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs') or f in ('main.rs',):
            continue
        rel = os.path.relpath(os.path.join(dp, f), root)[:-3].split(os.sep)
        if rel[-1] in ('mod', 'lib'):
            rel = rel[:-1]
        mods['::'.join(rel)] = os.path.join(dp, f)

def resolve(path):
    parts = path.split('::')
    for n in range(len(parts), -1, -1):
        cand = '::'.join(parts[:n])
        if cand in mods:
            return cand
    return None

edges = {m: set() for m in mods}
for m, f in mods.items():
    text = open(f).read()
    text = re.split(r'#\[cfg\(test\)\]', text)[0]
    text = re.sub(r'//[^\n]*', '', text)
    base = m.split('::') if m else []
    is_dir = f.endswith('mod.rs') or f.endswith('lib.rs')
    for g in re.findall(r'\b(crate|super)((?:::\w+)+)', text):
        kind, rest = g
        parts = rest.strip(':').split('::')
        if kind == 'crate':
            full = parts
        else:
            # `super::x` names a sibling of this module, file or folder alike
            full = base[:-1] + parts
        target = resolve('::'.join(full))
        if target is not None and target != m and not m.startswith(target + '::') and target != '':
            edges[m].add(target)
    # a folder module's `pub mod x; pub use x::...` is structure, not a dependency
    if is_dir:
        edges[m] = {t for t in edges[m] if not t.startswith(m + '::') if m} if m else set()

# Tarjan SCC
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in edges:
    if v not in index:
        strong(v)
for c in sccs:
    print('cycle:', ' <-> '.join(c))
    for a in c:
        print('   ', a, '->', ', '.join(sorted(t for t in edges[a] if t in c)))
sys.exit(1 if sccs else 0)
