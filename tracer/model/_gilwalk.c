/* One thread's GIL events walked in C (tracer/model/gil_exact.py, _ThreadWalk).
 *
 * Why C: a minute of 64 threads is ~4.3 million events; the walk is one state-machine step per
 * event, ~8 us each in Python (a third of the whole analysis of such a run), ~0.05 us here.
 *
 * This is the same walk as gil_exact._ThreadWalk, rule for rule, in the same order; the Python
 * walk stays the reference (used without a compiler, or with THREADSCOPE_PURE_WALK=1), and
 * tests/unit/test_gil_walk.py checks that both give the same output on recorded and random
 * event sequences. What it returns is raw: the stretches it emitted, the waits, the holds
 * proven later against the other threads (in Python), the forced releases and the releases.
 *
 * Built against the stable ABI (3.10+).
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Event kinds: indices into gil_events.EV_ORDER (checked from Python through KINDS). */
enum { E_WAIT, E_MUTEX_WAIT, E_NO_SLEEP, E_WAKE, E_HANDOFF_WAIT, E_HANDOFF_WAKE, E_SWITCH_OUT,
       E_PREEMPTED, E_SWITCH_IN, E_START, E_EXIT, E_COUNT };
static const char *KIND_NAMES[E_COUNT] = {
    "wait", "mutex_wait", "no_sleep", "wake", "handoff_wait", "handoff_wake", "switch_out",
    "preempted", "switch_in", "start", "exit"};

/* Emitted states (names in STATES) and CPU states (gil_exact._Cpu, in CPUS). */
enum { S_GIL_WAIT, S_ON_CPU, S_BLOCKED, S_CPU_WAIT, S_NONE = -1 };
enum { C_UNKNOWN, C_ON, C_ASLEEP, C_PREEMPTED };
enum { P_IDLE, P_WAITING, P_WOKEN, P_HOLD };
enum { HELD_NONE = -1, HELD_NO = 0, HELD_YES = 1 };

#define WAIT_LOOP_BOUND_NS 50000LL

/* A growable array of int64 rows of `width` values each. */
typedef struct {
    int64_t *v;
    Py_ssize_t n, cap; /* values, not rows */
} vec_t;

static int push(vec_t *vec, int width, const int64_t *row) {
    if (vec->n + width > vec->cap) {
        Py_ssize_t cap = vec->cap ? vec->cap * 2 : 1024;
        while (cap < vec->n + width) cap *= 2;
        int64_t *grown = realloc(vec->v, (size_t)cap * sizeof(int64_t));
        if (!grown) return -1;
        vec->v = grown;
        vec->cap = cap;
    }
    memcpy(vec->v + vec->n, row, (size_t)width * sizeof(int64_t));
    vec->n += width;
    return 0;
}

typedef struct {
    int64_t t0, end;
    vec_t out;       /* start, end, state */
    vec_t waits;     /* start, end, slept */
    vec_t stretches; /* start, end, cpu, hold number */
    vec_t holds;     /* start_known */
    vec_t wants;     /* start, end */
    vec_t releases;  /* t */
    vec_t pending;   /* start, end, cpu */
    vec_t unsure;    /* start, end, cpu */
    int phase, cpu;
    int has_since, has_on_since, has_handoff, futex_pending, slept;
    int64_t since, on_since, handoff_since, wait_start, woke, last_futex, awake_ns;
    int failed;
} walk_t;

static void push_or_fail(walk_t *w, vec_t *vec, int width, const int64_t *row) {
    if (!w->failed && push(vec, width, row) < 0) w->failed = 1;
}

static int cpu_state(int cpu) {
    switch (cpu) {
    case C_ON: return S_ON_CPU;
    case C_ASLEEP: return S_BLOCKED;
    case C_PREEMPTED: return S_CPU_WAIT;
    default: return S_NONE;
    }
}

static void emit(walk_t *w, int64_t start, int64_t end, int state) {
    if (start < w->t0) start = w->t0;
    if (end > w->end) end = w->end;
    if (end > start) {
        int64_t row[3] = {start, end, state};
        push_or_fail(w, &w->out, 3, row);
    }
}

static void close_stretch(walk_t *w, int64_t now) {
    int had = w->has_since;
    int64_t since = w->since;
    w->since = now;
    w->has_since = 1;
    if (!had || now <= since) return;
    int64_t row[3] = {since, now, w->cpu};
    if (w->phase == P_WAITING)
        emit(w, since, now, S_GIL_WAIT);
    else if (w->phase == P_WOKEN || w->phase == P_HOLD)
        push_or_fail(w, &w->pending, 3, row);
    else if (w->cpu != C_UNKNOWN)
        push_or_fail(w, &w->unsure, 3, row);
}

