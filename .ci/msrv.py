#!/usr/bin/env python3
"""Honest MSRV: no crate of the workspace may declare a `rust-version` older than what a
dependency in its resolved tree (normal and build dependencies, every platform, from the
committed lockfile) declares it needs. Prints one line per crate; exits 1 on any lie."""
import json
import subprocess
import sys


def version(v):
    parts = [int(x) for x in v.split(".")] if v else []
    return tuple((parts + [0, 0, 0])[:3])


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    failed = False
    for member in sorted(meta["workspace_members"], key=lambda i: packages[i]["name"]):
        declared = packages[member].get("rust_version")
        seen, stack = set(), [member]
        while stack:
            for dep in nodes[stack.pop()]["deps"]:
                if all(k["kind"] == "dev" for k in dep["dep_kinds"]):
                    continue
                if dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    stack.append(dep["pkg"])
        needs = max(
            ((version(packages[p].get("rust_version")), packages[p]["name"]) for p in seen),
            default=((0, 0, 0), "-"),
        )
        shown = ".".join(map(str, needs[0]))
        ok = declared is not None and version(declared) >= needs[0]
        failed |= not ok
        print(
            f"{'ok ' if ok else 'BAD'} {packages[member]['name']:<22} declares {declared or 'nothing':<6}"
            f" needs {shown:<6} (for {needs[1]})"
        )
    if failed:
        print("MSRV: a crate declares an older Rust than its dependencies need", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
