/* The hot path of threadscope's traced Lock and RLock, in C.
 *
 * Why C: a Python-level __exit__/release runs bytecode while the real lock is still held, and
 * CPython may hand the GIL to another thread at the start of any Python function. That turns a
 * tight ``with lock: counter += 1`` loop, which never switches threads while holding the lock
 * when untraced, into a lock convoy (measured: 40x slower). Here nothing runs Python code
 * between the real acquire and the real release on the uncontended path, so the traced lock
 * switches threads exactly where the real one does.
 *
 * A contended wait and the hold that follows it are recorded here too, into a buffer of fixed
 * records that the writer thread in locks.py drains as bytes (raw/locks.bin). Why: any Python
 * code on that path is a place where CPython can hand the GIL over, and it runs exactly while
 * other threads queue for the lock: a lock-contended LRU cache ran 3-4x slower when the wait
 * and the hold were Python methods and events were dicts. The rest (unusual arguments, waits
 * with a timeout, the re-acquire inside Condition.wait, naming a lock the first time it is
 * seen) still calls back into the Python class in locks.py, which owns that bookkeeping.
 *
 * Built against the stable ABI (3.10+): one shared object serves every interpreter, including a
 * target started with --python. If it cannot be built, locks.py falls back to pure Python.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pythread.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    PyObject *lock;    /* the real lock */
    PyObject *try_;    /* lock.acquire */
    PyObject *free_;   /* lock.release */
    PyObject *origin;
    unsigned long owner;
    unsigned long owner_native;  /* the owner's OS thread id, for "held by" */
    char has_owner;
    char log;
    char seen;         /* the Python side knows this lock (it can name it) */
    long long depth;   /* RLock only: recursion depth through us */
    long long id;
    long long t_acq;
    long long n;
    long long contended;
    long long hold_ns;
    long long hold_max;
    long long written;
    long long waiters;
} Core;

static PyObject *TRY_ARGS;   /* (False,) */
static PyObject *WAIT_ARGS;  /* (True, -1) */
static PyObject *MINUS_ONE;  /* -1 */
static PyObject *S_WAIT, *S_ACQUIRE_SLOW, *S_LOG_HOLD, *S_SEEN_ONCE, *S_KIND;
static long long LONG_HOLD_NS = 1000000;

/* ---- records ---------------------------------------------------------------------------- */

/* The start of a contended wait (REC_WAIT: t0 its start, holder the owner's OS thread id or -1),
 * its end (REC_WAIT_END: t0 its start, t1 when it got the lock or gave up, ok) or a hold worth
 * writing (REC_HOLD: t0 acquired, t1 released). The start is its own record so that a wait that
 * never ends (a deadlock) is still on file. Native byte order; locks.py turns the records into
 * the same events its Python path writes. */
typedef struct {
    long long kind, pid, id, tid, t0, t1, ok, holder;
} Rec;
enum { REC_WAIT = 1, REC_HOLD = 2, REC_WAIT_END = 3 };
/* Drained every 0.25 s: this many is ~1 M records a second for 4 s, 256 MiB at most. */
#define MAX_RECS (4 * 1024 * 1024)
static Rec *RECS = NULL;
static Py_ssize_t N_RECS = 0, CAP_RECS = 0;
static long long DROPPED = 0;
static long long PID = 0;
static int RECORDING = 0;     /* configure() was called: record here rather than in Python */
static PyObject *WAITING;     /* locks._waiting: ident -> what it waits for (deadlock snapshots) */

/* The calling thread's OS id, read once per thread (a syscall) and kept in thread-local
 * storage; a fork's child starts afresh. The fast path stamps every owner with it. */
static __thread unsigned long MY_NATIVE = 0;

static void
forget_native_id(void)
{
    MY_NATIVE = 0;
}

static inline unsigned long
native_id(void)
{
    if (MY_NATIVE == 0)
        MY_NATIVE = PyThread_get_thread_native_id();
    return MY_NATIVE;
}

