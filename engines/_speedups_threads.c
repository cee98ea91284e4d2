/* concurview.engines._speedups: the threads engine's per-call wrappers in C (ThreadHook).
 *
 * A thread pool task passes through a handful of the engine's wrappers (time.sleep,
 * Condition.wait and notify, the work item's run, the lock factories), and as Python
 * functions their bytecode was most of what tracing a task cost. A ThreadHook is one
 * of these wrappers: the common case in C, the same events from the same caches, and
 * everything uncommon - a keyword argument, a timeout, a cache miss that needs the
 * engine's explanation - handed to the engine's Python function it replaces (kept as
 * the reference: CONCURVIEW_THREADS_HOOKS=python installs those instead), or to the
 * engine's methods that fill the caches (site, label_of, describe_call, wait_reason).
 *
 * Caches here are keyed by the address of a code object they own a reference to, so an
 * address they hold is that code's and no other's.
 *
 * A hook never raises into the program for its own failures: like the Python wrappers,
 * an Exception while explaining is counted in engine.errors and the real call goes on.
 */

#include "_speedups.h"

#include <stddef.h>
#include <structmember.h>

enum {
    K_SLEEP,      /* time.sleep(secs) */
    K_WAIT,       /* Condition.wait(cond, timeout=None) */
    K_NOTIFY,     /* Condition.notify(cond, n=1) */
    K_RUN,        /* concurrent.futures.thread._WorkItem.run(item) */
    K_RLOCK,      /* threading._CRLock(*args, **kwargs): the traced one when the program makes it */
    K_LOCK,       /* threading.Lock() */
    K_ACQUIRE,    /* TracedLock.acquire / __enter__: an uncontended acquire */
    K_RELEASE,    /* TracedLock.release / __exit__: nobody waiting */
    K_PUT,        /* TracedSimpleQueue.put: nobody waiting */
    K_GET,        /* TracedSimpleQueue.get: an item there */
    K_COUNT
};

static const char *kind_names[K_COUNT] = {"sleep", "wait", "notify", "run", "rlock", "lock", "acquire", "release",
                                          "put", "get"};

#define CODE_BITS 8
#define CODE_SLOTS (1 << CODE_BITS)
#define SITE_BITS 8
#define SITE_SLOTS (1 << SITE_BITS)
#define MAX_DEPTH 32  /* threads.py _MAX_DEPTH */
#define CALL_MAX 100  /* threads.py _CALL_MAX */

typedef struct {
    PyObject *code;   /* owned: its address is the key */
    PyObject *value;  /* owned */
} CodeSlot;

typedef struct {
    PyObject *code;
    int lasti;
    PyObject *value;  /* the `where` of that line (or None) */
} SiteSlot;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *dict;            /* __dict__: __doc__, __wrapped__ */
    int kind;
    EventBuffer *buf;          /* rec._events */
    PyObject *real;            /* the original callable */
    PyObject *python;          /* the engine's Python wrapper: every uncommon call */
    PyObject *engine;          /* the ThreadsEngine: site(), label_of(), describe_call(), wait_reason(), errors */
    PyObject *table;           /* sleep: secs -> reason; wait, notify: engine._woken_by */
    PyObject *traced;          /* lock factories: the traced type */
    PyObject *skip;            /* rlock: threading.RLock.__code__ (look one frame further) */
    PyObject *is_user;         /* lock factories: where.is_user */
    PyObject *aux;             /* get: SimpleQueue.qsize */
    PyObject *last_key, *last_reason;  /* sleep: the last secs object and its reason (a constant, mostly) */
    Py_ssize_t lock_at, waiters_at;  /* acquire, release, put, get: offsets of the traced type's slots (-1: none) */
    unsigned long long slow_calls;  /* calls handed to the Python side (tests: the common case needs none) */
    CodeSlot codes[CODE_SLOTS];     /* wait: code -> label ("" user, None, name); run: code -> where; locks: code -> bool */
    SiteSlot sites[SITE_SLOTS];     /* sleep, wait: (code, lasti) -> where */
} ThreadHook;

static PyTypeObject ThreadHookType, ThreadMethodType;

static PyObject *s_site, *s_label_of, *s_describe_call, *s_wait_reason, *s_errors, *s_lanes, *s_cause, *s_fn,
    *s_args, *s_kwargs, *s_cond_wait, *s_timed_out, *s_comma, *s_timer, *s_empty, *s_g, *s_block, *s_timeout;

/* -- helpers ------------------------------------------------------------------------------ */

static int
lookup_attr(PyObject *obj, PyObject *name, PyObject **result)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, result);
#else
    return _PyObject_LookupAttr(obj, name, result);
#endif
}

/* d.pop(key, None) without the None: a new reference, or NULL (with an exception set on error). */
static PyObject *
dict_pop(PyObject *d, PyObject *key)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *v = NULL;
    return PyDict_Pop(d, key, &v) > 0 ? v : NULL;
#else
    PyObject *v = _PyDict_Pop(d, key, Py_None);
    if (v == Py_None) {
        Py_DECREF(v);
        return NULL;  /* absent (a None value is taken for absent: a cause that is None) */
    }
    return v;
#endif
}

/* A failure while explaining: an Exception is counted (engine.errors += 1) and cleared, 0; anything
 * else (KeyboardInterrupt) stays raised, -1. */
