/* The hot path of threadscope's task recorder (tasks.py), in C.
 *
 * Why C: a pool of short tasks runs the work item's __init__ and run once per task, and the
 * event loop runs Handle._run once per callback. As Python wrappers the bookkeeping there cost
 * about 1.6 us per work item and 4-6 us per asyncio task (benchmarks/task_cost.py): 1.2-1.4x on
 * a pool of ~15 us tasks, where the bar is 1.10x. Here each hook is one C call: no
 * Python frame of ours, no bytecode, the same tuples appended to the same list.
 *
 * A hook is an object that behaves like a function defined in the class: it is stored in the
 * class (ThreadPoolExecutor.submit, _WorkItem.__init__ and .run, Handle._run), and the
 * Py_TPFLAGS_METHOD_DESCRIPTOR flag lets the interpreter call it with the instance first,
 * without making a bound method per call, as it does for a Python function.
 *
 * Only the common case is here. Naming a pool, a function, a loop or a task the first time,
 * a failed or cancelled item's outcome, a task's end, and the asyncio task that submitted an
 * item call back into tasks.py, which owns that bookkeeping; any failure of ours is handed to
 * faults.note and never raised into the program.
 *
 * Built against the stable ABI (3.10+), like _lockcore: one shared object for every
 * interpreter. If it cannot be built, tasks.py runs its pure-Python hooks.
 */
#define Py_LIMITED_API 0x030A0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef Py_XSETREF
#define Py_XSETREF(dst, src) do { PyObject *_old = (PyObject *)(dst); (dst) = (src); Py_XDECREF(_old); } while (0)
#endif

#ifndef Py_TPFLAGS_METHOD_DESCRIPTOR
/* The same bit on 3.8-3.14; the stable ABI's headers name it from 3.12 on. */
#define Py_TPFLAGS_METHOD_DESCRIPTOR (1UL << 17)
#endif

enum { SUBMIT = 1, HANDLE_RUN = 2, ITEM_INIT = 3, ITEM_RUN = 4, CREATE_TASK = 5, SCHEDULE = 6 };

/* tasks.py's state and slow paths, from configure() (all NULL before: the hooks then only
 * call the original). */
static PyObject *EVENTS, *FUNCTIONS, *TASKS;
static PyObject *POOL_ID, *FUNCTION_ID, *ASYNCIO_TASK_NOW, *OUTCOME, *UNTRACKED_STEP,
    *LOOP_ID, *FAULT, *T_ITEM, *THREAD_POOL, *CANCELLED;
static PyObject *RUNNING_LOOP;  /* asyncio.events._get_running_loop once asyncio is patched */
static PyObject *CURRENT_TASK;  /* asyncio.current_task, the same */
static PyObject *COROUTINE_ID, *TASK_ID, *SAFE_NAME, *ERROR_OF, *T_TASK, *T_DONE, *OK, *ERROR;
static long long PID = 0;
static long long NEXT_TASK = 0;
static long long NAME_CALLBACK_NS = 10000000;

static PyObject *METHOD_TYPE;   /* types.MethodType: a hook read as an attribute of an instance */
static PyObject *HAS_SELF;      /* callback type -> whether it has __self__ (asked once) */
static PyObject *S_FUTURE, *S_FN, *S_ARGS, *S_KWARGS, *S_STAMP, *S_STATE,
    *S_EXCEPTION, *S_LOOP, *S_CALLBACK, *S_SELF, *S_CODE, *S_ATTR, *S_DONE, *S_CR_CODE,
    *S_GI_CODE, *S_GET_NAME, *S_CANCELLED, *S_CORO;

/* The executor whose submit() is running on this thread: the work item does not know it. */
static __thread PyObject *CURRENT_POOL = NULL;
/* This thread's OS id (gettid is a system call, 0.6 us here): read once per thread; the
 * forking thread forgets it in the child (pthread_atfork). */
static __thread long MY_TID = 0;

static void
forget_tid(void)
{
    MY_TID = 0;
}

static long
my_tid(void)
{
    if (MY_TID == 0)
        MY_TID = (long)syscall(SYS_gettid);
    return MY_TID;
}

