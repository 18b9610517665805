/* The common lines of `perf script` output, read in C (tracer/model/perf_text.py).
 *
 * Why C: a 64-thread recording makes ~75,000 lines a second (context switches and futex calls
 * on the GIL's words); read by Python string methods they cost ~5 us each, a third of the
 * exact GIL analysis. Here a line costs ~0.1 us.
 *
 * This reads only what gil_exact._fast_line reads, and only when the line is plainly what it
 * looks like (ASCII digits where numbers are, single words where words are). Anything else is
 * handed back untouched, with its index in the chunk, and Python reads it exactly as before, so
 * both paths give the same events (tests/unit/test_perf_text.py checks it line by line).
 *
 * Built against the stable ABI (3.10+); without it the analysis reads every line in Python.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Event codes: indices into perf_text.KINDS. */
enum { K_WAIT, K_MUTEX_WAIT, K_NO_SLEEP, K_WAKE, K_HANDOFF_WAIT, K_HANDOFF_WAKE, K_SWITCH_OUT,
       K_PREEMPTED, K_SWITCH_IN };
enum { R_UNREAD = -2, R_SKIP = -1 };

#define FUTEX_CMD_MASK (~(128ULL | 256ULL))
#define EAGAIN_RETURN (-11LL)

typedef struct {
    unsigned long long cond[2], sw[2], mutex;
} words_t;

/* What str.split() splits on, of ASCII (lines with other bytes are left to Python). */
static int is_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

static int plain_ascii(const char *p, const char *end) {
    for (; p < end; p++)
        if ((unsigned char)*p >= 0x80) return 0;
    return 1;
}

static const char *skip_space(const char *p, const char *end) {
    while (p < end && is_space(*p)) p++;
    return p;
}

/* Decimal digits [p, end of digits): 1 to max_len of them, into *out; NULL if none or too many. */
static const char *digits(const char *p, const char *end, int max_len, long long *out) {
    long long value = 0;
    int n = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (++n > max_len) return NULL;
        value = value * 10 + (*p - '0');
        p++;
    }
    if (n == 0) return NULL;
    *out = value;
    return p;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex digits after "0x" (or "0X" with upper_x) at p, 1 to 16 of them, into *out; NULL
 * otherwise. */
static const char *hex_after_0x(const char *p, const char *end, int upper_x,
                                unsigned long long *out) {
    unsigned long long value = 0;
    int n = 0, v;
    if (end - p < 3 || p[0] != '0' || (p[1] != 'x' && !(upper_x && p[1] == 'X'))) return NULL;
    p += 2;
    while (p < end && (v = hex_value(*p)) >= 0) {
        if (++n > 16) return NULL;
        value = (value << 4) | (unsigned long long)v;
        p++;
    }
    if (n == 0) return NULL;
    *out = value;
    return p;
}

static int starts(const char *p, const char *end, const char *text) {
    size_t n = strlen(text);
    return (size_t)(end - p) >= n && memcmp(p, text, n) == 0;
}

/* The word at p (up to whitespace or end) equals text. */
static int word_is(const char *p, const char *word_end, const char *text) {
    size_t n = strlen(text);
    return (size_t)(word_end - p) == n && memcmp(p, text, n) == 0;
}

static const char *word_end(const char *p, const char *end) {
    while (p < end && !is_space(*p)) p++;
    return p;
}

static int classify(const words_t *w, unsigned long long uaddr, unsigned long long op) {
    unsigned long long cmd = op & FUTEX_CMD_MASK;
    int wait = cmd == 0 || cmd == 9, wake = cmd == 1 || cmd == 10;
    if (uaddr == w->cond[0] || uaddr == w->cond[1])
        return wait ? K_WAIT : wake ? K_WAKE : R_SKIP;
    if (uaddr == w->sw[0] || uaddr == w->sw[1])
        return wait ? K_HANDOFF_WAIT : wake ? K_HANDOFF_WAKE : R_SKIP;
    if (uaddr == w->mutex && wait) return K_MUTEX_WAIT;
    return R_SKIP;
}

/* One line [p, end) without its newline: an event code (with *t, *pid, *tid), R_SKIP for a line
 * the fast reading drops, or R_UNREAD for one Python must read. */
