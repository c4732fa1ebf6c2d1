#!/usr/bin/env python3
"""generate.py - writes the diffs in this directory from testdata/program
(and lib_*.diff from testdata/libs).

Each diff is what `diff -ruN a b` prints for a copy of the program (a) and a
copy with one fix made (b), as upstream would send it: paths a/FILE and
b/FILE, so that `patch -p1` applies it inside the program's directory.  The
fixes are the edits in FIXES below; rerun this after changing the program:

    python3 testdata/diffs/generate.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(os.path.dirname(HERE), "program")
LIBS = os.path.join(os.path.dirname(HERE), "libs")

# name -> [(file, old text, new text)]: each old text must occur exactly once.
# Fixes of the library testdata/libs (libdemo.so), whose name starts with lib_.
LIB_FIXES = {
    # demo_value() adds 8, still counting its calls in the library's own
    # demo_calls.
    "lib_fix": [
        ("demo.c",
         "\treturn value + 7;\n",
         "\treturn value + 8;\n"),
    ],
}

FIXES = {
    # slot_hits() checks the index against the slots in use, not only against
    # the table: a free slot is no slot (-1).  Reads the file-local table.
    "bounds_check": [
        ("slots.c",
         "/* The hits of slot `index`, or -1 if there is no such slot in use.\n"
         " * Bug: it checks the index against the table, not against the slots in\n"
         " * use, and reports a free slot's 0 (bounds_check.diff). */\n"
         "long slot_hits(int index)\n"
         "{\n"
         "\tif (!check(index))\n"
         "\t\treturn -1;\n",
         "/* The hits of slot `index`, or -1 if there is no such slot in use. */\n"
         "long slot_hits(int index)\n"
         "{\n"
         "\tif (!check(index) || index >= used)\n"
         "\t\treturn -1;\n"),
    ],
    # handle_request() rejects a request larger than REQUEST_MAX through the
    # file-local reject(), which counts it.
    "call_helper": [
        ("requests.c",
         "/* The bytes accepted, or -1 for a rejected request.  Bug: a request larger\n"
         " * than REQUEST_MAX is accepted (call_helper.diff). */\n"
         "int handle_request(int size)\n"
         "{\n"
         "\tif (size < 0)\n"
         "\t\treturn reject(size, REASON_NEGATIVE);\n",
         "/* The bytes accepted, or -1 for a rejected request. */\n"
         "int handle_request(int size)\n"
         "{\n"
         "\tif (size < 0)\n"
         "\t\treturn reject(size, REASON_NEGATIVE);\n"
         "\tif (size > REQUEST_MAX)\n"
         "\t\treturn reject(size, REASON_TOO_LARGE);\n"),
    ],
    # clamp_level(), inlined into its callers, clamps negative values to 0.
    "inline_fix": [
        ("levels.c",
         "/* A level within 0..100.  Bug: a negative value stays negative\n"
         " * (inline_fix.diff). */\n"
         "static inline int clamp_level(int value)\n"
         "{\n"
         "\treturn value > 100 ? 100 : value;\n",
         "/* A level within 0..100. */\n"
         "static inline int clamp_level(int value)\n"
         "{\n"
         "\tif (value < 0)\n"
         "\t\treturn 0;\n"
         "\treturn value > 100 ? 100 : value;\n"),
    ],
    # check() of requests.c (slots.c has its own check()) refuses a request
    # smaller than its header.
    "same_name": [
        ("requests.c",
         "/* 1 if `size` bytes can hold a request.  Bug: a request smaller than its\n"
         " * header passes (same_name.diff). */\n"
         "static __attribute__((noinline)) int check(int size)\n"
         "{\n"
         "\tchecks++;\n"
         "\treturn size > 0;\n",
         "/* 1 if `size` bytes can hold a request. */\n"
         "static __attribute__((noinline)) int check(int size)\n"
         "{\n"
         "\tchecks++;\n"
         "\treturn size >= REQUEST_HEADER;\n"),
    ],
    # Accepted sizes are rounded up to whole 8-byte words by a new file-local
    # function.
    "new_function": [
        ("requests.c",
         "/* The bytes accepted, or -1 for a rejected request.  Bug: a request larger\n"
         " * than REQUEST_MAX is accepted (call_helper.diff). */\n"
         "int handle_request(int size)\n",
         "/* `size` rounded up to whole 8-byte words. */\n"
         "static __attribute__((noinline)) int round_size(int size)\n"
         "{\n"
         "\treturn (size + 7) / 8 * 8;\n"
         "}\n"
         "\n"
         "/* The bytes accepted, or -1 for a rejected request.  Bug: a request larger\n"
         " * than REQUEST_MAX is accepted (call_helper.diff). */\n"
         "int handle_request(int size)\n"),
        ("requests.c",
         "\t\treturn reject(size, REASON_EMPTY);\n"
         "\treturn size;\n",
         "\t\treturn reject(size, REASON_EMPTY);\n"
         "\treturn round_size(size);\n"),
    ],
    # A change of a header: every file is compiled and compared, and only
    # request_capacity() (requests.c), which uses REQUEST_MAX, changes.
    "header_change": [
        ("service.h",
         "#define REQUEST_MAX 4096\n",
         "#define REQUEST_MAX 8192\n"),
    ],
    # bounds_check and same_name in one diff: two files, each with a
    # function named check().
    "two_files": [
        ("slots.c",
         "\tif (!check(index))\n"
         "\t\treturn -1;\n",
         "\tif (!check(index) || index >= used)\n"
         "\t\treturn -1;\n"),
        ("requests.c",
         "\treturn size > 0;\n",
         "\treturn size >= REQUEST_HEADER;\n"),
    ],
    # remember() counts the header too.  Only remember() compiles to other
    # code; audit_request(), which calls it, was compiled knowing which
    # registers remember() leaves alone (-fipa-ra) and must still work.
    "register_use": [
        ("audit.c",
         "/* Records `size`; the size recorded before it (0 the first time).  Bug: the\n"
         " * size without its header (register_use.diff). */\n",
         "/* Records `size`; the size recorded before it, with its header. */\n"),
        ("audit.c",
         "\treturn previous;\n",
         "\treturn previous + REQUEST_HEADER;\n"),
    ],
    # A fix that does not compile: `used_slots` is declared nowhere.
    "compile_error": [
        ("slots.c",
         "\tif (!check(index))\n"
         "\t\treturn -1;\n",
         "\tif (!check(index) || index >= used_slots)\n"
         "\t\treturn -1;\n"),
    ],
    # Refused: a constructor changes; it ran when the service started.
    "constructor": [
        ("slots.c",
         "\tif (wanted && atoi(wanted) > 0 && atoi(wanted) < used)\n",
         "\tif (wanted && atoi(wanted) > 0 && atoi(wanted) <= SLOTS)\n"),
    ],
    # Refused: a new writable global variable; like a new static local, its
    # storage would be the patch's, not the service's.
    "new_variable": [
        ("requests.c",
         "static long checks;\n",
         "static long checks;\n"
         "long requests_seen;\n"),
        ("requests.c",
         "\tif (size < 0)\n"
         "\t\treturn reject(size, REASON_NEGATIVE);\n",
         "\trequests_seen++;\n"
         "\tif (size < 0)\n"
         "\t\treturn reject(size, REASON_NEGATIVE);\n"),
    ],
    # Refused: a field added to the slots' structure; the table in the
    # running service has the old layout.
    "struct_layout": [
        ("slots.c",
         "\tint key;\n"
         "\tlong hits;\n",
         "\tint key;\n"
         "\tint disabled;\n"
         "\tlong hits;\n"),
        ("slots.c",
         "\tif (!check(index))\n"
         "\t\treturn -1;\n",
         "\tif (!check(index) || slots[index].disabled)\n"
         "\t\treturn -1;\n"),
    ],
    # Refused: the initial value of a global table changes; the running
    # service keeps its own table, so the fix could not take effect.
    "data_change": [
        ("levels.c",
         "int level_weights[4] = { 1, 2, 4, 8 };\n",
         "int level_weights[4] = { 1, 2, 4, 16 };\n"),
    ],
    # Refused: a new static local variable with state; a patch would get
    # its own copy, starting from 0, not part of the running service.
    "static_local": [
        ("levels.c",
         "int queue_level(int depth)\n"
         "{\n"
         "\treturn clamp_level(depth * 10);\n",
         "int queue_level(int depth)\n"
         "{\n"
         "\tstatic int deepest_queue;\n"
         "\n"
         "\tif (depth > deepest_queue)\n"
         "\t\tdeepest_queue = depth;\n"
         "\treturn clamp_level(deepest_queue * 10);\n"),
    ],
}


def make(name, edits, scratch, tree=PROGRAM):
    a = os.path.join(scratch, name, "a")
    b = os.path.join(scratch, name, "b")
    shutil.copytree(tree, a)
    shutil.copytree(tree, b)
    for file, old, new in edits:
        path = os.path.join(b, file)
        with open(path) as f:
            text = f.read()
        if text.count(old) != 1:
            sys.exit(f"{name}: the text to replace occurs {text.count(old)} times in {file}")
        with open(path, "w") as f:
            f.write(text.replace(old, new))
    result = subprocess.run(["diff", "-ruN", "a", "b"], cwd=os.path.join(scratch, name),
                            capture_output=True, text=True)
    if result.returncode != 1:
        sys.exit(f"{name}: diff exited {result.returncode}: {result.stderr}")
    # Header lines without diff's timestamps, so that the files do not change
    # when nothing else does.
    text = re.sub(r"^((?:---|\+\+\+) \S+)\t.*$", r"\1", result.stdout, flags=re.M)
    with open(os.path.join(HERE, name + ".diff"), "w") as f:
        f.write(text)


def main():
    with tempfile.TemporaryDirectory() as scratch:
        for name, edits in FIXES.items():
            make(name, edits, scratch)
        for name, edits in LIB_FIXES.items():
            make(name, edits, scratch, LIBS)


if __name__ == "__main__":
    main()