/* The stretches of `from` become one hold (start_known or not). */
static void new_hold(walk_t *w, vec_t *from, int start_known) {
    int64_t number = w->holds.n, known = start_known;
    push_or_fail(w, &w->holds, 1, &known);
    for (Py_ssize_t k = 0; k < from->n; k += 3) {
        int64_t row[4] = {from->v[k], from->v[k + 1], from->v[k + 2], number};
        push_or_fail(w, &w->stretches, 4, row);
    }
    from->n = 0;
}

static void resolve(walk_t *w, int held) {
    if (held == HELD_YES && w->pending.n) {
        new_hold(w, &w->pending, 1);
        return;
    }
    for (Py_ssize_t k = 0; k < w->pending.n; k += 3) {
        int64_t *p = w->pending.v + k;
        int state = held == HELD_NO ? S_GIL_WAIT : cpu_state((int)p[2]);
        if (state != S_NONE) emit(w, p[0], p[1], state);
    }
    w->pending.n = 0;
}

static void flush_unsure(walk_t *w, int released) {
    if (released && w->unsure.n) {
        new_hold(w, &w->unsure, 0);
        return;
    }
    for (Py_ssize_t k = 0; k < w->unsure.n; k += 3) {
        int64_t *p = w->unsure.v + k;
        int state = cpu_state((int)p[2]);
        if (state != S_NONE) emit(w, p[0], p[1], state);
    }
    w->unsure.n = 0;
}

static void end_wait(walk_t *w, int64_t at) {
    int64_t row[3] = {w->wait_start, at > w->wait_start ? at : w->wait_start, w->slept};
    push_or_fail(w, &w->waits, 3, row);
}

static int64_t awake(walk_t *w, int64_t now) {
    return w->awake_ns + (w->has_on_since ? now - w->on_since : 0);
}

static void finish(walk_t *w, int64_t now) {
    close_stretch(w, now);
    if (w->phase == P_WAITING)
        end_wait(w, now);
    else if (w->phase == P_WOKEN)
        end_wait(w, w->woke);
    resolve(w, HELD_NONE);
    flush_unsure(w, 0);
    w->phase = P_IDLE;
    w->has_since = 0;
}

static void on_switch(walk_t *w, int64_t now, int kind) {
    if (kind == E_SWITCH_IN) {
        if (w->cpu == C_ASLEEP && w->phase == P_WAITING) {
            w->phase = P_WOKEN;
            w->woke = now;
            w->awake_ns = 0;
        }
        w->cpu = C_ON;
        w->on_since = now;
        w->has_on_since = 1;
        return;
    }
    if (w->has_on_since) {
        w->awake_ns += now - w->on_since;
        w->has_on_since = 0;
    }
    if (kind == E_PREEMPTED) {
        w->cpu = C_PREEMPTED;
        return;
    }
    int in_gil_futex = w->futex_pending;
    w->futex_pending = 0;
    w->cpu = C_ASLEEP;
    if (in_gil_futex) {
        if (w->phase == P_WAITING) w->slept = 1;
        return;
    }
    if (w->phase == P_WOKEN) {
        end_wait(w, w->woke);
        resolve(w, HELD_NONE);
    } else if (w->phase == P_WAITING) {
        end_wait(w, w->last_futex);
    } else if (w->phase == P_HOLD) {
        resolve(w, HELD_NONE);
    }
    w->phase = P_IDLE;
}

/* One event; 0 once the thread has exited. */
static int step(walk_t *w, int64_t now, int kind) {
    int phase = w->phase;
    close_stretch(w, now);
    if (kind == E_EXIT) {
        finish(w, now);
        return 0;
    }
    if (kind == E_START) return 1;
    if (kind == E_SWITCH_OUT || kind == E_PREEMPTED || kind == E_SWITCH_IN) {
        on_switch(w, now, kind);
        return 1;
    }
    if (w->cpu != C_ON) {
        w->cpu = C_ON;
        w->on_since = now;
        w->has_on_since = 1;
    }
    if (kind == E_NO_SLEEP) {
        w->futex_pending = 0;
        if (phase == P_WAITING) {
            w->phase = P_WOKEN;
            w->woke = now;
            w->awake_ns = 0;
            w->on_since = now;
            w->has_on_since = 1;
        }
    } else if (kind == E_WAIT || kind == E_MUTEX_WAIT) {
        w->futex_pending = 1;
        w->last_futex = now;
        if (phase == P_WOKEN && awake(w, now) > WAIT_LOOP_BOUND_NS) {
            end_wait(w, w->woke);
            resolve(w, HELD_NONE);
            phase = w->phase = P_IDLE;
        }
        if (phase == P_WOKEN) {
            resolve(w, HELD_NO);
            w->phase = P_WAITING;
        } else if (kind == E_WAIT && (phase == P_IDLE || phase == P_HOLD)) {
            resolve(w, HELD_NONE);
            flush_unsure(w, 0);
            w->phase = P_WAITING;
            w->wait_start = now;
            w->slept = 0;
            if (w->has_handoff) {
                int64_t row[2] = {w->handoff_since, now};
                push_or_fail(w, &w->wants, 2, row);
                w->has_handoff = 0;
            }
        }
    } else if (kind == E_HANDOFF_WAKE) {
        if (phase == P_WAITING || phase == P_WOKEN) {
            resolve(w, HELD_NO);
            end_wait(w, now);
        } else {
            resolve(w, HELD_NONE);
            flush_unsure(w, 0);
        }
        w->phase = P_HOLD;
    } else if (kind == E_WAKE || kind == E_HANDOFF_WAIT) {
        push_or_fail(w, &w->releases, 1, &now);
        if (kind == E_HANDOFF_WAIT) {
            w->handoff_since = now;
            w->has_handoff = 1;
        }
        if (phase == P_WOKEN) {
            end_wait(w, w->woke);
            resolve(w, HELD_YES);
        } else if (phase == P_WAITING) {
            end_wait(w, w->last_futex);
        } else if (phase == P_HOLD) {
            resolve(w, HELD_YES);
        } else {
            flush_unsure(w, 1);
        }
        w->phase = P_IDLE;
        w->futex_pending = kind == E_HANDOFF_WAIT;
    }
    return 1;
}