static long long
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* An exception of ours is set: hand it to faults.note (tasks._fault) and clear it. */
static void
fault(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (FAULT != NULL && value != NULL) {
        PyObject *r = PyObject_CallFunctionObjArgs(FAULT, value, NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static int
append(PyObject *event)
{
    if (event == NULL)
        return -1;
    int rc = PyList_Append(EVENTS, event);
    Py_DECREF(event);
    return rc;
}

/* A tuple of n new references, which it takes (also on failure); a NULL among them fails.
 * Why not Py_BuildValue: its format parsing cost ~1,000 instructions per event. */
static PyObject *
steal_tuple(Py_ssize_t n, PyObject **items)
{
    PyObject *tuple = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (items[i] == NULL)
            goto fail;
    tuple = PyTuple_New(n);
    if (tuple == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SetItem(tuple, i, items[i]);  /* cannot fail on a new tuple */
    return tuple;
fail:
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

static PyObject *
ref(PyObject *obj)
{
    Py_INCREF(obj);
    return obj;
}

/* An attribute, or NULL without an exception when it is missing. */
static PyObject *
optional_attr(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_AttributeError))
        PyErr_Clear();
    return value;
}

/* ---- records ---------------------------------------------------------------------------- */

/* The common events as fixed records, drained by tasks.py's writer thread as bytes: no Python
 * object per event, and no marshal of them (as tuples, a flush every 0.25 s marshalled ~2,000
 * instructions per work item while holding the GIL). Native byte order; tracer.model.tasks
 * turns them back into the tuples tasks.py writes for the rest. */
typedef struct {
    long long kind, v[9];
} Rec;
/* REC_ITEM: an item that ran and returned: item, pool, fn, submit_ns, submit tid, asyncio
 * task, start_ns, end_ns, worker tid. REC_STEP: a callback the loop ran: loop, task or 0,
 * start_ns, end_ns, fn or 0. */
enum { REC_ITEM = 1, REC_STEP = 2 };
/* Drained every 0.25 s: 2 M records is ~8 M events a second; 160 MiB at most. */
#define MAX_RECS (2 * 1024 * 1024)
static Rec *RECS = NULL;
static Py_ssize_t N_RECS = 0, CAP_RECS = 0;
static long long DROPPED = 0;

static Rec *
new_record(long long kind)
{
    if (N_RECS == CAP_RECS) {
        Py_ssize_t cap = CAP_RECS ? CAP_RECS * 2 : 4096;
        Rec *grown = cap <= MAX_RECS ? (Rec *)realloc(RECS, (size_t)cap * sizeof(Rec)) : NULL;
        if (grown == NULL) {
            DROPPED++;
            return NULL;
        }
        RECS = grown;
        CAP_RECS = cap;
    }
    Rec *rec = &RECS[N_RECS++];
    memset(rec, 0, sizeof(Rec));
    rec->kind = kind;
    return rec;
}

/* A Python int of ours (a number tasks.py gave) as a C one; -1 and an exception if not. */
static long long
as_number(PyObject *value)
{
    if (value == NULL)
        return -1;
    long long n = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return n;
}

/* Our number of a pool or a loop (the attribute tasks.py sets on it), declared by tasks.py's
 * ``declare(obj[, kind])`` the first time; a new reference, or NULL and an exception. */
static PyObject *
our_number(PyObject *obj, PyObject *declare, PyObject *kind)
{
    PyObject *number = optional_attr(obj, S_ATTR);
    if (number != NULL || PyErr_Occurred())
        return number;
    return PyObject_CallFunctionObjArgs(declare, obj, kind, NULL);
}

/* ---- thread pools ------------------------------------------------------------------------ */

/* Code object -> our function number, by address: a code object's hash is computed afresh on
 * every dict lookup (~400 instructions). An entry keeps its code object alive, so an address
 * is never reused while it is here; FUNCTIONS (tasks.py) stays the truth. */
#define CODE_CACHE 64
static PyObject *CACHED_CODE[CODE_CACHE];
static long long CACHED_NUMBER[CODE_CACHE];

/* A code object's number if tasks.py declared it (-2 if not), or -1 and an exception. */
static long long
code_number(PyObject *code)
{
    size_t slot = ((size_t)code >> 4) % CODE_CACHE;
    if (CACHED_CODE[slot] == code)
        return CACHED_NUMBER[slot];
    PyObject *known = PyDict_GetItemWithError(FUNCTIONS, code);
    if (known == NULL)
        return PyErr_Occurred() ? -1 : -2;
    long long n = PyLong_AsLongLong(known);
    if (n == -1 && PyErr_Occurred())
        return -1;
    Py_INCREF(code);
    Py_XSETREF(CACHED_CODE[slot], code);
    CACHED_NUMBER[slot] = n;
    return n;
}

/* The number of what ``obj`` runs: its code object's (the attribute ``code_attr``, then
 * ``other_attr``), else what tasks.py's ``declare(obj)`` says (it declares it the first time). */
static long long
number_of(PyObject *obj, PyObject *code_attr, PyObject *other_attr, PyObject *declare)
{
    PyObject *code = optional_attr(obj, code_attr);
    if (code == NULL && !PyErr_Occurred() && other_attr != NULL)
        code = optional_attr(obj, other_attr);
    if (code != NULL) {
        long long n = code_number(code);
        Py_DECREF(code);
        if (n != -2)
            return n;
    }
    if (PyErr_Occurred())
        return -1;
    return as_number(PyObject_CallFunctionObjArgs(declare, obj, NULL));
}

static long long
function_number(PyObject *fn)
{
    return number_of(fn, S_CODE, NULL, FUNCTION_ID);
}

static void
forget_functions(void)
{
    for (int i = 0; i < CODE_CACHE; i++)
        Py_CLEAR(CACHED_CODE[i]);
}

/* The stamp of a work item: a small C object in the item's ``_threadscope`` attribute (not C
 * fields of the item: on 3.13 a C base class costs the item its inline attribute values, and
 * every attribute access of _WorkItem.run got slower). Items not yet run are on a list, which
 * holds their stamps, each stamp its item (for what finish() says of those still queued or
 * running); running unlinks it. */
typedef struct Stamp {
    PyObject_HEAD
    struct Stamp *prev, *next;
    PyObject *item;  /* while pending */
    long long number, pool, fn, submit_ns, submit_tid, task, start_ns;
} Stamp;

static PyTypeObject *STAMP_TYPE;
static Stamp *FIRST_PENDING = NULL;
static long long NEXT_ITEM = 0;

static void
unlink_pending(Stamp *stamp)
{
    if (stamp->item == NULL)
        return;
    if (stamp->prev)
        stamp->prev->next = stamp->next;
    else
        FIRST_PENDING = stamp->next;
    if (stamp->next)
        stamp->next->prev = stamp->prev;
    stamp->prev = stamp->next = NULL;
    Py_CLEAR(stamp->item);
    Py_DECREF((PyObject *)stamp);  /* the list's reference */
}

static void
stamp_dealloc(PyObject *op)
{
    PyTypeObject *type = Py_TYPE(op);
    Py_CLEAR(((Stamp *)op)->item);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(op);
    Py_DECREF(type);
}

static PyType_Slot stamp_slots[] = {
    {Py_tp_doc, "A work item's submit, as threadscope's task recorder stamped it."},
    {Py_tp_dealloc, stamp_dealloc},
    {0, NULL},
};

static PyType_Spec stamp_spec = {
    "tracer.instrument._taskcore.Stamp", sizeof(Stamp), 0, Py_TPFLAGS_DEFAULT, stamp_slots,
};

static PyObject *
stamp_tuple(Stamp *stamp)
{
    return Py_BuildValue("(LLLLLL)", stamp->number, stamp->pool, stamp->fn, stamp->submit_ns,
                         stamp->submit_tid, stamp->task);
}

static int
stamp_submit(PyObject *item, PyObject *fn)
{
    long long now = mono_ns(), pool_no = 0, fn_no, task_no = 0;
    PyObject *executor = CURRENT_POOL;
    if (executor != NULL) {
        pool_no = as_number(our_number(executor, POOL_ID, THREAD_POOL));
        if (pool_no == -1 && PyErr_Occurred())
            return -1;
    }
    fn_no = function_number(fn);
    if (fn_no == -1 && PyErr_Occurred())
        return -1;
    if (RUNNING_LOOP != NULL) {
        PyObject *loop = PyObject_CallNoArgs(RUNNING_LOOP);
        if (loop == NULL)
            return -1;
        int in_loop = loop != Py_None;
        Py_DECREF(loop);
        if (in_loop) {
            task_no = as_number(PyObject_CallFunctionObjArgs(ASYNCIO_TASK_NOW, NULL));
            if (task_no == -1 && PyErr_Occurred())
                return -1;
        }
    }
    Stamp *stamp = PyObject_New(Stamp, STAMP_TYPE);
    if (stamp == NULL)
        return -1;
    stamp->prev = stamp->next = NULL;
    stamp->item = NULL;
    stamp->number = ++NEXT_ITEM;
    stamp->pool = pool_no;
    stamp->fn = fn_no;
    stamp->submit_ns = now;
    stamp->submit_tid = my_tid();
    stamp->task = task_no;
    stamp->start_ns = 0;
    if (PyObject_SetAttr(item, S_STAMP, (PyObject *)stamp) < 0) {
        Py_DECREF((PyObject *)stamp);
        return -1;
    }
    /* onto the pending list, which takes our reference */
    Py_INCREF(item);
    stamp->item = item;
    stamp->next = FIRST_PENDING;
    if (FIRST_PENDING)
        FIRST_PENDING->prev = stamp;
    FIRST_PENDING = stamp;
    return 0;
}

static PyObject *
item_init(PyObject *original, int plain, PyObject *args, PyObject *kwargs)
{
    PyObject *item = PyTuple_GetItem(args, 0);
    PyObject *fn;
    if (plain && PyTuple_Size(args) == 5 && (kwargs == NULL || PyDict_Size(kwargs) == 0)) {
        /* _WorkItem.__init__ stores its four arguments and nothing else (3.10-3.13); another
         * version's is called as it is (tasks.py decides). */
        if (PyObject_SetAttr(item, S_FUTURE, PyTuple_GetItem(args, 1)) < 0
            || PyObject_SetAttr(item, S_FN, PyTuple_GetItem(args, 2)) < 0
            || PyObject_SetAttr(item, S_ARGS, PyTuple_GetItem(args, 3)) < 0
            || PyObject_SetAttr(item, S_KWARGS, PyTuple_GetItem(args, 4)) < 0)
            return NULL;
        fn = ref(PyTuple_GetItem(args, 2));
    }
    else {
        PyObject *r = PyObject_Call(original, args, kwargs);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
        fn = PyObject_GetAttr(item, S_FN);
        if (fn == NULL) {
            fault();
            Py_RETURN_NONE;
        }
    }
    if (EVENTS != NULL && stamp_submit(item, fn) < 0)
        fault();
    Py_DECREF(fn);
    Py_RETURN_NONE;
}

/* A work item ran from its start to end: a record, or (ITEM, stamp, start, end, worker,
 * outcome, error) when it raised or was cancelled. */
static int
write_item(PyObject *item, Stamp *stamp, long long end)
{
    PyObject *future = PyObject_GetAttr(item, S_FUTURE);
    PyObject *state = future ? PyObject_GetAttr(future, S_STATE) : NULL;
    PyObject *exc = state ? PyObject_GetAttr(future, S_EXCEPTION) : NULL;
    PyObject *outcome = NULL;
    int rc = -1;
    if (exc == NULL)
        goto done;
    long tid = my_tid();
    if (exc == Py_None && PyUnicode_Check(state)
        && PyUnicode_CompareWithASCIIString(state, "FINISHED") == 0) {
        Rec *rec = new_record(REC_ITEM);
        if (rec != NULL) {
            long long v[9] = {stamp->number, stamp->pool, stamp->fn, stamp->submit_ns,
                              stamp->submit_tid, stamp->task, stamp->start_ns, end, tid};
            memcpy(rec->v, v, sizeof(v));
        }
        rc = 0;
        goto done;
    }
    outcome = PyObject_CallFunctionObjArgs(OUTCOME, future, NULL);
    if (outcome == NULL)
        goto done;
    if (!PyTuple_Check(outcome) || PyTuple_Size(outcome) != 2) {
        PyErr_SetString(PyExc_TypeError, "_outcome returned no pair");
        goto done;
    }
    int cancelled = PyObject_RichCompareBool(PyTuple_GetItem(outcome, 0), CANCELLED, Py_EQ);
    if (cancelled < 0)
        goto done;
    PyObject *parts[] = {ref(T_ITEM), stamp_tuple(stamp),
                         cancelled ? ref(Py_None) : PyLong_FromLongLong(stamp->start_ns),
                         PyLong_FromLongLong(end), PyLong_FromLong(tid),
                         ref(PyTuple_GetItem(outcome, 0)), ref(PyTuple_GetItem(outcome, 1))};
    rc = append(steal_tuple(7, parts));
done:
    Py_XDECREF(future);
    Py_XDECREF(state);
    Py_XDECREF(exc);
    Py_XDECREF(outcome);
    return rc;
}

static PyObject *
item_run(PyObject *original, PyObject *args, PyObject *kwargs)
{
    PyObject *item = PyTuple_GetItem(args, 0);
    PyObject *stamp = EVENTS != NULL ? optional_attr(item, S_STAMP) : NULL;
    if (stamp != NULL && Py_TYPE(stamp) != STAMP_TYPE)
        Py_CLEAR(stamp);
    PyErr_Clear();
    if (stamp == NULL)
        return PyObject_Call(original, args, kwargs);
    Stamp *st = (Stamp *)stamp;  /* ours: pending until it has run */
    st->start_ns = mono_ns();
    PyObject *result = PyObject_Call(original, args, kwargs);
    long long end = mono_ns();
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);  /* _WorkItem.run raises only if the program's code does */
    unlink_pending(st);
    if (write_item(item, st, end) < 0)
        fault();
    PyErr_Restore(type, value, tb);
    Py_DECREF(stamp);
    return result;
}

static PyObject *
submit(PyObject *original, PyObject *args, PyObject *kwargs)
{
    PyObject *before = CURRENT_POOL;
    CURRENT_POOL = PyTuple_GetItem(args, 0);  /* borrowed: the caller holds it meanwhile */
    PyObject *result = PyObject_Call(original, args, kwargs);
    CURRENT_POOL = before;
    return result;
}

/* ---- asyncio ----------------------------------------------------------------------------- */

/* The object a callback is bound to (a task's step and wake-up are bound to the task), or NULL
 * without an exception. */
static PyObject *
owner_of(PyObject *callback)
{
    PyObject *type = (PyObject *)Py_TYPE(callback);
    PyObject *known = PyDict_GetItemWithError(HAS_SELF, type);
    if (known == NULL) {
        if (PyErr_Occurred())
            return NULL;
        PyObject *self = optional_attr(callback, S_SELF);
        if (self == NULL && PyErr_Occurred())
            return NULL;
        if (PyDict_SetItem(HAS_SELF, type, self ? Py_True : Py_False) < 0) {
            Py_XDECREF(self);
            return NULL;
        }
        return self;
    }
    return known == Py_True ? optional_attr(callback, S_SELF) : NULL;
}

/* A task's name as the record keeps it: a str as itself, anything else as tasks.py says. */
static PyObject *
task_name(PyObject *task)
{
    PyObject *name = PyObject_CallMethodObjArgs(task, S_GET_NAME, NULL);
    if (name == NULL || PyUnicode_CheckExact(name))
        return name;
    PyObject *text = PyObject_CallFunctionObjArgs(SAFE_NAME, name, NULL);
    Py_DECREF(name);
    return text;
}

/* The end of a task, written once (it is forgotten then): (DONE, task, t, outcome, error,
 * name); the name is read again, as asyncio.create_task(coro, name=...) names it late. */
static int
task_done(PyObject *task, PyObject *key, PyObject *number, long long end)
{
    if (PyDict_DelItem(TASKS, key) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            return -1;
        PyErr_Clear();
    }
    PyObject *outcome = NULL, *error = NULL;
    PyObject *cancelled = PyObject_CallMethodObjArgs(task, S_CANCELLED, NULL);
    int is_cancelled = cancelled ? PyObject_IsTrue(cancelled) : -1;
    Py_XDECREF(cancelled);
    if (is_cancelled < 0)
        return -1;
    if (is_cancelled) {
        outcome = ref(CANCELLED);
        error = ref(Py_None);
    }
    else {
        /* never exception(): it would mark the exception as retrieved */
        PyObject *exc = PyObject_GetAttr(task, S_EXCEPTION);
        if (exc == NULL)
            return -1;
        if (exc == Py_None) {
            outcome = ref(OK);
            error = ref(Py_None);
        }
        else {
            outcome = ref(ERROR);
            error = PyObject_CallFunctionObjArgs(ERROR_OF, exc, NULL);
        }
        Py_DECREF(exc);
    }
    PyObject *parts[] = {ref(T_DONE), ref(number), PyLong_FromLongLong(end), outcome, error,
                         task_name(task)};
    return append(steal_tuple(6, parts));
}

/* A task made by loop.create_task: (TASK, task, pid, loop, name, fn, created, parent). */
static int
declare_task(PyObject *loop, PyObject *task, PyObject *coro, long long created)
{
    PyObject *key = PyLong_FromVoidPtr(task), *parent = NULL, *loop_number = NULL;
    PyObject *number = NULL;
    long long parent_no = 0, fn;
    int rc = -1;
    if (key == NULL)
        return -1;
    int known = PyDict_Contains(TASKS, key);
    if (known != 0) {
        rc = known < 0 ? -1 : 0;
        goto done;
    }
    parent = PyObject_CallFunctionObjArgs(CURRENT_TASK, loop, NULL);
    if (parent == NULL)
        goto done;
    if (parent != Py_None) {
        PyObject *parent_key = PyLong_FromVoidPtr(parent);
        PyObject *found = parent_key ? PyDict_GetItemWithError(TASKS, parent_key) : NULL;
        Py_XDECREF(parent_key);
        if (found == NULL && PyErr_Occurred())
            goto done;
        parent_no = found ? PyLong_AsLongLong(found) : 0;
        if (parent_no == -1 && PyErr_Occurred())
            goto done;
    }
    loop_number = our_number(loop, LOOP_ID, NULL);
    if (loop_number == NULL)
        goto done;
    if (coro == NULL) {  /* Python's _task_id knows what to ask a task made without one */
        PyObject *r = PyObject_CallFunctionObjArgs(TASK_ID, task, loop_number, NULL);
        Py_XDECREF(r);
        rc = r ? 0 : -1;
        goto done;
    }
    fn = number_of(coro, S_CR_CODE, S_GI_CODE, COROUTINE_ID);
    if (fn == -1 && PyErr_Occurred())
        goto done;
    number = PyLong_FromLongLong(++NEXT_TASK);
    if (number == NULL || PyDict_SetItem(TASKS, key, number) < 0)
        goto done;
    PyObject *parts[] = {ref(T_TASK), ref(number), PyLong_FromLongLong(PID), ref(loop_number),
                         task_name(task), PyLong_FromLongLong(fn), PyLong_FromLongLong(created),
                         PyLong_FromLongLong(parent_no)};
    if (append(steal_tuple(8, parts)) < 0)
        goto done;
    PyObject *finished = PyObject_CallMethodObjArgs(task, S_DONE, NULL);
    int is_done = finished ? PyObject_IsTrue(finished) : -1;
    Py_XDECREF(finished);
    if (is_done < 0)
        goto done;
    /* an eager task (3.12+) that finished inside create_task */
    rc = is_done ? task_done(task, key, number, mono_ns()) : 0;
done:
    Py_DECREF(key);
    Py_XDECREF(parent);
    Py_XDECREF(loop_number);
    Py_XDECREF(number);
    return rc;
}

static PyObject *
create_task(PyObject *original, PyObject *args, PyObject *kwargs)
{
    long long created = mono_ns();
    PyObject *task = PyObject_Call(original, args, kwargs);
    if (task == NULL || EVENTS == NULL || CURRENT_TASK == NULL)
        return task;
    PyObject *coro = PyTuple_Size(args) > 1 ? PyTuple_GetItem(args, 1)
        : kwargs ? PyDict_GetItemWithError(kwargs, S_CORO) : NULL;  /* borrowed */
    if ((coro == NULL && PyErr_Occurred())
        || declare_task(PyTuple_GetItem(args, 0), task, coro, created) < 0)
        fault();
    return task;
}

static void
write_step_record(long long loop, long long task, long long start, long long end, long long fn)
{
    Rec *rec = new_record(REC_STEP);
    if (rec != NULL) {
        rec->v[0] = loop;
        rec->v[1] = task;
        rec->v[2] = start;
        rec->v[3] = end;
        rec->v[4] = fn;
    }
}

/* A callback the loop ran from start to end: a record, named with its task. */
static int
write_step(PyObject *handle, PyObject *task_types, long long start, long long end)
{
    PyObject *loop = NULL, *loop_number = NULL, *callback = NULL, *owner = NULL, *key = NULL;
    long long loop_no = -1, fn = 0;
    int rc = -1;
    loop = PyObject_GetAttr(handle, S_LOOP);
    if (loop == NULL)
        goto done;
    loop_number = our_number(loop, LOOP_ID, NULL);
    if (loop_number == NULL)
        goto done;
    loop_no = PyLong_AsLongLong(loop_number);
    if (loop_no == -1 && PyErr_Occurred())
        goto done;
    callback = PyObject_GetAttr(handle, S_CALLBACK);
    if (callback == NULL)
        goto done;
    owner = owner_of(callback);
    if (owner == NULL && PyErr_Occurred())
        goto done;
    if (owner != NULL && owner != Py_None) {
        key = PyLong_FromVoidPtr(owner);
        if (key == NULL)
            goto done;
        PyObject *number = PyDict_GetItemWithError(TASKS, key);  /* borrowed */
        if (number == NULL && PyErr_Occurred())
            goto done;
        if (number != NULL) {
            long long task_no = PyLong_AsLongLong(number);
            if (task_no == -1 && PyErr_Occurred())
                goto done;
            Py_INCREF(number);
            write_step_record(loop_no, task_no, start, end, 0);
            PyObject *finished = PyObject_CallMethodObjArgs(owner, S_DONE, NULL);
            int is_done = finished ? PyObject_IsTrue(finished) : -1;
            Py_XDECREF(finished);
            int ended = is_done == 1 ? task_done(owner, key, number, end) : 0;
            Py_DECREF(number);
            rc = is_done < 0 || ended < 0 ? -1 : 0;
            goto done;
        }
        int is_task = PyObject_IsInstance(owner, task_types);
        if (is_task < 0)
            goto done;
        if (is_task) {  /* made as asyncio.Task(coro) directly, or a late callback of a done one */
            PyObject *parts[] = {ref(owner), ref(loop_number), PyLong_FromLongLong(start),
                                 PyLong_FromLongLong(end)};
            PyObject *r = steal_tuple(4, parts);
            PyObject *called = r ? PyObject_Call(UNTRACKED_STEP, r, NULL) : NULL;
            Py_XDECREF(r);
            if (called == NULL)
                goto done;
            Py_DECREF(called);
            rc = 0;
            goto done;
        }
    }
    if (end - start >= NAME_CALLBACK_NS) {  /* a slow callback that is no task's: name it */
        fn = as_number(PyObject_CallFunctionObjArgs(FUNCTION_ID, callback, NULL));
        if (fn == -1 && PyErr_Occurred())
            goto done;
    }
    write_step_record(loop_no, 0, start, end, fn);
    rc = 0;
done:
    Py_XDECREF(loop);
    Py_XDECREF(loop_number);
    Py_XDECREF(callback);
    Py_XDECREF(owner);
    Py_XDECREF(key);
    return rc;
}

static PyObject *
handle_run(PyObject *original, PyObject *task_types, PyObject *args, PyObject *kwargs)
{
    if (EVENTS == NULL)
        return PyObject_Call(original, args, kwargs);
    long long start = mono_ns();
    PyObject *result = PyObject_Call(original, args, kwargs);
    long long end = mono_ns();
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (write_step(PyTuple_GetItem(args, 0), task_types, start, end) < 0)
        fault();
    PyErr_Restore(type, value, tb);
    return result;
}

/* A uvloop loop's call_soon and the like: ``rewrite(args)`` (Python) gives the arguments with
 * the callback timed, and the original is called from here, so that no frame of ours is on the
 * stack when the loop's debug mode notes where the handle was made. */
static PyObject *
schedule(PyObject *original, PyObject *rewrite, PyObject *args, PyObject *kwargs)
{
    PyObject *rewritten = PyObject_CallFunctionObjArgs(rewrite, args, NULL);
    if (rewritten == NULL || !PyTuple_Check(rewritten)) {
        Py_XDECREF(rewritten);
        fault();
        return PyObject_Call(original, args, kwargs);
    }
    PyObject *result = PyObject_Call(original, rewritten, kwargs);
    Py_DECREF(rewritten);
    return result;
}

/* ---- the hook object --------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int kind;
    int plain;            /* ITEM_INIT: store the four arguments instead of calling original */
    PyObject *original;   /* what the hook replaced, called by it */
    PyObject *extra;      /* HANDLE_RUN: the task types; SCHEDULE: the arguments' rewriter */
} Hook;

static int
hook_init(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"kind", "original", "extra", "plain", NULL};
    Hook *self = (Hook *)op;
    int kind, plain = 0;
    PyObject *original, *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO|Op", names, &kind, &original, &extra,
                                     &plain))
        return -1;
    if (kind < SUBMIT || kind > SCHEDULE || !PyCallable_Check(original)) {
        PyErr_SetString(PyExc_ValueError, "Hook(kind, original): unknown kind or not callable");
        return -1;
    }
    if (kind == HANDLE_RUN && !PyTuple_Check(extra)) {
        PyErr_SetString(PyExc_TypeError, "Hook(HANDLE_RUN, original, task_types): a tuple");
        return -1;
    }
    if (kind == SCHEDULE && !PyCallable_Check(extra)) {
        PyErr_SetString(PyExc_TypeError, "Hook(SCHEDULE, original, rewrite): a callable");
        return -1;
    }
    self->kind = kind;
    self->plain = plain;
    Py_INCREF(original);
    Py_XSETREF(self->original, original);
    Py_INCREF(extra);
    Py_XSETREF(self->extra, extra);
    return 0;
}

