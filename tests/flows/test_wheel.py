"""The wheel, installed (not editable) into a fresh virtual environment, runs from any folder.

It builds the wheel from this checkout, installs it with its ``sim`` extra, and from an
empty temporary folder runs ``tinycl generate`` and ``tinycl verify`` on Icarus (cocotb)
and on the native Verilator backend.  The
testbenches and the lint waivers come from the installed package, the simulation build
goes to the user cache folder, and nothing is written next to the package.
"""

import os
import pathlib
import subprocess
import sys
import venv

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_installed_wheel_verifies_from_a_temporary_folder(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT])
    wheel, = dist.glob("tinycl_hdl-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", f"{wheel}[sim]"])
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TINYCL_", "PYTHON", "VIRTUAL"))}
    env.update(XDG_CACHE_HOME=str(cache), PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    tinycl = env_dir / "bin" / "tinycl"
    site = pathlib.Path(run([python, "-c", "import tinycl_hdl, os; print(os.path.dirname(tinycl_hdl.__file__))"],
                            cwd=work, env=env).strip())
    assert site.is_relative_to(env_dir), f"imported {site}, not the installed package"
    before = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)

    run([tinycl, "generate", "--preset", "digits", "-o", "rtl", "--lint"], cwd=work, env=env)
    assert (work / "rtl" / "tinycl.v").exists()
    out = run([tinycl, "verify", "--preset", "digits", "--set", "slots=6", "--set", "classes=3",
               "--set", "filters=2", "--sim", "icarus", "--samples", "5"], cwd=work, env=env)
    assert "equals the golden model" in out, out
    out = run([tinycl, "verify", "--preset", "digits", "--set", "slots=6", "--set", "classes=3",
               "--set", "filters=2", "--samples", "5"], cwd=work, env=env)
    assert "equals the golden model" in out and "cycles/s" in out, out

    assert list((cache / "tinycl-hdl" / "tinycl").glob("*-icarus")), "the build is not in the user cache"
    assert list((cache / "tinycl-hdl" / "native").glob("*/obj/tinycl_native")), "no native build in the cache"
    after = sorted(p.relative_to(site) for p in site.rglob("*") if "__pycache__" not in p.parts)
    assert after == before, f"files appeared in the installed package: {set(after) - set(before)}"
    assert sorted(p.name for p in work.iterdir()) == ["rtl"]
