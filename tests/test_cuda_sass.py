"""benchmarks/cuda_sass.py: the SASS reading the README's before/after table rests on, and its
one-line refusals. (Compiling the kernels needs NVVM, which CI lacks; the reading does not.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "cuda_sass.py"


@pytest.fixture(scope="module")
def sass_report():
    spec = importlib.util.spec_from_file_location("cuda_sass", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The shape nvdisasm prints: labels, then /*offset*/ instructions, predicates before some.
SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   FFMA R2, R3, R4, R2 ;
        /*0020*/                   FFMA R2, R3, R4, R2 ;
        /*0030*/                   FFMA R2, R3, R4, R2 ;
        /*0040*/                   MUFU.RCP R5, R6 ;
.L_x_1:
        /*0050*/                   LDS.128 R8, [R7] ;
        /*0060*/                   LDS R12, [R7+0x100] ;
        /*0070*/                   FFMA R13, R8, R12, R13 ;
        /*0080*/                   FFMA R14, R9, R12, R14 ;
        /*0090*/                   IADD3 R7, R7, 0x84, RZ ;
        /*00a0*/               @P0 BRA `(.L_x_1) ;
        /*00b0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
        /*00c0*/                   FFMA R15, R15, R15, R15 ;
        /*00d0*/                   FFMA R16, R16, R16, R16 ;
        /*00e0*/                   FFMA R17, R17, R17, R17 ;
        /*00f0*/                   STL.128 [R1], R4 ;
        /*0100*/                   EXIT ;
"""


def test_the_hot_loop_is_the_product_not_the_gate_math_nor_what_follows_its_branch(sass_report):
    loop = sass_report.hot_loop(SASS, "FFMA")
    # the gate math's block has more FMAs but no shared load; the stores after the branch are not the loop's
    assert dict(loop) == {"LDS.128": 1, "LDS": 1, "FFMA": 2, "IADD3": 1, "BRA": 1}


def test_a_missing_tool_is_one_line_and_exit_2(sass_report, monkeypatch, capsys):
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr(sass_report, "find_tool", lambda name: None if name == "nvdisasm" else "/usr/bin/" + name)
    assert sass_report.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: nvdisasm not found (pip install")


def test_a_tile_needs_its_sizes(sass_report):
    with pytest.raises(SystemExit, match=r"--gemm-tile '64,64,16' needs 5 comma-separated integers"):
        sass_report.main(["--gemm-tile", "64,64,16"])