static PyObject *
hook_call(PyObject *op, PyObject *args, PyObject *kwargs)
{
    Hook *self = (Hook *)op;
    if (self->original == NULL || PyTuple_Size(args) < 1)
        return PyObject_Call(self->original ? self->original : Py_None, args, kwargs);
    switch (self->kind) {
    case SUBMIT:
        return submit(self->original, args, kwargs);
    case ITEM_INIT:
        return item_init(self->original, self->plain, args, kwargs);
    case ITEM_RUN:
        return item_run(self->original, args, kwargs);
    case CREATE_TASK:
        return create_task(self->original, args, kwargs);
    case SCHEDULE:
        return schedule(self->original, self->extra, args, kwargs);
    default:
        return handle_run(self->original, self->extra, args, kwargs);
    }
}

/* Read as an attribute of an instance, a hook is a bound method, as a function would be. */
static PyObject *
hook_get(PyObject *op, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(op);
        return op;
    }
    return PyObject_CallFunctionObjArgs(METHOD_TYPE, op, obj, NULL);
}

static PyObject *
hook_original_attr(PyObject *op, void *name)
{
    Hook *self = (Hook *)op;
    if (self->original == NULL)
        Py_RETURN_NONE;
    return PyObject_GetAttrString(self->original, (const char *)name);
}