/* Append a record; the caller holds the GIL, which is what keeps appends atomic. */
static void
push(long long kind, long long id, long long tid, long long t0, long long t1, long long ok,
     long long holder)
{
    if (N_RECS == CAP_RECS) {
        if (CAP_RECS >= MAX_RECS) {
            DROPPED++;
            return;
        }
        Py_ssize_t cap = CAP_RECS ? CAP_RECS * 2 : 4096;
        Rec *grown = (Rec *)PyMem_Realloc(RECS, (size_t)cap * sizeof(Rec));
        if (grown == NULL) {
            DROPPED++;
            return;
        }
        RECS = grown;
        CAP_RECS = cap;
    }
    Rec *r = &RECS[N_RECS++];
    r->kind = kind;
    r->pid = PID;
    r->id = id;
    r->tid = tid;
    r->t0 = t0;
    r->t1 = t1;
    r->ok = ok;
    r->holder = holder;
}

static inline long long
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* what time.monotonic_ns() reads on Linux */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* -1: error, 0: busy, 1: taken */
static inline int
try_take(Core *self)
{
    if (self->try_ == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "threadscope lock core not initialised");
        return -1;
    }
    PyObject *r = PyObject_Call(self->try_, TRY_ARGS, NULL);
    if (r == NULL)
        return -1;
    int taken = (r == Py_True);
    Py_DECREF(r);
    return taken;
}

static inline void
took_fast(Core *self)
{
    self->owner = PyThread_get_thread_ident();
    self->owner_native = native_id();
    self->has_owner = 1;
    self->t_acq = mono_ns();
    self->n++;
}

static PyObject *
call_method(PyObject *self, PyObject *name, PyObject *args)
{
    PyObject *method = PyObject_GetAttr(self, name);
    if (method == NULL)
        return NULL;
    PyObject *r = PyObject_Call(method, args, NULL);
    Py_DECREF(method);
    return r;
}

static PyObject *
call_wait_forever(PyObject *self)
{
    PyObject *args = PyTuple_Pack(1, MINUS_ONE);
    if (args == NULL)
        return NULL;
    PyObject *r = call_method(self, S_WAIT, args);
    Py_DECREF(args);
    return r;
}

/* Tell the Python side about a lock the first time it is in a record, so it can name it. */
static void
mark_seen(Core *self)
{
    if (self->seen)
        return;
    self->seen = 1;
    PyObject *r = PyObject_CallMethodObjArgs((PyObject *)self, S_SEEN_ONCE, NULL);
    Py_XDECREF(r);
    PyErr_Clear();
}

/* 1 if the calling thread is already registered as waiting: that is a recorded Condition.wait
 * (or Event, Queue...) whose lock re-acquire belongs to it and which the Python path records. */
static int
nested(PyObject *key)
{
    return PyDict_GetItemWithError(WAITING, key) != NULL;
}

/* A contended acquire with no timeout: register the wait for snapshots, block on the real lock
 * (which lets go of the GIL), take ownership and write one record. From the moment the real
 * lock is ours to the return, no Python code runs. */
