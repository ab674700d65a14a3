"""A file mapping carries the cookie as its address hint (preload/sysraw.h iot_sysraw_mmap,
docs/stracer.md "File mappings carry the cookie"): bit 63 set, bit 62 clear, beyond the address
space, so that the kernel places it as for no address.  What that rests on, on this kernel: the
same mapping made again with such a hint lands where it landed without one, for a disk's file
and a tmpfs's, one page and huge-page sizes (the file systems' THP alignment), in the default
and the legacy (bottom-up) layout; MAP_32BIT stays in the low 2 GiB.  And the shim's probe
(wrap_mmap.c iot_mmap_hint_ok) answers as the paging requires: hints with 4-level paging, none
with 5-level, where such a hint opens the 57-bit space (arch_get_unmapped_area_topdown raises
its high limit for any hint above the 47-bit window)."""

from __future__ import annotations

import shutil
import subprocess

from conftest import build


def test_the_cookie_hint_places_a_mapping_as_no_hint(trace, tmp_path):
    prog = build("mmap_hint")
    layouts = [[]] + ([["setarch", "x86_64", "-L"]] if shutil.which("setarch") else [])
    outs = []
    for layout in layouts:
        p = subprocess.run([*layout, str(prog), str(tmp_path)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout)
        lines = p.stdout.splitlines()
        assert len(lines) == 9, p.stdout
        for line in lines[:7]:
            assert line.endswith(": 20 of 20 at the same address"), p.stdout
        assert lines[7] == "32-bit: 20 of 20 in the low 2 GiB"
        assert lines[8] in ("probe hints; 5-level paging no", "probe no hints; 5-level paging yes")
    # traced: the program's unhinted file mappings are the shim's, cookie'd (with 4-level
    # paging), and print the same
    t = trace(prog, tmp_path)
    assert t.proc.returncode == 0, t.proc.stderr
    assert t.proc.stdout == outs[0]