static int
count_failure(ThreadHook *h)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyErr_Clear();
    PyObject *n = PyObject_GetAttr(h->engine, s_errors);
    PyObject *one = PyLong_FromLong(1);
    PyObject *n1 = n == NULL || one == NULL ? NULL : PyNumber_Add(n, one);
    Py_XDECREF(one);
    if (n1 == NULL || PyObject_SetAttr(h->engine, s_errors, n1) < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(n);
    Py_XDECREF(n1);
    return 0;
}

/* The Python wrapper, called as the hook was. */
static PyObject *
slow(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    h->slow_calls++;
    return PyObject_Vectorcall(h->python, args, nargsf, kwnames);
}

/* record(lane, kind, reason, where, cause) now: 0, or -1 with an exception set. */
static int
record(EventBuffer *b, int64_t lane, int kind, PyObject *reason, PyObject *where, int64_t cause)
{
    int drop = cv_room(b);
    if (drop != 0) {
        return drop < 0 ? -1 : 0;
    }
    return cv_push(b, cv_monotonic_ns() - b->t0, lane, kind, reason, where, cause, NULL);
}

/* CV_WAIT, or CV_BLOCK when `lane` is not the calling thread's own lane (thread_lanes, else
 * main_lane): only the engines of cooperative lanes (tasks, greenlets, generators) make another
 * lane current on a thread, and such a lane waiting here holds the whole thread instead of
 * handing it to its loop or hub. Called once per wait that blocks: a dict lookup is cheap. */
static int
stop_kind(EventBuffer *b, int64_t lane)
{
    int64_t own = b->main_lane;
    if (b->thread_lanes != NULL && PyDict_GET_SIZE(b->thread_lanes) != 0) {
        PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
        if (ident == NULL) {
            PyErr_Clear();
            return CV_WAIT;
        }
        PyObject *found = PyDict_GetItemWithError(b->thread_lanes, ident);  /* borrowed */
        Py_DECREF(ident);
        if (found != NULL) {
            own = cv_int64(found);
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();  /* a hook never raises into the program: an ordinary wait */
            return CV_WAIT;
        }
    }
    return lane == own ? CV_WAIT : CV_BLOCK;
}

static inline size_t
code_hash(PyObject *code)
{
    uint64_t p = (uint64_t)(uintptr_t)code >> 4;
    return (size_t)((p * 0x9E3779B97F4A7C15ull) >> (64 - CODE_BITS));
}

static inline size_t
site_hash(PyObject *code, int lasti)
{
    uint64_t p = ((uint64_t)(uintptr_t)code >> 4) ^ ((uint64_t)(unsigned)lasti << 20);
    return (size_t)((p * 0x9E3779B97F4A7C15ull) >> (64 - SITE_BITS));
}

static void
code_store(CodeSlot *s, PyObject *code, PyObject *value)
{
    Py_XSETREF(s->code, Py_NewRef(code));
    Py_XSETREF(s->value, Py_NewRef(value));
}

/* The `where` of frame f's line if it is the program's code (borrowed), from the site cache or
 * engine.site(f). NULL with an exception set on failure. */
static PyObject *
site_of(ThreadHook *h, PyFrameObject *f, PyObject *code)
{
    int lasti = PyFrame_GetLasti(f);
    SiteSlot *s = &h->sites[site_hash(code, lasti)];
    if (s->code == code && s->lasti == lasti) {
        return s->value;
    }
    h->slow_calls++;
    PyObject *entry = PyObject_CallMethodOneArg(h->engine, s_site, (PyObject *)f);
    if (entry == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 1) {
        Py_DECREF(entry);
        PyErr_SetString(PyExc_TypeError, "engine.site() returns (where, code)");
        return NULL;
    }
    Py_XSETREF(s->code, Py_NewRef(code));
    s->lasti = lasti;
    Py_XSETREF(s->value, Py_NewRef(PyTuple_GET_ITEM(entry, 0)));
    Py_DECREF(entry);
    return s->value;
}

/* -- time.sleep ------------------------------------------------------------------------------ */

static PyObject *
hook_sleep(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || kwnames != NULL) {
        return slow(h, args, nargsf, kwnames);  /* its TypeError */
    }
    PyObject *secs = args[0];
    PyFrameObject *caller = PyEval_GetFrame();  /* borrowed: the frame that called sleep */
    if (caller == NULL) {
        return slow(h, args, nargsf, kwnames);
    }
    PyCodeObject *code = PyFrame_GetCode(caller);
    PyObject *at = site_of(h, caller, (PyObject *)code);
    Py_DECREF(code);
    if (at == NULL) {
        goto failed;
    }
    if (at == Py_None) {
        /* A library's polling loop: plumbing, not a wait the program asked for. */
        return PyObject_Vectorcall(h->real, args, nargsf, NULL);
    }
    Py_INCREF(at);
    int64_t lane;
    if (cv_current_lane(h->buf, &lane) < 0) {
        Py_DECREF(at);
        goto failed;
    }
    PyObject *reason = secs == h->last_key ? h->last_reason : PyDict_GetItemWithError(h->table, secs);  /* borrowed */
    if (reason == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(at);
            goto failed;
        }
        PyObject *text = PyObject_Format(secs, PyFloat_CheckExact(secs) ? s_g : s_empty);  /* 0.1, not 0.09984353000072588 */
        reason = text == NULL ? NULL : PyUnicode_FromFormat("sleep %Us", text);
        Py_XDECREF(text);
        if (reason == NULL || (PyDict_GET_SIZE(h->table) < 1024 && PyDict_SetItem(h->table, secs, reason) < 0)) {
            Py_XDECREF(reason);
            Py_DECREF(at);
            goto failed;
        }
    }
    else {
        Py_INCREF(reason);
    }
    if (secs != h->last_key) {
        Py_XSETREF(h->last_key, Py_NewRef(secs));
        Py_XSETREF(h->last_reason, Py_NewRef(reason));
    }
    int rc = record(h->buf, lane, stop_kind(h->buf, lane), reason, at, CV_NONE);
    Py_DECREF(reason);
    if (rc < 0) {
        Py_DECREF(at);
        goto failed;
    }
    PyObject *result = PyObject_Vectorcall(h->real, args, nargsf, NULL);
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (record(h->buf, lane, CV_RUN, NULL, at, CV_NONE) < 0) {
        /* Python's finally would raise this one instead: the program sees the recorder's error. */
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        Py_XDECREF(result);
        Py_DECREF(at);
        return NULL;
    }
    PyErr_Restore(type, value, tb);
    Py_DECREF(at);
    return result;