static PyObject *
wait_forever(PyObject *op, int rlock)
{
    Core *self = (Core *)op;
    if (!RECORDING)
        return call_wait_forever(op);
    unsigned long me = PyThread_get_thread_ident();
    PyObject *key = PyLong_FromUnsignedLong(me);
    if (key == NULL || nested(key)) {
        PyErr_Clear();
        Py_XDECREF(key);
        return call_wait_forever(op);
    }
    mark_seen(self);
    long long t0 = mono_ns();
    long long tid = (long long)native_id();
    long long holder = self->has_owner ? (long long)self->owner_native : -1;
    PyObject *kind = PyObject_GetAttr(op, S_KIND);
    PyObject *owner = self->has_owner ? PyLong_FromUnsignedLong(self->owner)
                                      : Py_NewRef(Py_None);
    PyObject *entry = NULL;
    if (kind != NULL && owner != NULL)
        entry = Py_BuildValue("(LOLLO)", self->id, kind, t0, tid, owner);
    Py_XDECREF(kind);
    Py_XDECREF(owner);
    if (entry == NULL || PyDict_SetItem(WAITING, key, entry) < 0)
        PyErr_Clear();  /* a snapshot without this wait, never a failed acquire */
    Py_XDECREF(entry);
    push(REC_WAIT, self->id, tid, t0, 0, 0, holder);
    self->waiters++;
    PyObject *r = PyObject_Call(self->try_, WAIT_ARGS, NULL);
    self->waiters--;
    long long t1 = mono_ns();
    int ok = r == Py_True;
    if (ok) {
        self->owner = me;
        self->owner_native = (unsigned long)tid;
        self->has_owner = 1;
        self->t_acq = t1;
        self->n++;
        self->contended++;
        self->log = 1;
        if (rlock)
            self->depth = 1;
    }
    PyObject *type, *value, *trace;
    PyErr_Fetch(&type, &value, &trace);  /* an interrupted acquire keeps its exception */
    if (PyDict_DelItem(WAITING, key) < 0)
        PyErr_Clear();
    PyErr_Restore(type, value, trace);
    Py_DECREF(key);
    push(REC_WAIT_END, self->id, tid, t0, t1, ok, -1);
    return r;
}

/* ---- Lock ------------------------------------------------------------------------------- */

static PyObject *
lock_enter(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    Core *self = (Core *)op;
    int taken = try_take(self);
    if (taken < 0)
        return NULL;
    if (taken) {
        took_fast(self);
        Py_RETURN_TRUE;
    }
    return wait_forever(op, 0);
}

static PyObject *
slow_acquire(PyObject *op, PyObject *args, PyObject *kwargs, int (*fast)(Core *))
{
    static char *names[] = {"blocking", "timeout", NULL};
    PyObject *blocking = Py_True, *timeout = MINUS_ONE;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:acquire", names, &blocking, &timeout))
        return NULL;
    if (timeout != MINUS_ONE) {
        int is_default = PyObject_RichCompareBool(timeout, MINUS_ONE, Py_EQ);
        if (is_default < 0)
            PyErr_Clear();
        else if (is_default)
            timeout = MINUS_ONE;
    }
    if (timeout == MINUS_ONE) {
        int taken = fast((Core *)op);
        if (taken < 0)
            return NULL;
        if (taken)
            Py_RETURN_TRUE;
    }
    PyObject *call_args = PyTuple_Pack(2, blocking, timeout);
    if (call_args == NULL)
        return NULL;
    PyObject *r = call_method(op, S_ACQUIRE_SLOW, call_args);
    Py_DECREF(call_args);
    return r;
}

static int
lock_fast(Core *self)
{
    int taken = try_take(self);
    if (taken > 0)
        took_fast(self);
    return taken;
}

static PyObject *
lock_acquire(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if ((kwargs == NULL || PyDict_Size(kwargs) == 0) && PyTuple_Size(args) == 0) {
        Core *self = (Core *)op;
        int taken = lock_fast(self);
        if (taken < 0)
            return NULL;
        if (taken)
            Py_RETURN_TRUE;
        return wait_forever(op, 0);
    }
    return slow_acquire(op, args, kwargs, lock_fast);
}

/* Close the hold in the counters, release the real lock, then (with the lock free, so a thread
 * switch here costs nothing) let Python write the hold if it is worth an event. */
static PyObject *
finish_hold(Core *self)
{
    long long t_acq = self->t_acq;
    long long held = mono_ns() - t_acq;
    self->hold_ns += held;
    if (held > self->hold_max)
        self->hold_max = held;
    int write = self->log || self->waiters > 0 || held >= LONG_HOLD_NS;
    self->log = 0;
    self->has_owner = 0;
    self->owner = 0;
    PyObject *r = PyObject_CallNoArgs(self->free_);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    if (write && RECORDING) {
        mark_seen(self);
        push(REC_HOLD, self->id, (long long)native_id(), t_acq, t_acq + held, 1, -1);
    }
    else if (write) {
        PyObject *args = Py_BuildValue("(LL)", t_acq, held);
        if (args != NULL) {
            PyObject *w = call_method((PyObject *)self, S_LOG_HOLD, args);
            Py_DECREF(args);
            Py_XDECREF(w);
        }
        PyErr_Clear();  /* never let recording break the program's release */
    }
    Py_RETURN_NONE;
}