static PyGetSetDef hook_getset[] = {
    {"__name__", hook_original_attr, NULL, NULL, "__name__"},
    {"__qualname__", hook_original_attr, NULL, NULL, "__qualname__"},
    {"__doc__", hook_original_attr, NULL, NULL, "__doc__"},
    {NULL},
};

static PyMemberDef hook_members[] = {
    {"__wrapped__", T_OBJECT, offsetof(Hook, original), READONLY, "What the hook replaced."},
    {NULL},
};

static int
hook_traverse(PyObject *op, visitproc visit, void *arg)
{
    Hook *self = (Hook *)op;
    Py_VISIT(self->original);
    Py_VISIT(self->extra);
    return 0;
}

static int
hook_clear(PyObject *op)
{
    Hook *self = (Hook *)op;
    Py_CLEAR(self->original);
    Py_CLEAR(self->extra);
    return 0;
}

static void
hook_dealloc(PyObject *op)
{
    PyTypeObject *type = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
    hook_clear(op);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(op);
    Py_DECREF(type);
}

static PyType_Slot hook_slots[] = {
    {Py_tp_doc, "A method of the standard library replaced by threadscope's task recorder."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, hook_init},
    {Py_tp_call, hook_call},
    {Py_tp_descr_get, hook_get},
    {Py_tp_getset, hook_getset},
    {Py_tp_members, hook_members},
    {Py_tp_traverse, hook_traverse},
    {Py_tp_clear, hook_clear},
    {Py_tp_dealloc, hook_dealloc},
    {0, NULL},
};