failed:
    if (count_failure(h) < 0) {
        return NULL;
    }
    return PyObject_Vectorcall(h->real, args, nargsf, NULL);
}

/* -- Condition.wait ---------------------------------------------------------------------------- */

/* Why a wait starting at frame f waits: engine.why() with its caches here. *reason and *at are new
 * references. Returns 0, 1 when the engine must explain it (a Timer: wait_reason), -1 on error. */
static int
why(ThreadHook *h, PyFrameObject *start, PyObject *dflt, PyObject **reason, PyObject **at)
{
    PyObject *label = NULL;  /* owned */
    PyFrameObject *f = (PyFrameObject *)Py_XNewRef(start);
    *at = NULL;
    for (int depth = 0; depth < MAX_DEPTH && f != NULL; depth++) {
        PyCodeObject *code = PyFrame_GetCode(f);
        CodeSlot *s = &h->codes[code_hash((PyObject *)code)];
        if (s->code != (PyObject *)code) {
            h->slow_calls++;
            PyObject *found = PyObject_CallMethodOneArg(h->engine, s_label_of, (PyObject *)code);
            if (found == NULL) {
                Py_DECREF(code);
                Py_DECREF(f);
                Py_XDECREF(label);
                return -1;
            }
            code_store(s, (PyObject *)code, found);
            Py_DECREF(found);
        }
        PyObject *found = s->value;
        if (PyUnicode_Check(found) && PyUnicode_GET_LENGTH(found) == 0) {
            /* The program's own code: the wait happens at this line. */
            PyObject *where = site_of(h, f, (PyObject *)code);
            Py_DECREF(code);
            Py_DECREF(f);
            f = NULL;
            if (where == NULL) {
                Py_XDECREF(label);
                return -1;
            }
            *at = Py_NewRef(where);
            break;
        }
        Py_DECREF(code);
        if (found != Py_None) {
            Py_XSETREF(label, Py_NewRef(found));
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_XDECREF(f);
    if (*at == NULL) {
        *at = Py_NewRef(Py_None);
    }
    if (label != NULL && PyUnicode_Check(label) && PyUnicode_Compare(label, s_timer) == 0) {
        Py_DECREF(label);
        Py_CLEAR(*at);
        return 1;  /* "Timer: wait 2s, then call task": the engine reads the timer's locals */
    }
    *reason = label != NULL ? label : Py_NewRef(dflt);
    return 0;
}

/* A timeout that makes wait() return at once (timeout <= 0): 1, 0 not, -1 unknown (ask Python). */
static int
nonpositive(PyObject *timeout)
{
    if (PyFloat_CheckExact(timeout)) {
        return PyFloat_AS_DOUBLE(timeout) <= 0.0;
    }
    if (PyLong_CheckExact(timeout)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(timeout, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return -1;
        }
        return overflow < 0 || (overflow == 0 && v <= 0);
    }
    return -1;
}

static PyObject *
hook_wait(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || nargs < 1 || nargs > 2) {
        return slow(h, args, nargsf, kwnames);
    }
    PyObject *cond = args[0];
    if (nargs == 2 && args[1] != Py_None) {
        if (nonpositive(args[1]) == 1) {
            return PyObject_Vectorcall(h->real, args, 2, NULL);
        }
        return slow(h, args, nargsf, kwnames);  /* a timed wait: its reason names the timeout */
    }
    PyObject *call[2] = {cond, Py_None};
    int64_t lane;
    if (cv_current_lane(h->buf, &lane) < 0) {
        return NULL;  /* as the Python wrapper: current_lane() raising reaches the program */
    }
    PyObject *lanes;
    if (lookup_attr(cond, s_lanes, &lanes) < 0) {
        return NULL;
    }
    if (lanes == NULL) {
        lanes = PyList_New(0);
        if (lanes == NULL || PyObject_SetAttr(cond, s_lanes, lanes) < 0) {
            Py_XDECREF(lanes);
            return NULL;
        }
    }
    if (!PyList_Check(lanes)) {
        Py_DECREF(lanes);
        return slow(h, args, nargsf, kwnames);
    }
    PyObject *reason = NULL, *at = NULL;
    int w = why(h, PyEval_GetFrame(), s_cond_wait, &reason, &at);
    if (w < 0) {
        /* wait_reason's `except Exception`: counted, the default reason */
        if (count_failure(h) < 0) {
            Py_DECREF(lanes);
            return NULL;
        }
        reason = Py_NewRef(s_cond_wait);
        at = Py_NewRef(Py_None);
    }
    else if (w > 0) {
        /* engine.wait_reason(frame, "Condition.wait", None): the engine's own answer (and its error count). */
        h->slow_calls++;
        PyFrameObject *frame = PyEval_GetFrame();
        PyObject *r = PyObject_CallMethodObjArgs(h->engine, s_wait_reason, frame ? (PyObject *)frame : Py_None,
                                                 s_cond_wait, Py_None, NULL);
        if (r == NULL || !PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
            if (r != NULL) {
                PyErr_SetString(PyExc_TypeError, "engine.wait_reason() returns (reason, where)");
            }
            Py_XDECREF(r);
            Py_DECREF(lanes);
            return NULL;
        }
        reason = Py_NewRef(PyTuple_GET_ITEM(r, 0));
        at = Py_NewRef(PyTuple_GET_ITEM(r, 1));
        Py_DECREF(r);
    }
    PyObject *lane_obj = PyLong_FromLongLong(lane);
    PyObject *result = NULL;
    if (lane_obj == NULL || PyList_Append(lanes, lane_obj) < 0
        || record(h->buf, lane, stop_kind(h->buf, lane), reason, at, CV_NONE) < 0) {
        goto done;
    }
    result = PyObject_Vectorcall(h->real, call, 2, NULL);
    /* The condition's lock is held again here: notify() took us off the list if it woke us. */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int got = result != NULL ? PyObject_IsTrue(result) : 0;
    if (got < 0) {
        /* Python's `if got:` raising: that error, after the finally's events (as there: got is False). */
        PyErr_Fetch(&type, &value, &tb);
        got = 0;
        Py_CLEAR(result);
    }
    int rc;
    if (got) {
        /* woken_by.pop(lane, None) */
        int64_t c = CV_NONE;
        PyObject *cause = dict_pop(h->table, lane_obj);
        rc = 0;
        if (cause != NULL) {
            if (cause != Py_None) {
                c = cv_int64(cause);
            }
            rc = (c == -1 && PyErr_Occurred()) ? -1 : 0;
            Py_DECREF(cause);
        }
        else if (PyErr_Occurred()) {
            rc = -1;
        }
        if (rc == 0) {
            rc = record(h->buf, lane, CV_RUN, NULL, at, c);
        }
    }
    else {
        Py_ssize_t i, n = PyList_GET_SIZE(lanes);
        rc = 0;
        for (i = 0; i < n; i++) {
            int eq = PyObject_RichCompareBool(PyList_GET_ITEM(lanes, i), lane_obj, Py_EQ);
            if (eq < 0) {
                rc = -1;
                break;
            }
            if (eq) {
                rc = PyList_SetSlice(lanes, i, i + 1, NULL);
                break;
            }
        }
        if (rc == 0) {
            rc = record(h->buf, lane, CV_RUN, s_timed_out, at, CV_NONE);
        }
    }
    if (rc < 0) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        Py_CLEAR(result);
    }
    else {
        PyErr_Restore(type, value, tb);
    }

done:
    Py_XDECREF(lane_obj);
    Py_DECREF(lanes);
    Py_XDECREF(reason);
    Py_XDECREF(at);
    return result;
}

