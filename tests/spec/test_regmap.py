import json
import subprocess

import pytest

from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.spec.config import TinyCLConfig
from tinycl_hdl.spec.regmap import Command, RegisterMap

CONFIGS = dict(PRESETS, odd=TinyCLConfig(in_h=7, in_w=5, in_c=2, filters=4, classes=4, slots=8, n_pu=2))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_overlaps_and_word_aligned(name):
    rm = RegisterMap(CONFIGS[name])
    spans = [(r.offset, r.offset + 4, r.name) for r in rm.registers]
    spans += [(w.base, w.base + rm.window_size(w), w.name) for w in rm.windows]
    spans.sort()
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        assert a1 <= b0, f"{an} overlaps {bn}"
    assert all(start % 4 == 0 for start, _, _ in spans)
    assert spans[-1][1] <= 1 << rm.address_width
    for w in rm.windows:
        assert w.base % rm.window_size(w) == 0, f"{w.name} base is not aligned to its size"


def test_window_addresses_encode_fields():
    cfg = CONFIGS["odd"]
    rm = RegisterMap(cfg)
    # x: 3 positions -> 2 bits, y: 5 -> 3 bits, f: 4 -> 2 bits, o: 4 -> 2 bits
    assert rm.dense_w.address(o=1, f=2, y=3, x=1) == rm.dense_w.base + 4 * (1 | 3 << 2 | 2 << 5 | 1 << 7)
    with pytest.raises(ValueError, match="field y"):
        rm.dense_w.address(o=0, f=0, y=5, x=0)


def test_c_header_compiles_and_agrees(tmp_path):
    cfg = PRESETS["digits"]
    rm = RegisterMap(cfg)
    (tmp_path / "tinycl_regs.h").write_text(rm.to_c_header())
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "tinycl_regs.h"\n'
        'int main(void) { printf("%u %u %u %d\\n", TINYCL_COMMAND, TINYCL_LOGIT3, TINYCL_DENSE_W_BASE, '
        'TINYCL_CMD_INFER); return 0; }\n')
    subprocess.run(["cc", "-Wall", "-Werror", "-o", str(tmp_path / "main"), str(tmp_path / "main.c")], check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [rm.by_name["COMMAND"].offset, rm.by_name["LOGIT3"].offset, rm.dense_w.base,
                                     int(Command.INFER)]


def test_json_and_markdown_list_every_register():
    rm = RegisterMap(PRESETS["digits"])
    data = json.loads(rm.to_json())
    assert [r["name"] for r in data["registers"]] == [r.name for r in rm.registers]
    md = rm.to_markdown()
    assert all(f"| {r.name} |" in md for r in rm.registers)
    assert "| 0x010000 | 0x8000 | DENSE_W | ro |" in md
