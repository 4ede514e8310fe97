"""The documentation builds with warnings as errors, and the README stays short."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_readme_is_at_most_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"


def test_no_document_refers_outside_the_repository():
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "tinycl_hdl").rglob("*.py")]
    for path in texts:
        text = path.read_text()
        for outside in ("ARCHITECTURE.md", "TOOLCHAIN.md", "ARCHITECTURE 4", "../shared"):
            assert outside not in text, f"{path.relative_to(ROOT)} refers to {outside}"


def test_the_docs_build_without_warnings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
                             str(ROOT / "docs"), str(tmp_path / "html")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "html" / "api.html").exists()