/* -- Condition.notify -------------------------------------------------------------------------- */

static PyObject *
hook_notify(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || nargs < 1 || nargs > 2 || (nargs == 2 && !PyLong_CheckExact(args[1]))) {
        return slow(h, args, nargsf, kwnames);
    }
    PyObject *cond = args[0];
    PyObject *lanes;
    if (lookup_attr(cond, s_lanes, &lanes) < 0) {
        return NULL;
    }
    if (lanes == NULL || (PyList_Check(lanes) && PyList_GET_SIZE(lanes) == 0)) {
        Py_XDECREF(lanes);
        return PyObject_Vectorcall(h->real, args, nargsf, NULL);
    }
    if (!PyList_Check(lanes)) {
        Py_DECREF(lanes);
        return slow(h, args, nargsf, kwnames);
    }
    Py_ssize_t n = 1;
    if (nargs == 2) {
        n = PyLong_AsSsize_t(args[1]);
        if (n == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            Py_DECREF(lanes);
            return slow(h, args, nargsf, kwnames);  /* a huge n */
        }
    }
    Py_ssize_t k = PyList_GET_SIZE(lanes);
    if (n < k) {
        k = n < 0 ? 0 : n;
    }
    PyObject *result = PyObject_Vectorcall(h->real, args, nargsf, NULL);
    if (result == NULL) {
        Py_DECREF(lanes);
        return NULL;
    }
    /* Still under the lock: the woken cannot run (and record it) before these are recorded. */
    int64_t me;
    if (cv_current_lane(h->buf, &me) < 0) {
        goto fail;
    }
    PyObject *me_obj = PyLong_FromLongLong(me);
    if (me_obj == NULL) {
        goto fail;
    }
    if (k > PyList_GET_SIZE(lanes)) {
        k = PyList_GET_SIZE(lanes);  /* the real notify ran Python: the list may have changed */
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        PyObject *lane_obj = PyList_GET_ITEM(lanes, i);
        int64_t lane = cv_int64(lane_obj);
        if ((lane == -1 && PyErr_Occurred()) || PyDict_SetItem(h->table, lane_obj, me_obj) < 0
            || record(h->buf, lane, CV_READY, NULL, NULL, me) < 0) {
            Py_DECREF(me_obj);
            goto fail;
        }
    }
    Py_DECREF(me_obj);
    if (PyList_SetSlice(lanes, 0, k, NULL) < 0) {
        goto fail;
    }
    Py_DECREF(lanes);
    return result;

fail:
    Py_DECREF(lanes);
    Py_DECREF(result);
    return NULL;
}

/* -- _WorkItem.run ------------------------------------------------------------------------------- */