static void free_walk(walk_t *w) {
    vec_t *all[] = {&w->out, &w->waits, &w->stretches, &w->holds, &w->wants, &w->releases,
                    &w->pending, &w->unsure};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) free(all[k]->v);
}

static PyObject *as_bytes(vec_t *vec) {
    return PyBytes_FromStringAndSize((const char *)vec->v, vec->n * (Py_ssize_t)sizeof(int64_t));
}

/* walk(times, kinds, t0_ns, end_ns) -> (out, waits, stretches, holds, wants, releases), each
 * bytes of native int64 rows. `times` holds int64s in time order, `kinds` int8 codes. */
static PyObject *walk(PyObject *self, PyObject *args) {
    const char *times_buf, *kinds_buf;
    Py_ssize_t times_len, kinds_len;
    long long t0, end;
    if (!PyArg_ParseTuple(args, "y#y#LL", &times_buf, &times_len, &kinds_buf, &kinds_len, &t0,
                          &end))
        return NULL;
    Py_ssize_t n = kinds_len;
    if (times_len != n * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "times and kinds differ in length");
        return NULL;
    }
    walk_t w;
    memset(&w, 0, sizeof w);
    w.t0 = t0;
    w.end = end;
    w.phase = P_IDLE;
    w.cpu = C_UNKNOWN;
    int alive = 1;
    int64_t last = 0;
    for (Py_ssize_t k = 0; k < n && !w.failed; k++) {
        int64_t now;
        memcpy(&now, times_buf + k * (Py_ssize_t)sizeof(int64_t), sizeof now);
        int kind = (signed char)kinds_buf[k];
        if (kind < 0 || kind >= E_COUNT) {
            free_walk(&w);
            PyErr_Format(PyExc_ValueError, "event kind %d out of range", kind);
            return NULL;
        }
        last = now;
        alive = step(&w, now, kind);
        if (!alive) break;
    }
    if (alive && n) finish(&w, end > last ? end : last);
    if (w.failed) {
        free_walk(&w);
        return PyErr_NoMemory();
    }
    PyObject *result = Py_BuildValue("(NNNNNN)", as_bytes(&w.out), as_bytes(&w.waits),
                                     as_bytes(&w.stretches), as_bytes(&w.holds),
                                     as_bytes(&w.wants), as_bytes(&w.releases));
    free_walk(&w);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Walk one thread's GIL events (gil_exact._ThreadWalk)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gilwalk", "One thread's GIL events walked in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

static PyObject *names(const char **list, int count) {
    PyObject *tuple = PyTuple_New(count);
    if (!tuple) return NULL;
    for (int k = 0; k < count; k++) {
        PyObject *name = PyUnicode_FromString(list[k]);
        if (!name) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SetItem(tuple, k, name);
    }
    return tuple;
}

PyMODINIT_FUNC PyInit__gilwalk(void) {
    static const char *states[] = {"gil_wait", "on_cpu", "blocked", "cpu_wait"};
    static const char *cpus[] = {"unknown", "on", "asleep", "preempted"};
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddObject(m, "KINDS", names(KIND_NAMES, E_COUNT)) < 0 ||
        PyModule_AddObject(m, "STATES", names(states, 4)) < 0 ||
        PyModule_AddObject(m, "CPUS", names(cpus, 4)) < 0 ||
        PyModule_AddIntConstant(m, "WAIT_LOOP_BOUND_NS", WAIT_LOOP_BOUND_NS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
