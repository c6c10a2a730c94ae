"""Builds decode_kernels.c with the machine's C compiler once, and loads it through ctypes.

Why a plain C file and not a torch extension: it needs no Python or torch headers, so it compiles in about a
second at first use instead of a minute, and any `cc` will do. The library is cached under a name derived from the
source, the compiler flags and this CPU's features (`-march=native`), so a data directory shared between machines
never loads another CPU's build. Without a compiler (a slim container image) the decoder keeps its torch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import threading
from pathlib import Path

SOURCE = Path(__file__).with_name("decode_kernels.c")
# -ffp-contract=off: no fused multiply-adds, so each product rounds where the torch op it replaces rounds.
# -fopenmp-simd: only the `omp simd` reductions may be reordered (the long dot products), nothing else.
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fopenmp-simd", "-fno-math-errno", "-fPIC", "-shared"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}  # by library file name: the same build is loaded once per process

_P, _I, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
_L = ctypes.c_int64
SIGNATURES = {
    "tb_residual_norm": [_P, _P, _I, _P, _L, _F, _P, _I],
    "tb_attend": [_P, _I, _P, _P, _P, _P, _L, _L, _L, _L, _L, _P, _P, _I],
    "tb_swiglu": [_P, _I, _L, _P, _I],
    # The batched step's (batch_decoder.py): the same work for several conversations in one call.
    "tb_residual_norm_rows": [_P, _P, _I, _P, _L, _F, _P, _I, _L],
    "tb_attend_rows": [_P, _I, _P, _P, _P, _P, _P, _P, _L, _L, _L, _L, _L, _P, _P, _I],
    "tb_swiglu_rows": [_P, _I, _L, _P, _I, _L],
}


def _cpu_features() -> str:
    """What -march=native depends on: the CPU's model and flags (Linux), else the platform's description."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() + platform.machine()
    wanted = ("model name", "flags")
    return "\n".join(sorted({line for line in text.splitlines() if line.split(":")[0].strip() in wanted}))


def library_path(cache_dir: Path, compiler: str) -> Path:
    key = hashlib.sha256("\n".join([SOURCE.read_text(), compiler, *FLAGS, _cpu_features()]).encode()).hexdigest()
    return cache_dir / f"decode_kernels-{key[:16]}.so"


def _build(target: Path, compiler: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        subprocess.run(
            [compiler, *FLAGS, "-o", str(partial), str(SOURCE), "-lm"], check=True, capture_output=True, timeout=120
        )
        partial.replace(target)  # atomic: another process never loads half a library
    finally:
        partial.unlink(missing_ok=True)


def load(cache_dir: Path) -> ctypes.CDLL | None:
    """The compiled kernels (built on first use), or None when there is no C compiler or the build fails."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.info("No C compiler: chat decoding keeps its torch path (slower).")
        return None
    target = library_path(cache_dir, compiler)
    with _lock:
        if target.name in _loaded:  # already loaded from this or another data directory
            return _loaded[target.name]
        library = None
        try:
            if not target.exists():
                _build(target, compiler)
            library = ctypes.CDLL(str(target))
            for name, argtypes in SIGNATURES.items():
                function = getattr(library, name)
                function.argtypes, function.restype = argtypes, None
        except (OSError, AttributeError, subprocess.SubprocessError) as exc:
            # The torch path is exact and slower: better than failing a chat.
            detail = getattr(exc, "stderr", None) or exc
            log.warning("Chat decoding keeps its torch path: the C kernels did not build (%s).", detail)
            library = None
        _loaded[target.name] = library
        return library