/* f"{name}({', '.join([repr(a) for a in args])})" for a tuple of arguments (new reference). */
#define TEXT_ARGS 8
static PyObject *
call_text(PyObject *name, PyObject *args)
{
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n > TEXT_ARGS) {
        PyObject *parts = PyList_New(n);
        if (parts == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *r = PyObject_Repr(PyTuple_GET_ITEM(args, i));
            if (r == NULL) {
                Py_DECREF(parts);
                return NULL;
            }
            PyList_SET_ITEM(parts, i, r);
        }
        PyObject *joined = PyUnicode_Join(s_comma, parts);
        Py_DECREF(parts);
        if (joined == NULL) {
            return NULL;
        }
        PyObject *text = PyUnicode_FromFormat("%U(%U)", name, joined);
        Py_DECREF(joined);
        return text;
    }
    PyObject *reprs[TEXT_ARGS];
    Py_ssize_t length = PyUnicode_GET_LENGTH(name) + 2 + (n > 1 ? 2 * (n - 1) : 0);
    Py_UCS4 maxchar = PyUnicode_MAX_CHAR_VALUE(name);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = PyObject_Repr(PyTuple_GET_ITEM(args, i));
        if (r == NULL) {
            while (i-- > 0) {
                Py_DECREF(reprs[i]);
            }
            return NULL;
        }
        reprs[i] = r;
        length += PyUnicode_GET_LENGTH(r);
        if (PyUnicode_MAX_CHAR_VALUE(r) > maxchar) {
            maxchar = PyUnicode_MAX_CHAR_VALUE(r);
        }
    }
    PyObject *text = PyUnicode_New(length, maxchar);
    if (text != NULL) {
        int kind = PyUnicode_KIND(text);
        void *data = PyUnicode_DATA(text);
        Py_ssize_t at = PyUnicode_GET_LENGTH(name);
        PyUnicode_CopyCharacters(text, 0, name, 0, at);
        PyUnicode_WRITE(kind, data, at++, '(');
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i > 0) {
                PyUnicode_WRITE(kind, data, at++, ',');
                PyUnicode_WRITE(kind, data, at++, ' ');
            }
            Py_ssize_t len = PyUnicode_GET_LENGTH(reprs[i]);
            PyUnicode_CopyCharacters(text, at, reprs[i], 0, len);
            at += len;
        }
        PyUnicode_WRITE(kind, data, at, ')');
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_DECREF(reprs[i]);
    }
    return text;
}

/* Its run event, named after the call: 0, 1 for the Python wrapper to do it, or -1 with an exception set. */
static int
announce(ThreadHook *h, PyObject *item)
{
    PyObject *fn = NULL, *args = NULL, *kwargs = NULL, *reason = NULL, *at = NULL, *cause = NULL;
    int rc = -1;
    if ((fn = PyObject_GetAttr(item, s_fn)) == NULL || (args = PyObject_GetAttr(item, s_args)) == NULL
        || (kwargs = PyObject_GetAttr(item, s_kwargs)) == NULL) {
        goto done;
    }
    int has_kwargs = PyObject_IsTrue(kwargs);
    if (has_kwargs < 0) {
        goto done;
    }
    if (!has_kwargs && PyFunction_Check(fn) && !PyTuple_CheckExact(args)) {
        rc = 1;  /* the Python wrapper joins any iterable */
        goto done;
    }
    if (has_kwargs || !PyFunction_Check(fn)) {
        h->slow_calls++;
        PyObject *r = PyObject_CallMethodObjArgs(h->engine, s_describe_call, fn, args, kwargs, NULL);
        if (r == NULL) {
            goto done;
        }
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
            PyErr_SetString(PyExc_TypeError, "engine.describe_call() returns (text, where)");
            Py_DECREF(r);
            goto done;
        }
        reason = Py_NewRef(PyTuple_GET_ITEM(r, 0));
        at = Py_NewRef(PyTuple_GET_ITEM(r, 1));
        Py_DECREF(r);
    }
    else {
        reason = call_text(((PyFunctionObject *)fn)->func_name, args);
        if (reason == NULL) {
            goto done;
        }
        PyObject *code = ((PyFunctionObject *)fn)->func_code;
        CodeSlot *s = &h->codes[code_hash(code)];
        int long_text = PyUnicode_GET_LENGTH(reason) > CALL_MAX;
        if (long_text || s->code != code) {
            h->slow_calls++;
            PyObject *r = PyObject_CallMethodObjArgs(h->engine, s_describe_call, fn, args, kwargs, NULL);
            if (r == NULL) {
                goto done;
            }
            if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
                PyErr_SetString(PyExc_TypeError, "engine.describe_call() returns (text, where)");
                Py_DECREF(r);
                goto done;
            }
            if (long_text) {
                Py_SETREF(reason, Py_NewRef(PyTuple_GET_ITEM(r, 0)));
            }
            code_store(s, code, PyTuple_GET_ITEM(r, 1));  /* engine._call_sites[id(code)][0], kept */
            Py_DECREF(r);
        }
        at = Py_NewRef(s->value);
    }
    int64_t lane, c = CV_NONE;
    if (cv_current_lane(h->buf, &lane) < 0) {
        goto done;
    }
    /* item.__dict__.pop("_concurview_cause", None): the waker that handed it over (queue_wait). */
    if (lookup_attr(item, s_cause, &cause) < 0) {
        goto done;
    }
    if (cause != NULL) {
        if (PyObject_DelAttr(item, s_cause) < 0) {
            goto done;
        }
        if (cause != Py_None) {
            c = cv_int64(cause);
            if (c == -1 && PyErr_Occurred()) {
                goto done;
            }
        }
    }
    rc = record(h->buf, lane, CV_RUN, reason, at, c);