static PyObject *
release_real(Core *self)
{
    if (self->lock == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "threadscope lock core not initialised");
        return NULL;
    }
    return PyObject_CallMethod(self->lock, "release", NULL);
}

static PyObject *
lock_release(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    Core *self = (Core *)op;
    if (!self->has_owner)  /* not held through us: the real lock raises or releases */
        return release_real(self);
    return finish_hold(self);
}

static PyObject *
lock_exit(PyObject *op, PyObject *Py_UNUSED(args))
{
    return lock_release(op, NULL);
}

/* ---- RLock ------------------------------------------------------------------------------ */

static int
rlock_fast(Core *self)
{
    int taken = try_take(self);
    if (taken > 0) {
        unsigned long me = PyThread_get_thread_ident();
        if (self->has_owner && self->owner == me) {
            self->depth++;
        }
        else {
            self->owner = me;
            self->owner_native = native_id();
            self->has_owner = 1;
            self->t_acq = mono_ns();
            self->n++;
            self->depth = 1;
        }
    }
    return taken;
}

static PyObject *
rlock_enter(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    int taken = rlock_fast((Core *)op);
    if (taken < 0)
        return NULL;
    if (taken)
        Py_RETURN_TRUE;
    return wait_forever(op, 1);
}

static PyObject *
rlock_acquire(PyObject *op, PyObject *args, PyObject *kwargs)
{
    if ((kwargs == NULL || PyDict_Size(kwargs) == 0) && PyTuple_Size(args) == 0)
        return rlock_enter(op, NULL);
    return slow_acquire(op, args, kwargs, rlock_fast);
}

static PyObject *
rlock_release(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    Core *self = (Core *)op;
    if (!self->has_owner || self->owner != PyThread_get_thread_ident())
        return release_real(self);  /* not ours: the real RLock raises RuntimeError */
    if (self->depth > 1) {
        self->depth--;
        return PyObject_CallNoArgs(self->free_);
    }
    self->depth = 0;
    return finish_hold(self);
}

static PyObject *
rlock_exit(PyObject *op, PyObject *Py_UNUSED(args))
{
    return rlock_release(op, NULL);
}

/* ---- attributes the Python class reads and writes ------------------------------------------ */

static PyObject *
get_owner(PyObject *op, void *Py_UNUSED(closure))
{
    Core *self = (Core *)op;
    if (!self->has_owner)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->owner);
}

