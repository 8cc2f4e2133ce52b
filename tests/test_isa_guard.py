"""Every compiled copy of the kernels imports on every x86-64 CPU, or refuses.

``setup.py`` builds the kernels for several instruction sets (``fastbp._kernels``,
``_kernels_v3``, ``_kernels_v4``).  Importing a copy this CPU cannot run must
raise ImportError naming the instruction set and what the CPU lacks, never die
of SIGILL: its module entry point is compiled for the baseline and checks the
CPU before any of the copy's own code runs (``fastbp/_isa_guard.pxi``).

Checked three ways: each built copy is imported in a subprocess on this CPU;
the machine code reachable from each wide copy's entry point before the check
is disassembled (with ``objdump``) and must hold no instruction outside the
x86-64 baseline; and, where ``qemu-x86_64`` is installed, each copy is imported
on emulated CPUs that lack AVX (and AVX-512), so that the refusal path runs
for every copy whatever CPU runs this suite.
"""

import importlib
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import fastbp

backends = importlib.import_module("fastbp.backends")  # (fastbp.backends is also a function)

INSTALLED = pathlib.Path(fastbp.__file__).resolve().parent  # the fastbp the tests import
ISA_OF = {module: isa for isa, module in backends._ISA_MODULES}
BASELINE = importlib.import_module("fastbp._kernels")

PROBE = "import importlib, sys; m = importlib.import_module(sys.argv[1]); print(m.ISA)"


def _built_copies():
    """``{module name: path}`` of the compiled copies next to this fastbp."""
    found = {}
    for path in INSTALLED.glob("_kernels*"):
        if path.suffix in (".so", ".pyd") and f"fastbp.{path.name.split('.')[0]}" in ISA_OF:
            found[f"fastbp.{path.name.split('.')[0]}"] = path
    return dict(sorted(found.items()))


COPIES = _built_copies()
WIDE = {module: path for module, path in COPIES.items() if ISA_OF[module] != "baseline"}