done:
    Py_XDECREF(fn);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(reason);
    Py_XDECREF(at);
    Py_XDECREF(cause);
    return rc;
}

static PyObject *
hook_run(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (kwnames != NULL || PyVectorcall_NARGS(nargsf) != 1) {
        return slow(h, args, nargsf, kwnames);
    }
    int rc = announce(h, args[0]);
    if (rc > 0) {
        return slow(h, args, nargsf, kwnames);
    }
    if (rc < 0 && count_failure(h) < 0) {
        return NULL;
    }
    return PyObject_Vectorcall(h->real, args, 1, NULL);
}

/* -- the lock factories ---------------------------------------------------------------------------- */

/* Whether code is the program's (where.is_user), cached: 1, 0, -1 on error. */
static int
user_code(ThreadHook *h, PyObject *code)
{
    CodeSlot *s = &h->codes[code_hash(code)];
    if (s->code != code) {
        h->slow_calls++;
        PyObject *r = PyObject_CallOneArg(h->is_user, code);
        if (r == NULL) {
            return -1;
        }
        int user = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (user < 0) {
            return -1;
        }
        code_store(s, code, user ? Py_True : Py_False);
    }
    return s->value == Py_True;
}

static inline int
is_skipped(PyObject *skip, PyObject *code)
{
    if (!PyTuple_Check(skip)) {
        return code == skip;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(skip); i++) {
        if (PyTuple_GET_ITEM(skip, i) == code) {
            return 1;
        }
    }
    return 0;
}

static PyObject *
hook_factory(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyFrameObject *f = PyEval_GetFrame();
    if (f == NULL || (h->kind == K_LOCK && (PyVectorcall_NARGS(nargsf) != 0 || kwnames != NULL))) {
        return slow(h, args, nargsf, kwnames);
    }
    PyCodeObject *code = PyFrame_GetCode(f);
    Py_INCREF(f);
    /* The factories' own callers (threading.RLock(), the lock type's call): look further up. `skip` is
     * one code object or a tuple of them. */
    for (int i = 0; i < 3 && h->skip != NULL && is_skipped(h->skip, (PyObject *)code); i++) {
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(code);
        Py_DECREF(f);
        if (back == NULL) {
            return slow(h, args, nargsf, kwnames);
        }
        f = back;
        code = PyFrame_GetCode(f);
    }
    Py_DECREF(f);
    int user = user_code(h, (PyObject *)code);
    Py_DECREF(code);
    if (user < 0) {
        return NULL;  /* as the Python factory: is_user() raising reaches the caller */
    }
    if (user) {
        return PyObject_CallNoArgs(h->traced);
    }
    return PyObject_Vectorcall(h->real, args, nargsf, kwnames);
}

/* -- TracedLock and TracedSimpleQueue: their uncontended case ------------------------------------ */

/* A slot of self (borrowed), or NULL when self is not of the traced type or the slot is unset. */
static inline PyObject *
slot(ThreadHook *h, PyObject *self, Py_ssize_t offset)
{
    if (offset < 0 || !PyObject_TypeCheck(self, (PyTypeObject *)h->traced)) {
        return NULL;
    }
    return *(PyObject **)((char *)self + offset);
}

/* `if self._waiters:` -> 0 (nobody waits), 1 (someone may), -1 (not a list: ask Python). */
static inline int
waiting(PyObject *waiters)
{
    if (waiters == Py_None) {
        return 0;
    }
    if (PyList_CheckExact(waiters)) {
        return PyList_GET_SIZE(waiters) != 0;
    }
    return -1;
}

static PyObject *
hook_acquire(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    /* self._lock.acquire(False) first, as the Python method does; only an acquire that would block goes there.
     * Here only the calls with nothing to check: acquire(), acquire(True), acquire(False). A timeout (or a
     * keyword) is the Python method's, which checks the arguments as the real lock does. */
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    int plain = kwnames == NULL && (nargs == 1 || (nargs == 2 && (args[1] == Py_True || args[1] == Py_False)));
    PyObject *lock = plain ? slot(h, args[0], h->lock_at) : NULL;
    if (lock != NULL) {
        PyObject *call[2] = {lock, Py_False};
        PyObject *r = PyObject_Vectorcall(h->real, call, 2, NULL);
        if (r != Py_False || (nargs == 2 && args[1] == Py_False)) {
            return r;  /* True (or its error); acquire(False)'s False */
        }
        Py_DECREF(r);
    }
    return slow(h, args, nargsf, kwnames);
}

static PyObject *
hook_release(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    /* release() takes no argument; __exit__(*exc) any number: the same hook serves both (h->aux). */
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && nargs >= 1 && (h->aux != NULL || nargs == 1)) {
        PyObject *lock = slot(h, args[0], h->lock_at), *waiters = slot(h, args[0], h->waiters_at);
        if (lock != NULL && waiters != NULL && waiting(waiters) == 0) {
            PyObject *r = PyObject_Vectorcall(h->real, &lock, 1, NULL);
            if (r == NULL) {
                return NULL;
            }
            Py_DECREF(r);
            Py_RETURN_NONE;
        }
    }
    return slow(h, args, nargsf, kwnames);
}