static PyType_Spec hook_spec = {
    "tracer.instrument._taskcore.Hook", sizeof(Hook), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_METHOD_DESCRIPTOR, hook_slots,
};

/* ---- module ------------------------------------------------------------------------------ */

static int
take(PyObject *from, const char *name, PyObject **into)
{
    PyObject *value = PyObject_GetAttrString(from, name);
    if (value == NULL)
        return -1;
    Py_XSETREF(*into, value);
    return 0;
}

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *tasks)
{
    if (take(tasks, "_events", &EVENTS) < 0
        || take(tasks, "_functions", &FUNCTIONS) < 0 || take(tasks, "_task_numbers", &TASKS) < 0
        || take(tasks, "_pool_id", &POOL_ID) < 0
        || take(tasks, "_function_id", &FUNCTION_ID) < 0
        || take(tasks, "_asyncio_task_now", &ASYNCIO_TASK_NOW) < 0
        || take(tasks, "_outcome", &OUTCOME) < 0
        || take(tasks, "_coroutine_id", &COROUTINE_ID) < 0
        || take(tasks, "_declare_task", &TASK_ID) < 0
        || take(tasks, "_safe_name", &SAFE_NAME) < 0 || take(tasks, "_error_of", &ERROR_OF) < 0
        || take(tasks, "TASK", &T_TASK) < 0 || take(tasks, "DONE", &T_DONE) < 0
        || take(tasks, "OK", &OK) < 0 || take(tasks, "ERROR", &ERROR) < 0
        || take(tasks, "_untracked_step", &UNTRACKED_STEP) < 0
        || take(tasks, "_loop_id", &LOOP_ID) < 0 || take(tasks, "_fault", &FAULT) < 0
        || take(tasks, "ITEM", &T_ITEM) < 0
        || take(tasks, "THREAD_POOL", &THREAD_POOL) < 0
        || take(tasks, "CANCELLED", &CANCELLED) < 0)
        return NULL;
    forget_functions();
    PID = (long long)getpid();
    PyObject *threshold = PyObject_GetAttrString(tasks, "NAME_CALLBACK_NS");
    if (threshold == NULL)
        return NULL;
    NAME_CALLBACK_NS = PyLong_AsLongLong(threshold);
    Py_DECREF(threshold);
    if (PyErr_Occurred())
        return NULL;
    if (!PyList_Check(EVENTS) || !PyDict_Check(FUNCTIONS) || !PyDict_Check(TASKS)) {
        PyErr_SetString(PyExc_TypeError, "configure: not the task recorder's module");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
watch_asyncio(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *running_loop, *current_task;
    if (!PyArg_ParseTuple(args, "OO", &running_loop, &current_task))
        return NULL;
    Py_INCREF(running_loop);
    Py_XSETREF(RUNNING_LOOP, running_loop);
    Py_INCREF(current_task);
    Py_XSETREF(CURRENT_TASK, current_task);
    Py_RETURN_NONE;
}

static PyObject *
next_item(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(++NEXT_ITEM);
}

static PyObject *
next_task(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(++NEXT_TASK);
}

static PyObject *
take_pending(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Stamp *stamp = FIRST_PENDING; stamp != NULL; stamp = stamp->next) {
        PyObject *start = stamp->start_ns ? PyLong_FromLongLong(stamp->start_ns) : ref(Py_None);
        PyObject *entry = Py_BuildValue("(ONN)", stamp->item, stamp_tuple(stamp), start);
        if (entry == NULL || PyList_Append(out, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(entry);
    }
    while (FIRST_PENDING != NULL)
        unlink_pending(FIRST_PENDING);
    return out;
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
    forget_functions();
    PID = (long long)getpid();
    N_RECS = 0;
    DROPPED = 0;
    while (FIRST_PENDING != NULL)
        unlink_pending(FIRST_PENDING);
    Py_RETURN_NONE;
}

static PyObject *
monotonic_ns(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(mono_ns());
}

static PyObject *
native_id(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(my_tid());
}

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_O,
     "configure(tasks module): record into its buffers, with its slow paths."},
    {"watch_asyncio", watch_asyncio, METH_VARARGS,
     "watch_asyncio(_get_running_loop, current_task): asyncio is imported; record its tasks."},
    {"forget", forget, METH_NOARGS,
     "In a fork's child: drop the parent's records, pending items and function numbers."},
    {"next_item", next_item, METH_NOARGS, "A new work item number (a process pool's)."},
    {"next_task", next_task, METH_NOARGS, "A new asyncio task number (tasks.py's)."},
    {"take_pending", take_pending, METH_NOARGS,
     "[(work item, its stamp, start or None)] of the items not yet done; forgets them."},
    {"drain", drain, METH_NOARGS,
     "(records as bytes, records dropped since the last drain); empties the buffer."},
    {"monotonic_ns", monotonic_ns, METH_NOARGS, "The clock the hooks stamp with."},
    {"native_id", native_id, METH_NOARGS, "The OS thread id the hooks stamp (cached)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_taskcore",
    "C hot path for threadscope's task recorder (stable ABI).", -1, module_methods,
};

#define INTERN(var, text) ((var = PyUnicode_InternFromString(text)) != NULL)

PyMODINIT_FUNC
PyInit__taskcore(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    PyObject *types = PyImport_ImportModule("types");
    METHOD_TYPE = types ? PyObject_GetAttrString(types, "MethodType") : NULL;
    Py_XDECREF(types);
    HAS_SELF = PyDict_New();
    if (!METHOD_TYPE || !HAS_SELF || !INTERN(S_FUTURE, "future") || !INTERN(S_FN, "fn")
        || !INTERN(S_ARGS, "args") || !INTERN(S_KWARGS, "kwargs")
        || !INTERN(S_STAMP, "_threadscope") || !INTERN(S_STATE, "_state") || !INTERN(S_EXCEPTION, "_exception")
        || !INTERN(S_LOOP, "_loop") || !INTERN(S_CALLBACK, "_callback")
        || !INTERN(S_SELF, "__self__") || !INTERN(S_CODE, "__code__")
        || !INTERN(S_ATTR, "_threadscope_task") || !INTERN(S_DONE, "done")
        || !INTERN(S_CR_CODE, "cr_code") || !INTERN(S_GI_CODE, "gi_code")
        || !INTERN(S_GET_NAME, "get_name")
        || !INTERN(S_CANCELLED, "cancelled") || !INTERN(S_CORO, "coro"))
        goto fail;
    pthread_atfork(NULL, NULL, forget_tid);
    if (PyModule_AddIntConstant(module, "SUBMIT", SUBMIT) < 0
        || PyModule_AddIntConstant(module, "ITEM_INIT", ITEM_INIT) < 0
        || PyModule_AddIntConstant(module, "ITEM_RUN", ITEM_RUN) < 0
        || PyModule_AddIntConstant(module, "CREATE_TASK", CREATE_TASK) < 0
        || PyModule_AddIntConstant(module, "SCHEDULE", SCHEDULE) < 0
        || PyModule_AddIntConstant(module, "REC_ITEM", REC_ITEM) < 0
        || PyModule_AddIntConstant(module, "REC_STEP", REC_STEP) < 0
        || PyModule_AddIntConstant(module, "RECORD_SIZE", (long)sizeof(Rec)) < 0
        || PyModule_AddIntConstant(module, "HANDLE_RUN", HANDLE_RUN) < 0)
        goto fail;
    STAMP_TYPE = (PyTypeObject *)PyType_FromSpec(&stamp_spec);
    if (STAMP_TYPE == NULL)
        goto fail;
    PyObject *hook_type = PyType_FromSpec(&hook_spec);
    if (hook_type == NULL || PyModule_AddObject(module, "Hook", hook_type) < 0)
        goto fail;
    return module;
fail:
    Py_DECREF(module);
    return NULL;
}