static int read_line(const char *p, const char *end, const words_t *w, long long *t,
                     long long *pid, long long *tid) {
    long long sec, frac;
    const char *q, *name, *name_end, *rest;
    if (!plain_ascii(p, end)) return R_UNREAD;  /* str.split() knows more whitespace there */
    p = skip_space(p, end);
    /* pid/tid */
    /* pids and tids fit in 32 bits (at most 4194304 on Linux): 9 digits */
    if (!(q = digits(p, end, 9, pid)) || q >= end || *q != '/') return R_UNREAD;
    if (!(p = digits(q + 1, end, 9, tid)) || p >= end || !is_space(*p)) return R_UNREAD;
    /* seconds.fraction: */
    p = skip_space(p, end);
    /* up to 9 digits of seconds (31 years of uptime): the sum stays inside 64 bits */
    if (!(q = digits(p, end, 9, &sec)) || q >= end || *q != '.') return R_UNREAD;
    p = q + 1;
    if (!(q = digits(p, end, 9, &frac)) || q >= end || *q != ':') return R_UNREAD;
    for (long n = (long)(q - p); n < 9; n++) frac *= 10;
    *t = sec * 1000000000LL + frac;
    p = q + 1;
    if (p >= end || !is_space(*p)) return R_UNREAD;
    name = skip_space(p, end);
    name_end = word_end(name, end);
    rest = skip_space(name_end, end);
    if (rest >= end) return R_UNREAD;  /* split(None, 3) would not give four parts */
    if (word_is(name, name_end, "PERF_RECORD_SWITCH")) {
        const char *first_end = word_end(rest, end);
        if (word_is(rest, first_end, "IN")) return K_SWITCH_IN;
        if (!word_is(rest, first_end, "OUT")) return R_SKIP;
        for (p = skip_space(first_end, end); p < end; p = skip_space(q, end)) {
            q = word_end(p, end);
            if (word_is(p, q, "preempt")) return K_PREEMPTED;
        }
        return K_SWITCH_OUT;
    }
    if (word_is(name, name_end, "syscalls:sys_enter_futex:")) {
        unsigned long long uaddr, op;
        if (!starts(rest, end, "uaddr: ")) return R_UNREAD;
        if (!(q = hex_after_0x(rest + 7, end, 0, &uaddr)) || !starts(q, end, ", op: "))
            return R_UNREAD;
        if (!(q = hex_after_0x(q + 6, end, 0, &op))) return R_UNREAD;
        if (q < end && !starts(q, end, ", ")) return R_UNREAD;
        return classify(w, uaddr, op);
    }
    if (word_is(name, name_end, "syscalls:sys_exit_futex:")) {
        unsigned long long value;
        long long signed_value;
        if (!(q = hex_after_0x(rest, end, 1, &value)) || (q < end && !is_space(*q)))
            return R_UNREAD;
        signed_value = (long long)value;
        return signed_value == EAGAIN_RETURN ? K_NO_SLEEP : R_SKIP;
    }
    return R_UNREAD;
}

static int read_words(PyObject *seq, unsigned long long *out, Py_ssize_t n) {
    if (!PyTuple_Check(seq) || PyTuple_Size(seq) != n) {
        PyErr_SetString(PyExc_TypeError, "expected a tuple of addresses");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsUnsignedLongLongMask(PyTuple_GetItem(seq, i));
        if (PyErr_Occurred()) return -1;
    }
    return 0;
}

/* One event as perf_text.RECORD reads it: what 4.8 million Python objects held in 800 MB (a
 * minute of 64 threads) is 32 bytes each here. */
typedef struct {
    long long t_ns, line;  /* the line number keeps perf's order among events of one instant */
    int pid, tid, kind, unused;
} record_t;

/* scan(chunk: bytes, cond: (a, b), switch: (a, b), mutex: int, first_line: int) ->
 * (records: bytes, unread: [(line number, line bytes)], lines): the chunk's events as packed
 * records, the lines left to Python, and how many lines the chunk had. */
static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *chunk, *cond, *sw, *mutex, *unread = NULL, *item, *records = NULL;
    words_t w;
    char *data;
    Py_ssize_t size, index = 0, count = 0, capacity;
    long long t, pid, tid, first_line;
    record_t *out;
    (void)self;
    if (!PyArg_ParseTuple(args, "SOOOL", &chunk, &cond, &sw, &mutex, &first_line)) return NULL;
    if (read_words(cond, w.cond, 2) < 0 || read_words(sw, w.sw, 2) < 0) return NULL;
    w.mutex = PyLong_AsUnsignedLongLongMask(mutex);
    if (PyErr_Occurred()) return NULL;
    if (PyBytes_AsStringAndSize(chunk, &data, &size) < 0) return NULL;
    /* a line of perf script is at least ~40 bytes: this many records always fit */
    capacity = size / 16 + 1;
    if (!(out = PyMem_Malloc((size_t)capacity * sizeof(record_t)))) return PyErr_NoMemory();
    if (!(unread = PyList_New(0))) goto fail;
    for (const char *p = data, *stop = data + size; p < stop; index++) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *line_end = nl ? nl : stop;
        int code = read_line(p, line_end, &w, &t, &pid, &tid);
        if (code == R_UNREAD) {
            item = Py_BuildValue("(Ly#)", first_line + (long long)index, p,
                                 (Py_ssize_t)((nl ? nl + 1 : stop) - p));
            if (!item || PyList_Append(unread, item) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
            Py_DECREF(item);
        } else if (code != R_SKIP) {
            if (count == capacity) {  /* only lines shorter than 16 bytes get here */
                record_t *grown = PyMem_Realloc(out, (size_t)capacity * 2 * sizeof(record_t));
                if (!grown) {
                    PyErr_NoMemory();
                    goto fail;
                }
                out = grown;
                capacity *= 2;
            }
            out[count].t_ns = t;
            out[count].line = first_line + (long long)index;
            out[count].pid = (int)pid;
            out[count].tid = (int)tid;
            out[count].kind = code;
            out[count].unused = 0;
            count++;
        }
        p = nl ? nl + 1 : stop;
    }
    records = PyBytes_FromStringAndSize((const char *)out, count * (Py_ssize_t)sizeof(record_t));
    PyMem_Free(out);
    if (!records) {
        Py_DECREF(unread);
        return NULL;
    }
    return Py_BuildValue("(NNn)", records, unread, index);
fail:
    PyMem_Free(out);
    Py_XDECREF(unread);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Read the common lines of a chunk of perf script output."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_perfscan", "perf script lines read in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__perfscan(void) {
    PyObject *m = PyModule_Create(&module), *kinds;
    if (!m) return NULL;
    /* the names of the codes, in order: perf_text checks them against its own */
    kinds = Py_BuildValue("(sssssssss)", "wait", "mutex_wait", "no_sleep", "wake",
                          "handoff_wait", "handoff_wake", "switch_out", "preempted", "switch_in");
    if (!kinds || PyModule_AddObject(m, "KINDS", kinds) < 0) {
        Py_XDECREF(kinds);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