static int
set_owner(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    Core *self = (Core *)op;
    if (value == NULL || value == Py_None) {
        self->has_owner = 0;
        self->owner = 0;
        return 0;
    }
    unsigned long owner = PyLong_AsUnsignedLong(value);
    if (owner == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    self->owner = owner;
    self->has_owner = 1;
    return 0;
}

static PyObject *
set_lock(PyObject *op, PyObject *lock)
{
    Core *self = (Core *)op;
    PyObject *try_ = PyObject_GetAttrString(lock, "acquire");
    if (try_ == NULL)
        return NULL;
    PyObject *free_ = PyObject_GetAttrString(lock, "release");
    if (free_ == NULL) {
        Py_DECREF(try_);
        return NULL;
    }
    Py_INCREF(lock);
    PyObject *old_lock = self->lock, *old_try = self->try_, *old_free = self->free_;
    self->lock = lock;
    self->try_ = try_;
    self->free_ = free_;
    Py_XDECREF(old_lock);
    Py_XDECREF(old_try);
    Py_XDECREF(old_free);
    Py_RETURN_NONE;
}

#define RW(name, type, field) {name, type, offsetof(Core, field), 0, NULL}
static PyMemberDef core_members[] = {
    {"_lock", T_OBJECT, offsetof(Core, lock), READONLY, NULL},
    {"_try", T_OBJECT, offsetof(Core, try_), READONLY, NULL},
    {"_free", T_OBJECT, offsetof(Core, free_), READONLY, NULL},
    RW("_origin", T_OBJECT, origin),
    RW("_log", T_BOOL, log),
    RW("_depth", T_LONGLONG, depth),
    RW("_id", T_LONGLONG, id),
    RW("_t_acq", T_LONGLONG, t_acq),
    RW("_n", T_LONGLONG, n),
    RW("_contended", T_LONGLONG, contended),
    RW("_hold_ns", T_LONGLONG, hold_ns),
    RW("_hold_max", T_LONGLONG, hold_max),
    RW("_written", T_LONGLONG, written),
    RW("_waiters", T_LONGLONG, waiters),
    {NULL}
};

static PyGetSetDef core_getset[] = {
    {"_owner", get_owner, set_owner, NULL, NULL},
    {NULL}
};

static int
core_traverse(PyObject *op, visitproc visit, void *arg)
{
    Core *self = (Core *)op;
    Py_VISIT(self->lock);
    Py_VISIT(self->try_);
    Py_VISIT(self->free_);
    Py_VISIT(self->origin);
    Py_VISIT(Py_TYPE(op));
    return 0;
}

static int
core_clear(PyObject *op)
{
    Core *self = (Core *)op;
    Py_CLEAR(self->lock);
    Py_CLEAR(self->try_);
    Py_CLEAR(self->free_);
    Py_CLEAR(self->origin);
    return 0;
}

static void
core_dealloc(PyObject *op)
{
    PyTypeObject *type = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    core_clear(op);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(op);
    Py_DECREF(type);
}

#define CORE_METHODS(prefix)                                                                     \
    {"acquire", (PyCFunction)(void (*)(void))prefix##_acquire, METH_VARARGS | METH_KEYWORDS,     \
     NULL},                                                                                      \
    {"acquire_lock", (PyCFunction)(void (*)(void))prefix##_acquire,                              \
     METH_VARARGS | METH_KEYWORDS, NULL},                                                        \
    {"__enter__", prefix##_enter, METH_NOARGS, NULL},                                            \
    {"release", prefix##_release, METH_NOARGS, NULL},                                            \
    {"release_lock", prefix##_release, METH_NOARGS, NULL},                                       \
    {"__exit__", prefix##_exit, METH_VARARGS, NULL},                                             \
    {"_set_lock", set_lock, METH_O, NULL},                                                       \
    {NULL}

static PyMethodDef lock_methods[] = {CORE_METHODS(lock)};
static PyMethodDef rlock_methods[] = {CORE_METHODS(rlock)};

static PyType_Slot lock_slots[] = {
    {Py_tp_doc, "C hot path of threadscope's traced Lock (see _lockcore.c)."},
    {Py_tp_methods, lock_methods},
    {Py_tp_members, core_members},
    {Py_tp_getset, core_getset},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_dealloc, core_dealloc},
    {0, NULL},
};

static PyType_Slot rlock_slots[] = {
    {Py_tp_doc, "C hot path of threadscope's traced RLock (see _lockcore.c)."},
    {Py_tp_methods, rlock_methods},
    {Py_tp_members, core_members},
    {Py_tp_getset, core_getset},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_dealloc, core_dealloc},
    {0, NULL},
};

static PyType_Spec lock_spec = {
    "tracer.instrument._lockcore.LockCore", sizeof(Core), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, lock_slots,
};

static PyType_Spec rlock_spec = {
    "tracer.instrument._lockcore.RLockCore", sizeof(Core), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, rlock_slots,
};

static PyObject *
set_long_hold(PyObject *Py_UNUSED(module), PyObject *value)
{
    long long ns = PyLong_AsLongLong(value);
    if (ns == -1 && PyErr_Occurred())
        return NULL;
    LONG_HOLD_NS = ns;
    Py_RETURN_NONE;
}

static PyObject *
monotonic_ns(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(mono_ns());
}

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *waiting)
{
    if (!PyDict_Check(waiting)) {
        PyErr_SetString(PyExc_TypeError, "configure: waiting must be a dict");
        return NULL;
    }
    PyObject *old = WAITING;
    Py_INCREF(waiting);
    WAITING = waiting;
    Py_XDECREF(old);
    PID = (long long)getpid();
    RECORDING = 1;
    Py_RETURN_NONE;
}

static PyObject *
stop_recording(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    RECORDING = 0;
    Py_RETURN_NONE;
}

static PyObject *
drain(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *data = PyBytes_FromStringAndSize((const char *)RECS,
                                               N_RECS * (Py_ssize_t)sizeof(Rec));
    if (data == NULL)
        return NULL;
    long long dropped = DROPPED;
    N_RECS = 0;
    DROPPED = 0;
    return Py_BuildValue("(NL)", data, dropped);
}

static PyObject *
forget(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    N_RECS = 0;
    DROPPED = 0;
    PID = (long long)getpid();  /* the thread ids were forgotten by the pthread_atfork handler */
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"set_long_hold_ns", set_long_hold, METH_O, "Holds this long are always written."},
    {"monotonic_ns", monotonic_ns, METH_NOARGS, "The clock the cores stamp holds with."},
    {"configure", configure, METH_O,
     "configure(waiting): record contended waits and holds here from now on; waiting is the\n"
     "dict of threads waiting (ident -> (id, kind, since, tid, holder ident))."},
    {"stop_recording", stop_recording, METH_NOARGS, "Back to the Python callbacks."},
    {"drain", drain, METH_NOARGS,
     "(records as bytes, records dropped since the last drain); empties the buffer."},
    {"forget", forget, METH_NOARGS, "In a fork's child: drop the parent's records."},
    {NULL}
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_lockcore",
    "C hot path for threadscope's lock instrumentation (stable ABI).", -1, module_methods,
};

PyMODINIT_FUNC
PyInit__lockcore(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    TRY_ARGS = PyTuple_Pack(1, Py_False);
    MINUS_ONE = PyLong_FromLong(-1);
    WAIT_ARGS = MINUS_ONE ? PyTuple_Pack(2, Py_True, MINUS_ONE) : NULL;
    S_WAIT = PyUnicode_InternFromString("_wait");
    S_ACQUIRE_SLOW = PyUnicode_InternFromString("_acquire_slow");
    S_LOG_HOLD = PyUnicode_InternFromString("_log_hold");
    S_SEEN_ONCE = PyUnicode_InternFromString("_seen_once");
    S_KIND = PyUnicode_InternFromString("_kind");
    if (!TRY_ARGS || !MINUS_ONE || !WAIT_ARGS || !S_WAIT || !S_ACQUIRE_SLOW || !S_LOG_HOLD
        || !S_SEEN_ONCE || !S_KIND)
        goto fail;
    pthread_atfork(NULL, NULL, forget_native_id);
    if (PyModule_AddIntConstant(module, "RECORD_SIZE", (long)sizeof(Rec)) < 0
        || PyModule_AddIntConstant(module, "REC_WAIT", REC_WAIT) < 0
        || PyModule_AddIntConstant(module, "REC_WAIT_END", REC_WAIT_END) < 0
        || PyModule_AddIntConstant(module, "REC_HOLD", REC_HOLD) < 0)
        goto fail;
    PyObject *lock_type = PyType_FromSpec(&lock_spec);
    if (lock_type == NULL || PyModule_AddObject(module, "LockCore", lock_type) < 0)
        goto fail;
    PyObject *rlock_type = PyType_FromSpec(&rlock_spec);
    if (rlock_type == NULL || PyModule_AddObject(module, "RLockCore", rlock_type) < 0)
        goto fail;
    return module;
fail:
    Py_DECREF(module);
    return NULL;
}
