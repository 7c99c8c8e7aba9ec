#!/usr/bin/env python3
"""Golden-file tests: runs a Kotoba tool over every test file of a directory and compares
what it prints with the expected file beside it.

  golden.py --mode check --bin-dir BUILD DIR [--update] [--kinds-def FILE]

Each DIR/*.kotoba is a test (files starting with '_' are helpers for imports). The tool runs
in DIR with the file's relative path, so diagnostics name it as a user would see it. The
expected output is DIR/<name>.<mode> and holds stderr, then stdout, then a last line
`exit: N`. Files named fail-* must exit non-zero, all others must exit 0. A first line
`// kotobac: ARGS` replaces the command's arguments ({file} is the test file).
--update rewrites the expected files from what the tool prints now.
--kinds-def checks that every kind listed in diagnostic_kinds.def appears as [kind] in the
expected output of some fail-* test.
--opcodes-def checks that every opcode listed in opcodes.def appears in some disassembly,
except those in UNEMITTED_OPCODES.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

# Opcodes the code generator never emits, each with the reason it exists anyway.
UNEMITTED_OPCODES = {
    "NOP": "reserved as opcode 0 so that a zeroed instruction does nothing",
}

TOOLS = {"check": ("compiler/kotobac", ["check", "{file}"]),
         "dis": ("compiler/kotobac", ["dis", "{file}"])}


def run_one(tool, default_args, path, directory):
    name = os.path.basename(path)
    args = [a.replace("{file}", name) for a in default_args]
    with open(path, "rb") as handle:
        first = handle.readline().decode("utf-8", "replace").strip()
    match = re.match(r"^//\s*kotobac:\s*(.*)$", first)
    if match:
        args = [a.replace("{file}", name) for a in shlex.split(match.group(1))]
    result = subprocess.run([tool] + args, cwd=directory, capture_output=True, timeout=120)
    text = result.stderr.decode("utf-8", "replace") + result.stdout.decode("utf-8", "replace")
    return text + f"exit: {result.returncode}\n", result.returncode


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True, choices=sorted(TOOLS))
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--update", action="store_true")
    parser.add_argument("--kinds-def")
    parser.add_argument("--opcodes-def")
    parser.add_argument("directory")
    options = parser.parse_args()

    tool_path, default_args = TOOLS[options.mode]
    tool = os.path.abspath(os.path.join(options.bin_dir, tool_path))
    directory = os.path.abspath(options.directory)
    tests = sorted(f for f in os.listdir(directory)
                   if f.endswith(".kotoba") and not f.startswith("_"))
    failures = 0
    outputs = {}
    for test in tests:
        actual, code = run_one(tool, default_args, os.path.join(directory, test), directory)
        outputs[test] = actual
        expected_path = os.path.join(directory, test[: -len(".kotoba")] + "." + options.mode)
        problems = []
        if test.startswith("fail-") and code == 0:
            problems.append("a fail- test must exit non-zero")
        if not test.startswith("fail-") and code != 0:
            problems.append(f"exited {code}; only fail- tests may fail")
        if options.update:
            with open(expected_path, "w", encoding="utf-8") as handle:
                handle.write(actual)
        elif not os.path.exists(expected_path):
            problems.append(f"no expected file {os.path.basename(expected_path)} "
                            "(run with --update to create it)")
        else:
            with open(expected_path, encoding="utf-8") as handle:
                expected = handle.read()
            if expected != actual:
                problems.append("output differs from " + os.path.basename(expected_path) +
                                "\n--- expected\n" + expected + "--- actual\n" + actual)
        if problems:
            failures += 1
            print(f"FAIL {test}: " + "\n".join(problems))

    if options.kinds_def:
        with open(options.kinds_def, encoding="utf-8") as handle:
            kinds = re.findall(r'^DIAGNOSTIC\(\w+,\s*"([^"]+)"', handle.read(), re.M)
        exercised = set()
        for test, text in outputs.items():
            if test.startswith("fail-"):
                exercised.update(re.findall(r"\[([a-z0-9-]+)\]$", text, re.M))
        missing = [k for k in kinds if k not in exercised]
        if missing:
            failures += 1
            print("FAIL diagnostic coverage: no fail- test reports " + ", ".join(missing))

    if options.opcodes_def:
        with open(options.opcodes_def, encoding="utf-8") as handle:
            mnemonics = re.findall(r'^OPCODE\(\w+,\s*\d+,\s*"([A-Z]+)"', handle.read(), re.M)
        used = set()
        for text in outputs.values():
            used.update(re.findall(r"^\s+@\d+\s+([A-Z]+)", text, re.M))
        missing = [m for m in mnemonics if m not in used and m not in UNEMITTED_OPCODES]
        if not mnemonics:
            missing = ["(no OPCODE entries found in " + options.opcodes_def + ")"]
        if missing:
            failures += 1
            print("FAIL opcode coverage: no disassembly test uses " + ", ".join(missing))

    passed = len(tests) - failures
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