def _import_in_subprocess(module, cwd, prefix=(), env=None):
    # From cwd, a folder without a fastbp/ of its own: the installed one is imported.
    return subprocess.run(
        [*prefix, sys.executable, "-c", PROBE, module],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def _assert_imports_or_refuses(result, module, runs):
    isa = ISA_OF[module]
    assert result.returncode >= 0, f"importing {module} died of signal {-result.returncode}:\n{result.stderr}"
    if runs:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [isa]
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(
            f"ImportError: {module} is the copy of fastbp's kernels compiled for {isa}, "
            "which this CPU cannot run (it lacks "
        ), last
        lacks = re.search(r"\(it lacks ([^)]*)\)", last).group(1).split(", ")
        assert lacks and all(re.fullmatch(r"[a-z0-9_.]+", feature) for feature in lacks), last


def test_the_baseline_copy_was_built():
    assert "fastbp._kernels" in COPIES, f"no compiled fastbp._kernels in {INSTALLED}"


@pytest.mark.parametrize("module", list(COPIES))
def test_importing_a_copy_works_or_raises_import_error(module, tmp_path):
    # In a subprocess: a copy the CPU cannot run would kill this process.
    runs = BASELINE.cpu_runs(ISA_OF[module])
    _assert_imports_or_refuses(_import_in_subprocess(module, tmp_path), module, runs)


def test_the_backend_loads_only_copies_this_cpu_runs():
    loaded = backends.isa_modules()
    assert list(loaded) == [isa for isa in loaded if BASELINE.cpu_runs(isa)]
    assert fastbp.get_backend("cython").ISA in loaded


# --------------------------------------------------------------------------
# The machine code of the entry point
# --------------------------------------------------------------------------

# Instructions beyond the x86-64 baseline (SSE2) that a compiler targeting
# x86-64-v2 or -v3 emits in scalar code; every VEX or EVEX instruction (AVX,
# AVX2, AVX-512: an AT&T mnemonic starting with "v", or a ymm/zmm/mask
# register) is caught separately.
BEYOND_BASELINE = {
    "andn",
    "bextr",
    "blsi",
    "blsmsk",
    "blsr",
    "bzhi",
    "mulx",
    "pdep",
    "pext",
    "rorx",
    "sarx",
    "shlx",
    "shrx",
    "lzcnt",
    "tzcnt",
    "movbe",
    "popcnt",
    "crc32",
    "pshufb",
    "palignr",
    "ptest",
    "pblendvb",
    "pblendw",
    "blendpd",
    "blendps",
    "blendvpd",
    "blendvps",
    "roundsd",
    "roundss",
    "roundpd",
    "roundps",
    "pminsd",
    "pmaxsd",
    "pminud",
    "pmaxud",
    "pmulld",
    "pinsrb",
    "pinsrd",
    "pinsrq",
    "pextrb",
    "pextrd",
    "pextrq",
    "insertps",
    "extractps",
    "pcmpeqq",
    "pcmpgtq",
    "packusdw",
    "dpps",
    "dppd",
    "haddpd",
    "haddps",
    "hsubpd",
    "hsubps",
    "addsubpd",
    "addsubps",
    "movddup",
    "movshdup",
    "movsldup",
    "lddqu",
    "pabsb",
    "pabsw",
    "pabsd",
    "phaddw",
    "phaddd",
    "pmaddubsw",
    "pmulhrsw",
    "psignb",
    "psignw",
    "psignd",
}
PREFIXES = {"rep", "repz", "repe", "repnz", "repne", "lock", "bnd", "notrack", "data16", "addr32", "cs", "ds"}


def _disassemble(path):
    """``{function: [(mnemonic, operands)]}`` of a shared object."""
    text = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-M", "att", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    functions, current = {}, None
    for line in text.splitlines():
        head = re.fullmatch(r"[0-9a-f]+ <(.+)>:", line)
        if head:
            current = functions.setdefault(head.group(1), [])
        elif current is not None and "\t" in line:
            words = line.split("\t", 1)[1].split()
            while words and words[0] in PREFIXES:
                words = words[1:]
            if words:
                current.append((words[0], " ".join(words[1:])))
    return functions


def _targets(operands):
    """Functions a call or jump goes to (``<name>``, ``<name+0x10>``,
    ``<name@plt>``; for an indirect one, the symbol objdump shows in its
    comment, or None)."""
    names = re.findall(r"<([^>+]+)(?:\+0x[0-9a-f]+)?>", operands)
    if not names and "*" in operands:
        return [None]
    return [name.removesuffix("@plt") for name in names]


@pytest.mark.skipif(not WIDE, reason="no copy for a wider instruction set was built on this platform")
@pytest.mark.skipif(
    shutil.which("objdump") is None, reason="needs objdump (binutils) to read the machine code"
)
@pytest.mark.parametrize("module", list(WIDE))
def test_the_entry_point_of_a_wide_copy_runs_only_baseline_instructions(module):
    # Everything reachable from PyInit_<name> except Cython's own init (which
    # the guard calls only once the CPU passed the check) must be baseline.
    functions = _disassemble(WIDE[module])
    entry = f"PyInit_{module.rsplit('.', 1)[1]}"
    assert entry in functions, f"{entry} not found in {WIDE[module]}"
    seen, todo, reached_unguarded, bad = set(), [entry], False, []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for mnemonic, operands in functions.get(name, []):
            if (
                mnemonic.startswith("v")
                or mnemonic in BEYOND_BASELINE
                or re.search(r"%[yz]mm\d|%k[0-7]\b", operands)
            ):
                bad.append(f"{name}: {mnemonic} {operands}")
            if mnemonic.startswith(("call", "jmp", "j")):
                for target in _targets(operands):
                    if target is None:  # a jump table's jump stays in the function; a call might not
                        assert mnemonic.startswith("j"), (
                            f"{name}: the indirect {mnemonic} {operands} cannot be followed"
                        )
                        continue
                    if target.startswith("fastbp_unguarded_"):
                        reached_unguarded = True
                    elif target in functions:  # else: another library's (libc, libpython)
                        todo.append(target)
    assert reached_unguarded, (
        f"{entry} does not call Cython's init: the guard is not wired in ({sorted(seen)})"
    )
    assert not bad, "instructions beyond the baseline before the CPU check:\n" + "\n".join(bad[:20])


# --------------------------------------------------------------------------
# On emulated CPUs
# --------------------------------------------------------------------------

QEMU = shutil.which("qemu-x86_64")
# Emulated CPU models: one without AVX (Nehalem), one with AVX2 but no AVX-512
# (Haswell; what QEMU's emulator offers of it depends on its version, so what
# that CPU runs is asked of the emulated baseline copy).
CPUS = ["Nehalem", "Haswell"]
LEVELS = ["baseline", "x86-64-v3", "x86-64-v4"]


def _emulated_env():
    # The environment of a process on an emulated CPU: ours without
    # OPENBLAS_CORETYPE.  Where it is set, it names a BLAS kernel for the host
    # CPU (Haswell, say), which OpenBLAS then runs without asking the CPU: on
    # an emulated Nehalem, NumPy's import died of SIGILL in sdot_k_HASWELL.
    # The emulated CPU is not the host, so OpenBLAS detects its own there.
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    return env


def _emulated(cpu, code, cwd):
    return subprocess.run(
        [QEMU, "-cpu", cpu, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=_emulated_env(),
    )


@pytest.mark.skipif(QEMU is None, reason="needs qemu-x86_64 (Debian's qemu-user) to emulate other CPUs")
@pytest.mark.skipif(not WIDE, reason="no copy for a wider instruction set was built on this platform")
@pytest.mark.parametrize("cpu", CPUS)
def test_every_copy_imports_or_refuses_on_an_emulated_cpu(cpu, tmp_path):
    code = f"import fastbp._kernels as k; print(*[isa for isa in {LEVELS!r} if k.cpu_runs(isa)])"
    probe = _emulated(cpu, code, tmp_path)
    assert probe.returncode == 0, probe.stderr
    runs = probe.stdout.split()
    assert runs[0] == "baseline" and "x86-64-v4" not in runs  # neither model has AVX-512
    if cpu == "Nehalem":
        assert runs == ["baseline"]
    for module in COPIES:
        result = _import_in_subprocess(module, tmp_path, prefix=(QEMU, "-cpu", cpu), env=_emulated_env())
        _assert_imports_or_refuses(result, module, ISA_OF[module] in runs)
    # fastbp itself picks the best copy the emulated CPU runs, and computes.
    result = _emulated(
        cpu,
        "import fastbp; k = fastbp.get_backend('cython'); "
        "net = fastbp.Network.from_weights([[[0.15, 0.20], [0.25, 0.30]], [[0.40, 0.45], [0.50, 0.55]]], "
        "[[0.35, 0.35], [0.60, 0.60]]); print(k.ISA, repr(net.cost([0.05, 0.10], [0.01, 0.99])))",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    best = [isa for isa in runs if dict(backends._ISA_MODULES)[isa] in COPIES][-1]  # the widest built
    assert result.stdout.split() == [best, "0.2983711087600027"]