static PyObject *
hook_put(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames == NULL && nargs >= 2 && nargs <= 4) {
        PyObject *waiters = slot(h, args[0], h->waiters_at);
        if (waiters != NULL && waiting(waiters) == 0) {
            PyObject *r = PyObject_Vectorcall(h->real, args, 2, NULL);  /* _sq_put(self, item) */
            if (r == NULL) {
                return NULL;
            }
            Py_DECREF(r);
            Py_RETURN_NONE;
        }
    }
    return slow(h, args, nargsf, kwnames);
}

static PyObject *
hook_get(ThreadHook *h, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    /* An item there: _sq_get(self, False). An empty queue is the Python method's (its wait). */
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    int plain = kwnames == NULL;
    if (!plain && nargs + PyTuple_GET_SIZE(kwnames) <= 3) {
        /* work_queue.get(block=True), as the pool's workers call it: block and timeout by name */
        plain = 1;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i);
            int block = name == s_block || PyUnicode_CompareWithASCIIString(name, "block") == 0;
            int timeout = !block && (name == s_timeout || PyUnicode_CompareWithASCIIString(name, "timeout") == 0);
            if (!(block && nargs < 2) && !(timeout && nargs < 3)) {
                plain = 0;
            }
        }
    }
    if (plain && nargs >= 1 && nargs <= 3 && PyObject_TypeCheck(args[0], (PyTypeObject *)h->traced)) {
        PyObject *n = PyObject_Vectorcall(h->aux, args, 1, NULL);  /* qsize(self): under the GIL, as get() is */
        if (n == NULL) {
            return NULL;
        }
        int some = PyObject_IsTrue(n);
        Py_DECREF(n);
        if (some < 0) {
            return NULL;
        }
        if (some) {
            PyObject *call[2] = {args[0], Py_False};
            return PyObject_Vectorcall(h->real, call, 2, NULL);
        }
    }
    return slow(h, args, nargsf, kwnames);
}

/* The offset of slot `name` of type (a member descriptor of its own), or -1. */
static Py_ssize_t
slot_offset(PyObject *type, const char *name)
{
    PyObject *d = PyObject_GetAttrString(type, name);
    if (d == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t at = -1;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX) {
            at = m->offset;
        }
    }
    Py_DECREF(d);
    return at;
}

/* -- the type ---------------------------------------------------------------------------------- */

static vectorcallfunc impls[K_COUNT] = {
    (vectorcallfunc)hook_sleep, (vectorcallfunc)hook_wait, (vectorcallfunc)hook_notify,
    (vectorcallfunc)hook_run, (vectorcallfunc)hook_factory, (vectorcallfunc)hook_factory,
    (vectorcallfunc)hook_acquire, (vectorcallfunc)hook_release, (vectorcallfunc)hook_put, (vectorcallfunc)hook_get,
};

static PyObject *
hook_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kind", "events", "real", "python", "engine", "table", "traced", "skip", "is_user",
                             "aux", NULL};
    const char *kind;
    PyObject *buf, *real, *python, *engine, *table = NULL, *traced = NULL, *skip = NULL, *is_user = NULL,
        *aux = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO!OOO|$OOOOO", kwlist, &kind, &CV_EventBufferType, &buf, &real,
                                     &python, &engine, &table, &traced, &skip, &is_user, &aux)) {
        return NULL;
    }
    int k = -1;
    for (int i = 0; i < K_COUNT; i++) {
        if (strcmp(kind, kind_names[i]) == 0) {
            k = i;
        }
    }
    if (k < 0) {
        PyErr_Format(PyExc_ValueError, "no thread hook %s", kind);
        return NULL;
    }
    int method = k == K_WAIT || k == K_NOTIFY || k == K_RUN || k >= K_ACQUIRE;
    if (k >= K_ACQUIRE && (traced == NULL || !PyType_Check(traced) || (k == K_GET && (aux == NULL || !PyCallable_Check(aux))))) {
        PyErr_SetString(PyExc_TypeError, "this hook needs traced= (the type) (and get: aux=, its qsize)");
        return NULL;
    }
    if (type == &ThreadHookType && method) {
        type = &ThreadMethodType;  /* a method of a class: bound like a function */
    }
    if ((k == K_SLEEP || k == K_WAIT || k == K_NOTIFY) && (table == NULL || !PyDict_CheckExact(table))) {
        PyErr_SetString(PyExc_TypeError, "this hook needs table= (a dict)");
        return NULL;
    }
    if ((k == K_RLOCK || k == K_LOCK) && (traced == NULL || is_user == NULL)) {
        PyErr_SetString(PyExc_TypeError, "a lock factory needs traced= and is_user=");
        return NULL;
    }
    if (!PyCallable_Check(real) || !PyCallable_Check(python)) {
        PyErr_SetString(PyExc_TypeError, "real and python are callables");
        return NULL;
    }
    ThreadHook *h = (ThreadHook *)type->tp_alloc(type, 0);
    if (h == NULL) {
        return NULL;
    }
    h->kind = k;
    h->vectorcall = impls[k];
    h->buf = (EventBuffer *)Py_NewRef(buf);
    h->real = Py_NewRef(real);
    h->python = Py_NewRef(python);
    h->engine = Py_NewRef(engine);
    h->table = Py_XNewRef(table);
    h->traced = Py_XNewRef(traced);
    h->skip = skip == Py_None ? NULL : Py_XNewRef(skip);
    h->is_user = Py_XNewRef(is_user);
    h->aux = aux == Py_None ? NULL : Py_XNewRef(aux);
    h->lock_at = h->waiters_at = -1;
    if (k >= K_ACQUIRE) {
        h->lock_at = slot_offset(traced, "_lock");
        h->waiters_at = slot_offset(traced, "_waiters");
    }
    return (PyObject *)h;
}

