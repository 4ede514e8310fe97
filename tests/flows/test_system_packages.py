"""The system-package list covers what the builds and tests use.

``scripts/system-packages.txt`` is the one list of Debian packages that ``make`` and CI
install.  These tests derive what the builds actually use (the headers Verilator's runtime
includes, the programs the flows and tests run), map each file to the package that owns it
with ``dpkg -S``, and check that the package is listed or comes with a listed one.
"""

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tinycl_hdl.flows.sim import verilator_bin

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIST = ROOT / "scripts" / "system-packages.txt"

#: Programs run by name outside the virtual environment, and who runs them.
PROGRAMS = {
    "iverilog": "cocotb's Icarus runner compiles the Verilog",
    "vvp": "cocotb's Icarus runner simulates it",
    "make": "Verilator builds run the Makefile Verilator writes",
    "g++": "Verilator's Makefile compiles the model (CXX)",
    "cc": "tests/spec/test_regmap.py compiles the C header",
    "ccache": "the Verilator builds cache their runtime objects (OBJCACHE)",
    "sta": "tinycl asic runs OpenSTA on the mapped netlist",
    "gcc": "tests/driver compiles the C driver as C99 (tinycl_hdl.flows.driver_sim)",
    "nm": "tests/driver lists the driver object's undefined symbols",
    "verilator_coverage": "tinycl coverage annotates the Verilog with the coverage counts",
}

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None,
                                reason="the list names Debian packages; mapping files to them needs dpkg")


def listed():
    """``{package: (probe, why)}`` from the list."""
    out = {}
    for line in LIST.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            package, probe, why = line.split(None, 2)
            out[package] = (probe, why)
    return out


def installed_closure(packages):
    """The listed packages and every installed package they depend on (``Depends``, ``Pre-Depends``)."""
    seen, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        result = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}, ${Pre-Depends}", name],
                                capture_output=True, text=True)
        if result.returncode:
            continue                   # not installed (the suite then fails on its files)
        for alternative in result.stdout.split(","):
            for choice in alternative.split("|"):
                dep = re.sub(r"\(.*?\)|:\w+", "", choice).strip()
                if dep:
                    todo.append(dep)
    return seen


def owners(paths):
    """``{path: package}`` from ``dpkg -S``; files that no package owns are left out."""
    result = subprocess.run(["dpkg", "-S", *map(str, paths)], capture_output=True, text=True)
    found = {}
    for line in result.stdout.splitlines():
        package, _, path = line.partition(": ")
        found[path.strip()] = package.split(":")[0]
    return found


def runtime_headers():
    """Every header outside Verilator's own folder that its runtime sources include, as the
    compiler resolves them; a bare name is a header that is not installed."""
    include = verilator_bin().parent / "include"
    sources = [p for p in [*include.glob("*.cpp"), *include.glob("fstcpp/*.cpp")] if not p.name.endswith("_sc.cpp")]
    headers = set()
    for source in sources:
        result = subprocess.run(["g++", "-std=gnu++20", "-M", "-MG", f"-I{include}", f"-I{include / 'vltstd'}",
                                 "-DVM_TRACE_FST=1", str(source)], capture_output=True, text=True, check=True)
        for word in result.stdout.replace("\\\n", " ").split()[1:]:
            if not word.endswith(":") and not word.startswith(str(include)):
                headers.add(word)
    return headers


def test_every_entry_has_a_probe_and_a_reason():
    entries = listed()
    assert {"iverilog", "g++", "make", "liblz4-dev", "zlib1g-dev"} <= set(entries)
    for package, (probe, why) in entries.items():
        assert re.fullmatch(r"(cmd|file|python):\S+", probe), f"{package}: probe {probe!r}"
        assert len(why.split()) >= 3, f"{package}: say why it is needed"


def test_the_check_passes_here():
    """``make test`` ran the check first, so every probe holds on this machine."""
    result = subprocess.run([ROOT / "scripts" / "system-deps", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_headers_of_verilator_builds_are_listed():
    headers = runtime_headers()
    assert headers, "the compiler listed no headers"
    missing = sorted(h for h in headers if not h.startswith("/"))
    assert not missing, f"Verilator's runtime includes {missing}, which no installed package provides: " \
                        f"add the package that does to {LIST.name}"
    owned = owners(sorted(h for h in headers if h.startswith("/usr/")))
    closure = installed_closure(listed())
    outside = sorted({f"{package} ({path})" for path, package in owned.items() if package not in closure})
    assert not outside, f"Verilator builds use headers of packages missing from {LIST.name}: {outside}"


def test_programs_run_by_name_are_listed():
    venv_bin = pathlib.Path(sys.executable).parent
    paths = {}
    for program in PROGRAMS:
        found = shutil.which(program)
        assert found, f"{program} is not installed ({PROGRAMS[program]})"
        paths[program] = pathlib.Path(found).resolve()
    owned = owners(paths.values())
    closure = installed_closure(listed())
    for program, path in paths.items():
        if path.is_relative_to(venv_bin.parent):
            continue
        package = owned.get(str(path))
        assert package in closure, f"{program} ({path}, package {package}) is not in {LIST.name}"


def test_programs_named_in_the_code_are_known():
    """A new program run by name (``shutil.which("x")``, ``subprocess.run(["x", ...``) must join
    :data:`PROGRAMS` (and so the list), unless it comes from PyPI into the virtual environment."""
    pattern = re.compile(r"""(?:shutil\.which|subprocess\.(?:run|Popen|check_call|check_output))\(\[?\s*["']([\w.+-]+)["']""")
    venv_bin = pathlib.Path(sys.executable).parent
    named = set()
    for folder in ("tinycl_hdl", "tests", "scripts"):
        for source in (ROOT / folder).rglob("*.py"):
            if source == pathlib.Path(__file__).resolve():
                continue                   # the scanner's own dpkg calls
            named |= set(pattern.findall(source.read_text()))
    assert named, "the scan found no program at all"
    unknown = sorted(p for p in named if p not in PROGRAMS and not (venv_bin / p).exists()
                     and not (venv_bin / f"yowasp-{p}").exists())
    assert not unknown, f"programs run by name but not in PROGRAMS: {unknown}"
