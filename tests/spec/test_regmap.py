import json
import subprocess

import pytest

from tinycl_hdl.flows.peakrdl import compile_rdl, export_register_map
from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.spec.config import TinyCLConfig
from tinycl_hdl.spec.regmap import Command, RegisterMap
from tinycl_hdl.spec.systemrdl import to_systemrdl

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


def test_c_headers_compile_and_agree(tmp_path):
    cfg = PRESETS["digits"]
    rm = RegisterMap(cfg)
    export_register_map(rm, tmp_path)
    (tmp_path / "main.c").write_text(
        '#include <stddef.h>\n#include <stdio.h>\n#include "tinycl_regs.h"\n#include "tinycl_map.h"\n'
        'int main(void) { printf("%zu %zu %zu %zu %u %u %u\\n", offsetof(tinycl_t, COMMAND), offsetof(tinycl_t, LOGIT3), '
        'offsetof(tinycl_t, DENSE_W), offsetof(tinycl_t, STAGING), TINYCL_DENSE_W_BASE, TINYCL_CMD_INFER, '
        '(unsigned) TINYCL__STATUS__COMMAND_bp); return 0; }\n')
    subprocess.run(["cc", "-std=gnu99", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "main"),
                    str(tmp_path / "main.c")], check=True)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == [rm.by_name["COMMAND"].offset, rm.by_name["LOGIT3"].offset, rm.dense_w.base,
                                     rm.staging.base, rm.dense_w.base, int(Command.INFER), 4]


@pytest.mark.parametrize("preset", sorted(CONFIGS))
def test_systemrdl_holds_every_register_field_and_window(tmp_path, preset):
    """systemrdl-compiler reads tinycl.rdl back: every register and window of regmap.json is
    there at its address, with its width, its software access and its index fields."""
    rm = RegisterMap(CONFIGS[preset])
    data = json.loads(rm.to_json())
    (tmp_path / "tinycl.rdl").write_text(to_systemrdl(rm))
    top = compile_rdl(tmp_path / "tinycl.rdl").top
    nodes = {node.inst_name: node for node in top.children()}
    names = [r["name"] for r in data["registers"]] + [w["name"] for w in data["windows"]]
    assert len(nodes) == len(list(top.children())) and sorted(nodes) == sorted(names)
    for reg in data["registers"]:
        node = nodes[reg["name"]]
        assert node.address_offset == reg["offset"] and node.get_property("regwidth") == 32
        writable = any(f.is_sw_writable for f in node.fields())
        assert writable == (reg["access"] == "rw") and all(f.is_sw_readable for f in node.fields())
        reset = sum((f.get_property("reset") or 0) << f.low for f in node.fields())
        assert reset == (reg["reset"] or 0) & sum(((1 << f.width) - 1) << f.low for f in node.fields())
    for window in data["windows"]:
        node = nodes[window["name"]]
        assert node.address_offset == window["base"] and node.size == window["size"]
        assert node.get_property("memwidth") == 32
        assert node.is_sw_writable == (window["access"] in ("wo", "rw"))
        assert node.is_sw_readable == (window["access"] in ("ro", "rw"))
        assert node.get_property("tinycl_index") == ",".join(f"{f['name']}:{f['bits']}<{f['count']}"
                                                              for f in window["fields"])
    # The encoded fields carry the command and error codes.
    command = nodes["COMMAND"].get_child_by_name("value").get_property("encode")
    assert {m.name: m.value for m in command} == {c.name: int(c) for c in Command}


def test_json_and_markdown_list_every_register():
    rm = RegisterMap(PRESETS["digits"])
    data = json.loads(rm.to_json())
    assert [r["name"] for r in data["registers"]] == [r.name for r in rm.registers]
    md = rm.to_markdown()
    assert all(f"| {r.name} |" in md for r in rm.registers)
    assert "| 0x010000 | 0x8000 | DENSE_W | rw |" in md
    assert "| 0x020000 | 0x20000 | SAMPLES | ro |" in md