static int
hook_traverse(ThreadHook *h, visitproc visit, void *arg)
{
    Py_VISIT(h->dict);
    Py_VISIT(h->buf);
    Py_VISIT(h->real);
    Py_VISIT(h->python);
    Py_VISIT(h->engine);
    Py_VISIT(h->table);
    Py_VISIT(h->traced);
    Py_VISIT(h->skip);
    Py_VISIT(h->is_user);
    Py_VISIT(h->aux);
    Py_VISIT(h->last_key);
    Py_VISIT(h->last_reason);
    for (int i = 0; i < CODE_SLOTS; i++) {
        Py_VISIT(h->codes[i].value);
    }
    for (int i = 0; i < SITE_SLOTS; i++) {
        Py_VISIT(h->sites[i].value);
    }
    return 0;
}

static int
hook_clear(ThreadHook *h)
{
    Py_CLEAR(h->dict);
    Py_CLEAR(h->buf);
    Py_CLEAR(h->real);
    Py_CLEAR(h->python);
    Py_CLEAR(h->engine);
    Py_CLEAR(h->table);
    Py_CLEAR(h->traced);
    Py_CLEAR(h->skip);
    Py_CLEAR(h->is_user);
    Py_CLEAR(h->aux);
    Py_CLEAR(h->last_key);
    Py_CLEAR(h->last_reason);
    for (int i = 0; i < CODE_SLOTS; i++) {
        Py_CLEAR(h->codes[i].code);
        Py_CLEAR(h->codes[i].value);
    }
    for (int i = 0; i < SITE_SLOTS; i++) {
        Py_CLEAR(h->sites[i].code);
        Py_CLEAR(h->sites[i].value);
    }
    return 0;
}

static void
hook_dealloc(ThreadHook *h)
{
    PyObject_GC_UnTrack(h);
    hook_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *
method_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    if (obj == NULL || obj == Py_None) {
        return Py_NewRef(self);
    }
    return PyMethod_New(self, obj);
}

static PyObject *
get_slow_calls(ThreadHook *h, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(h->slow_calls);
}

static PyObject *
get_kind(ThreadHook *h, void *Py_UNUSED(c))
{
    return PyUnicode_FromString(kind_names[h->kind]);
}

static PyObject *
get_python(ThreadHook *h, void *Py_UNUSED(c))
{
    return Py_NewRef(h->python);
}

static PyGetSetDef hook_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"slow_calls", (getter)get_slow_calls, NULL, "Calls handed to the engine's Python side.", NULL},
    {"kind", (getter)get_kind, NULL, "Which wrapper this is.", NULL},
    {"python", (getter)get_python, NULL, "The Python wrapper it stands for (and hands uncommon calls to).", NULL},
    {NULL},
};

#define HOOK_TYPE_BODY                                                                          \
    .tp_basicsize = sizeof(ThreadHook),                                                         \
    .tp_new = hook_new,                                                                         \
    .tp_dealloc = (destructor)hook_dealloc,                                                     \
    .tp_traverse = (traverseproc)hook_traverse,                                                 \
    .tp_clear = (inquiry)hook_clear,                                                            \
    .tp_call = PyVectorcall_Call,                                                               \
    .tp_vectorcall_offset = offsetof(ThreadHook, vectorcall),                                   \
    .tp_dictoffset = offsetof(ThreadHook, dict),                                                \
    .tp_getattro = PyObject_GenericGetAttr,                                                     \
    .tp_setattro = PyObject_GenericSetAttr,                                                     \
    .tp_getset = hook_getset

static PyTypeObject ThreadHookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurview.engines._speedups.ThreadHook",
    .tp_doc = "ThreadHook(kind, events, real, python, engine, *, table, traced, skip, is_user): one of the threads "
              "engine's wrappers (sleep, wait, notify, run, rlock, lock), the common case in C.",
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_BASETYPE,
    HOOK_TYPE_BODY,
};

/* The method kinds: bound like a Python function (and called unbound by LOAD_METHOD). */
static PyTypeObject ThreadMethodType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurview.engines._speedups.ThreadMethod",
    .tp_doc = "A ThreadHook that is a method of a class (Condition.wait, Condition.notify, _WorkItem.run).",
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_base = &ThreadHookType,
    .tp_descr_get = method_get,
    HOOK_TYPE_BODY,
};

int
cv_threads_register(PyObject *module)
{
    struct { PyObject **slot; const char *text; } strings[] = {
        {&s_site, "site"}, {&s_label_of, "label_of"}, {&s_describe_call, "describe_call"},
        {&s_wait_reason, "wait_reason"}, {&s_errors, "errors"}, {&s_lanes, "_concurview_lanes"},
        {&s_cause, "_concurview_cause"}, {&s_fn, "fn"}, {&s_args, "args"}, {&s_kwargs, "kwargs"},
        {&s_cond_wait, "Condition.wait"}, {&s_timed_out, "timed out"}, {&s_comma, ", "}, {&s_timer, "Timer"},
        {&s_empty, ""}, {&s_g, "g"}, {&s_block, "block"}, {&s_timeout, "timeout"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (*strings[i].slot == NULL && (*strings[i].slot = PyUnicode_InternFromString(strings[i].text)) == NULL) {
            return -1;
        }
    }
    if (PyType_Ready(&ThreadHookType) < 0 || PyType_Ready(&ThreadMethodType) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "ThreadHook", (PyObject *)&ThreadHookType) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "ThreadMethod", (PyObject *)&ThreadMethodType);
}
