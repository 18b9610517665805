"""Will each recorder run on this machine, for that interpreter, and if not, what would fix it?

A recorder that cannot run is skipped with a reason at record time; ``tracer doctor`` asks the
same questions beforehand, so that a user can fix the machine once instead of reading partial
reports. The facts are gathered in one place (:func:`gather`), and :func:`assess` turns them into
verdicts as a pure function, so every rule is tested on faked facts.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tracer
from tracer.gil_locate import free_threaded_reason
from tracer.recorders.pyspy import find_pyspy, ptrace_scope
from tracer.tracefs import MOUNT_POINT, find_tracefs, mount_command

PERF_INSTALL = "apt install linux-perf"  # Debian; Ubuntu calls it linux-tools-$(uname -r)
PARANOID_FIX = "sysctl kernel.perf_event_paranoid=-1"
FUTEX_TRACEPOINT = "syscalls:sys_enter_futex"
PROBE_TIMEOUT_S = 60.0  # start an interpreter, import ctypes, search one mapping for the GIL
# x86_64 and aarch64 futex syscall numbers: the GIL sampler reads them in /proc/TID/syscall.
FUTEX_MACHINES = ("x86_64", "aarch64")

# Runs in the --python interpreter, with this package on PYTHONPATH, as the bootstrap does.
INTERPRETER_PROBE = """
import json, os, sys, sysconfig
out = {"version": sys.version.split()[0], "executable": sys.executable}
_enabled = getattr(sys, "_is_gil_enabled", None)
out["gil_build"] = {"gil_disabled_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                    "gil_enabled": _enabled() if _enabled is not None else True}
try:
    out["libc"] = os.confstr("CS_GNU_LIBC_VERSION")
except (AttributeError, ValueError, OSError):
    out["libc"] = None
try:
    from tracer.instrument import gil_probe
    out["gil"] = gil_probe.calibrate()
except Exception as exc:
    out["gil"] = {"error": "%s: %s" % (type(exc).__name__, exc)}
try:
    from tracer.instrument import lock_core
    out["lock_core"] = "" if lock_core.NATIVE else lock_core.WHY_PURE
except Exception as exc:
    out["lock_core"] = "%s: %s" % (type(exc).__name__, exc)
try:
    from tracer.instrument import tasks
    out["task_core"] = "" if tasks.NATIVE else tasks.WHY_PURE
except Exception as exc:
    out["task_core"] = "%s: %s" % (type(exc).__name__, exc)
try:
    import viztracer
    out["viztracer"] = getattr(viztracer, "__version__", "installed")
except Exception as exc:
    out["viztracer_error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(out))
"""

PTRACE_SCOPES = {
    0: "classic: any process of the same user may read another",
    1: "restricted: only ancestors, or processes the target allowed (threadscope's target "
       "allows its recorders), may read a process",
    2: "admin-only: only root (CAP_SYS_PTRACE) may read another process",
    3: "no attach: nobody may, not even root, until the next reboot",
}


@dataclass(frozen=True)
class InterpreterFacts:
    python: str
    error: str = ""  # it could not be run, or the probe failed
    version: str = ""
    libc: str | None = None  # os.confstr('CS_GNU_LIBC_VERSION'): "glibc 2.36"; None elsewhere
    gil: dict[str, Any] = field(default_factory=dict)  # gil_probe.calibrate()
    # gil_locate.GIL_BUILD_PROBE's answer: a free-threaded build has no GIL figures
    gil_build: dict[str, Any] = field(default_factory=dict)
    lock_core: str = ""  # "" when the C core loads, else why not
    task_core: str = ""  # the same for the task recorder's
    viztracer: str | None = None  # its version, None when it does not import
    viztracer_error: str = ""


@dataclass(frozen=True)
class TracefsFacts:
    path: Path | None = None  # where it is mounted (possibly by the doctor, for the check)
    mountable: bool = False  # not mounted, but we are root and may mount it per run
    error: str = ""  # why it is not usable (not root, mount failed)
    events_readable: bool = True
    futex_tracepoint: bool | None = None  # None: could not look


@dataclass(frozen=True)
class HostFacts:
    platform: str
    machine: str
    is_root: bool
    perf: str | None  # path of the perf binary
    perf_paranoid: int | None
    tracefs: TracefsFacts
    ptrace_scope: int | None  # None: no Yama LSM
    pyspy: str | None
    schedstat: str  # "" when /proc/self/task/*/schedstat is readable, else why not
    process_vm_readv: bool
    interpreter: InterpreterFacts


@dataclass(frozen=True)
class Problem:
    why: str
    fix: str  # the exact command or setting that would fix it


@dataclass
class Verdict:
    recorder: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return not self.problems


# -- facts -----------------------------------------------------------------------------------------


def probe_interpreter(python: str) -> InterpreterFacts:
    """Run the probe in ``python`` (PYTHONPATH pointing at this package, as for the bootstrap)."""
    env = dict(os.environ)
    package_root = str(Path(tracer.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        result = subprocess.run([python, "-c", INTERPRETER_PROBE], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT_S, env=env, check=False,
                                stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return InterpreterFacts(python=python, error=f"cannot run {python}: {exc}")
    try:
        out = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit code {result.returncode}"
        return InterpreterFacts(python=python, error=f"{python} could not run the probe: {last}")
    return InterpreterFacts(
        python=python, version=str(out.get("version", "")), libc=out.get("libc"),
        gil=dict(out.get("gil") or {}), gil_build=dict(out.get("gil_build") or {}),
        lock_core=str(out.get("lock_core", "")), task_core=str(out.get("task_core", "")),
        viztracer=out.get("viztracer"), viztracer_error=str(out.get("viztracer_error", "")),
    )


def _int_file(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _schedstat_problem() -> str:
    tasks = Path(f"/proc/{os.getpid()}/task")
    try:
        for task in tasks.iterdir():
            (task / "schedstat").read_text()
    except OSError as exc:
        return f"cannot read {tasks}/*/schedstat: {exc.strerror or exc}"
    return ""


def _has_process_vm_readv() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "process_vm_readv")
    except OSError:
        return False


def tracefs_facts(path: Path | None, mounted_for_check: bool, error: str,
                  is_root: bool) -> TracefsFacts:
    """What tracefs looks like for perf: ``path`` where it is (or was mounted for the check)."""
    if path is None:
        return TracefsFacts(error=error or ("" if is_root else "not mounted"))
    events = path / "events"
    readable = os.access(events, os.R_OK | os.X_OK)
    futex: bool | None = None
    if readable:
        futex = (events / "syscalls" / "sys_enter_futex").is_dir()
    return TracefsFacts(path=path, mountable=mounted_for_check, events_readable=readable,
                        futex_tracepoint=futex)


def gather(python: str, tracefs: TracefsFacts | None = None) -> HostFacts:
    """The facts of this machine; ``tracefs`` as the doctor saw it while holding a lease (it
    may have mounted tracefs to look), else as found now."""
    is_root = os.geteuid() == 0
    if tracefs is None:
        tracefs = tracefs_facts(find_tracefs(), False, "", is_root)
    return HostFacts(
        platform=sys.platform, machine=platform.machine(), is_root=is_root,
        perf=shutil.which("perf"),
        perf_paranoid=_int_file("/proc/sys/kernel/perf_event_paranoid"), tracefs=tracefs,
        ptrace_scope=ptrace_scope(), pyspy=find_pyspy(), schedstat=_schedstat_problem(),
        process_vm_readv=_has_process_vm_readv(), interpreter=probe_interpreter(python),
    )


# -- verdicts --------------------------------------------------------------------------------------


def assess(facts: HostFacts) -> list[Verdict]:
    """One verdict per recorder, in the order the report lists its sources."""
    return [_perf(facts), _gil_sampler(facts), _os_sampler(facts), _pyspy(facts),
            _lock_core(facts), _task_core(facts), _viztracer(facts)]


def _linux(facts: HostFacts, verdict: Verdict, what: str) -> bool:
    if facts.platform.startswith("linux"):
        return True
    verdict.problems.append(Problem(f"{what} needs Linux (this is {facts.platform})",
                                    "run threadscope on Linux (a VM or container will do)"))
    return False


def _interpreter_gil(facts: HostFacts, verdict: Verdict) -> None:
    py = facts.interpreter
    if py.error:
        verdict.problems.append(Problem(py.error, "pass --python a CPython 3.10-3.13 that runs"))
        return
    free_threaded = free_threaded_reason(py.gil_build)
    if free_threaded:
        verdict.problems.append(Problem(
            f"{py.python} (CPython {py.version}) is a {free_threaded}",
            "GIL figures do not apply to it; to measure the GIL, run the target with a CPython "
            "built with it (--python)"))
        return
    where = py.gil.get("gil_addr")
    if where is None:
        verdict.problems.append(Problem(
            f"the GIL cannot be located in {py.python}: {py.gil.get('error', 'no answer')}",
            "run the target with a CPython 3.11-3.13 with the GIL (a pyenv, python.org or "
            "Debian build)"))
    else:
        verdict.notes.append(f"GIL found at {where:#x} in {py.gil.get('mapping') or 'memory'} "
                             f"(CPython {py.version})")


def _perf(facts: HostFacts) -> Verdict:
    verdict = Verdict("perf: exact GIL waits")
    if not _linux(facts, verdict, "perf"):
        return verdict
    if facts.perf is None:
        verdict.problems.append(Problem("`perf` is not on PATH", PERF_INSTALL))
    tracefs = facts.tracefs
    mount = " ".join(mount_command(MOUNT_POINT))
    if tracefs.path is None:
        if tracefs.error or not facts.is_root:
            verdict.problems.append(Problem(
                f"tracefs is not usable: {tracefs.error or 'not mounted'}",
                mount if facts.is_root else f"sudo {mount} (or run threadscope as root)"))
        else:
            verdict.notes.append("tracefs: available, mounted automatically for each run")
    elif tracefs.mountable:
        verdict.notes.append(f"tracefs: not mounted; available, mounted automatically for each "
                             f"run (mounted at {tracefs.path} for this check, unmounted again)")
    else:
        verdict.notes.append(f"tracefs mounted at {tracefs.path}")
    if not facts.is_root:
        paranoid = facts.perf_paranoid
        if paranoid is None or paranoid > -1:
            verdict.problems.append(Problem(
                "per-thread tracepoint samples need root or kernel.perf_event_paranoid <= -1 "
                f"(it is {'unknown' if paranoid is None else paranoid})",
                f"sudo {PARANOID_FIX} (or run threadscope as root)"))
        if tracefs.path is not None and not tracefs.events_readable:
            verdict.problems.append(Problem(
                f"{tracefs.path}/events is readable by root only", "run threadscope as root"))
    if tracefs.futex_tracepoint is False:
        verdict.problems.append(Problem(
            f"the kernel has no {FUTEX_TRACEPOINT} tracepoint",
            "a kernel built with CONFIG_FTRACE_SYSCALLS=y (Debian's and Ubuntu's are)"))
    elif tracefs.futex_tracepoint:
        verdict.notes.append(f"tracepoint {FUTEX_TRACEPOINT} present")
    _interpreter_gil(facts, verdict)
    py = facts.interpreter
    if not py.error:
        if py.libc and py.libc.startswith("glibc"):
            verdict.notes.append(f"C library: {py.libc}")
        else:
            verdict.problems.append(Problem(
                f"the C library of {py.python} is not glibc ({py.libc or 'unknown, musl?'}): "
                "the futex filter knows glibc's condition variable only",
                "run the target with a glibc-based Python (Debian, Ubuntu, Fedora; not Alpine)"))
    return verdict


def _ptrace(facts: HostFacts, verdict: Verdict, what: str) -> None:
    scope = facts.ptrace_scope
    if scope is None:
        verdict.notes.append("no Yama ptrace_scope: reading a process is limited by user only")
        return
    meaning = PTRACE_SCOPES.get(scope, "unknown value")
    if scope == 3:
        verdict.problems.append(Problem(
            f"kernel.yama.ptrace_scope=3 ({meaning}): {what} cannot read the target",
            "echo kernel.yama.ptrace_scope=1 > /etc/sysctl.d/10-ptrace.conf, then reboot"))
    elif scope == 2 and not facts.is_root:
        verdict.problems.append(Problem(
            f"kernel.yama.ptrace_scope=2 ({meaning}): {what} needs root",
            "sudo sysctl kernel.yama.ptrace_scope=1 (or run threadscope as root)"))
    elif scope == 1 and not facts.is_root:
        verdict.notes.append(f"ptrace_scope=1 ({meaning}): fine for `tracer run`; "
                             "`tracer attach` to another program needs root")
    else:
        verdict.notes.append(f"ptrace_scope={scope} ({meaning})")


def _gil_sampler(facts: HostFacts) -> Verdict:
    verdict = Verdict("GIL sampler")
    if not _linux(facts, verdict, "the GIL sampler"):
        return verdict
    if facts.machine not in FUTEX_MACHINES:
        verdict.problems.append(Problem(
            f"the futex syscall number is unknown on {facts.machine} "
            f"(known: {', '.join(FUTEX_MACHINES)})", "run on x86_64 or aarch64"))
    if not facts.process_vm_readv:
        verdict.problems.append(Problem("the C library has no process_vm_readv",
                                        "glibc 2.15 or later (any current distribution)"))
    _ptrace(facts, verdict, "the GIL sampler (process_vm_readv)")
    _interpreter_gil(facts, verdict)
    return verdict


def _os_sampler(facts: HostFacts) -> Verdict:
    verdict = Verdict("OS sampler")
    if not _linux(facts, verdict, "the OS sampler (/proc)"):
        return verdict
    if facts.schedstat:
        verdict.problems.append(Problem(
            facts.schedstat, "a kernel with CONFIG_SCHED_INFO (/proc/PID/task/TID/schedstat)"))
    else:
        verdict.notes.append("/proc/self/task/*/schedstat readable")
    return verdict


def _pyspy(facts: HostFacts) -> Verdict:
    verdict = Verdict("py-spy")
    if facts.pyspy is None:
        verdict.problems.append(Problem("py-spy is not installed",
                                        f"{sys.executable} -m pip install py-spy"))
    else:
        verdict.notes.append(f"py-spy at {facts.pyspy}")
    if facts.platform.startswith("linux"):
        _ptrace(facts, verdict, "py-spy")
    return verdict


def _lock_core(facts: HostFacts) -> Verdict:
    return _c_core(facts, "lock recorder: C core", facts.interpreter.lock_core, "_lockcore",
                   "switches threads where real locks do not")


def _task_core(facts: HostFacts) -> Verdict:
    return _c_core(facts, "task recorder: C core", facts.interpreter.task_core, "_taskcore",
                   "slows pools of short tasks more (1.2-1.4x in benchmarks/RESULTS.md)")


def _c_core(facts: HostFacts, name: str, why_not: str, module: str, cost: str) -> Verdict:
    verdict = Verdict(name)
    py = facts.interpreter
    if py.error:
        verdict.problems.append(Problem(py.error, "pass --python a CPython 3.10-3.13 that runs"))
    elif why_not:
        root = Path(tracer.__file__).resolve().parent.parent
        verdict.problems.append(Problem(
            f"{why_not}; the pure-Python fallback is used, which {cost}",
            f"cd {root} && {sys.executable} -m pip install -e . (needs a C compiler: "
            "apt install gcc)"))
    else:
        verdict.notes.append(f"tracer.instrument.{module} loads in {py.python}")
    return verdict


def _viztracer(facts: HostFacts) -> Verdict:
    verdict = Verdict("VizTracer")
    py = facts.interpreter
    if py.error:
        verdict.problems.append(Problem(py.error, "pass --python a CPython 3.10-3.13 that runs"))
    elif py.viztracer is None:
        verdict.problems.append(Problem(
            f"viztracer does not import in {py.python} ({py.viztracer_error or 'not installed'})",
            f"{py.python} -m pip install viztracer"))
    else:
        verdict.notes.append(f"viztracer {py.viztracer} in {py.python}")
    return verdict
