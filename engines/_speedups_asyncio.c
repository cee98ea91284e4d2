/* concurview.engines._speedups: the asyncio engine's task step in C (TracedCoro).
 *
 * Each traced task's coroutine is wrapped in a TracedCoro, and the C Task drives
 * it with PyIter_Send: that lands in am_send below, so a step costs no Python
 * frame. A step makes the task's lane current on the loop's thread, records
 * `run`, sends into the real coroutine, and records why and where it stopped
 * (`wait`, and `ready` at once for a bare yield) from the wait-site cache that
 * the Python engine fills (engines/asyncio_engine.py, AsyncioEngine.resolve).
 *
 * Whatever explains something new - the first visit of a wait site, throw(), the
 * end of a task, who completed a future when no task was running - calls back
 * into the Python engine, so every explanation is written once, there, and reads
 * the same whichever implementation recorded it (PyTracedCoro is the other one).
 *
 * A hook never raises into the program: a failure of the tracing is counted and
 * reported once (AsyncioEngine._hook_failed) and the step goes on untraced. Only
 * what is not an Exception (KeyboardInterrupt from a signal handler that ran in a
 * slow path) still reaches the program, as it would have without us.
 */

#include "_speedups.h"

#include <stddef.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    PyObject *coro;        /* the task's own coroutine (or any awaitable iterator) */
    PyObject *lane_obj;    /* the task's lane, as an int object (what the engine's methods take) */
    int64_t lane;
    EventBuffer *buf;      /* rec._events */
    PyObject *rec;         /* the Recorder */
    PyObject *engine;      /* the AsyncioEngine: every slow path */
    PyObject *task_lanes;  /* engine.task_lanes: lanes of traced tasks (a set) */
    PyObject *where;       /* where the next step resumes: the def line, then each await's line */
    PyObject *sites;       /* the wait-site cache of the coroutine's code; NULL: always the slow path */
    PyObject *frame;       /* the coroutine's frame, from its first suspension until it ends */
    PyObject *site;        /* the site it stopped at last time (a tuple of `sites`), or NULL */
    int site_lasti;        /* ... and its bytecode offset: a task loops over the same awaits */
    PyObject *name, *qualname;
    PyObject *weakrefs;
    int64_t done_t;        /* monotonic ns when it finished (the engine's completer compares them) */
} TracedCoro;

static PyTypeObject TracedCoroType;

/* Interned names, made once in cv_asyncio_register. */
static PyObject *s__events, *s_task_lanes, *s_sites_of,
    *s_resolve, *s_dynamic_reason, *s_finish, *s_completer, *s__hook_failed, *s_add_done_callback,
    *s_cancelled, *s_cr_frame, *s_throw, *s_close, *s__coro, *s_value, *s___name__, *s___qualname__,
    *s_throw_, *s_cancelled_reason;

/* The coroutine type's own getters for cr_await and __qualname__: a direct call, no attribute lookup. */
static getter coro_await_get, coro_qualname_get;

/* -- small helpers ------------------------------------------------------------------------- */

/* The raised exception, normalised and with its traceback attached (or NULL), and the error cleared. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        /* An exception caught in Python has its __traceback__: the engine reads it. */
        PyException_SetTraceback(value, tb);
        Py_DECREF(tb);
    }
    Py_DECREF(type);
    return value;
#endif
}

/* Raise exc again (steals the reference). */
static void
restore_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

/* obj.name, or *result = NULL when it has none: 1 found, 0 not found, -1 error. */
static int
lookup_attr(PyObject *obj, PyObject *name, PyObject **result)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, result);
#else
    return _PyObject_LookupAttr(obj, name, result);
#endif
}

/* A coroutine's return value leaves send()/throw() as StopIteration(value). */
static void
set_stop_iteration(PyObject *value)
{
    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return;
    }
    /* An instance, so that a tuple or an exception as the value is not taken for its args. */
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
}

static PyObject *
send_result(PySendResult r, PyObject *result)
{
    if (r == PYGEN_NEXT) {
        return result;
    }
    if (r == PYGEN_RETURN) {
        set_stop_iteration(result);
        Py_DECREF(result);
    }
    return NULL;
}

/* A lane id held in a Python int; anything else (None) is no lane. */
static int64_t
lane_of(PyObject *o)
{
    if (o == NULL || !PyLong_Check(o)) {
        return CV_NONE;
    }
    int64_t v = cv_int64(o);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return CV_NONE;
    }
    return v;
}

static inline int64_t
now(TracedCoro *self)
{
    return cv_monotonic_ns() - self->buf->t0;
}

/* One event on this task's lane; a full batch is flushed (or the event dropped and counted) first. */
static int
emit(TracedCoro *self, int64_t t, int kind, PyObject *reason, PyObject *where, int64_t cause)
{
    int drop = cv_room(self->buf);
    if (drop != 0) {
        return drop < 0 ? -1 : 0;
    }
    return cv_push(self->buf, t, self->lane, kind, reason, where, cause, NULL);
}

/* The tracing failed (an error is set): count and report an Exception, and go on untraced.
 * Anything else (KeyboardInterrupt, SystemExit) is the program's: the first is kept in
 * *pending, to be raised when the step is over. */
static void
absorb(TracedCoro *self, PyObject **pending)
{
    PyObject *exc = take_exception();
    if (exc == NULL) {
        return;
    }
    if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception)) {
        if (pending != NULL && *pending == NULL) {
            *pending = exc;
        }
        else {
            Py_DECREF(exc);
        }
        return;
    }
    PyObject *r = PyObject_CallMethodOneArg(self->engine, s__hook_failed, exc);
    if (r == NULL) {
        PyErr_Clear();  /* reporting a failure must not fail */
    }
    Py_XDECREF(r);
    Py_DECREF(exc);
}

/* -- the lane bookkeeping ------------------------------------------------------------------ */

/* Make this task's lane current on the loop's thread; *prev gets the lane current before. */
static int
enter(TracedCoro *self, int64_t *prev)
{
    if (cv_current_lane(self->buf, prev) < 0) {
        return -1;
    }
    cv_lane_set(self->buf, self->lane);
    return 0;
}

/* The step is over: the lane that was current before it is again. */
static void
leave(TracedCoro *self, int64_t prev)
{
    cv_lane_set(self->buf, prev);
}

/* -- why and where a step stopped ---------------------------------------------------------- */

/* (reason, where) from the wait-site cache, or NULL for a miss (no error set). */
static int
cached_site(TracedCoro *self, PyObject *yielded, PyObject **reason, PyObject **where)
{
    PyObject *coro = self->coro;
    if (self->frame == NULL) {
        /* cr_frame is an audited read: the frame is kept from the first time. */
        PyObject *f = PyObject_GetAttr(coro, s_cr_frame);
        if (f == NULL) {
            return -1;
        }
        if (!PyFrame_Check(f)) {
            Py_DECREF(f);
            return 0;
        }
        self->frame = f;
    }
    int lasti = PyFrame_GetLasti((PyFrameObject *)self->frame);
    PyObject *site = self->site;
    if (site == NULL || self->site_lasti != lasti) {
        /* Another await than last time: the code's cache. (A site found there is right for
         * this coroutine for as long as its callee check below passes, so keeping it is.) */
        PyObject *key = PyLong_FromLong(lasti);
        if (key == NULL) {
            return -1;
        }
        site = PyDict_GetItemWithError(self->sites, key);
        Py_DECREF(key);
        if (site == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        if (!PyTuple_CheckExact(site) || PyTuple_GET_SIZE(site) != 4) {
            return 0;
        }
        Py_INCREF(site);
        Py_XSETREF(self->site, site);
        self->site_lasti = lasti;
    }
    Py_INCREF(site);  /* dynamic_reason() runs Python code, which may change the cache */
    /* The site is right for what the coroutine awaits now if the callee is the same code
     * (told by its qualified name: cr_code is an audited read too). */
    PyObject *inner = coro_await_get(coro, NULL);
    if (inner == NULL) {
        Py_DECREF(site);
        return -1;
    }
    PyObject *callee = PyCoro_CheckExact(inner) ? coro_qualname_get(inner, NULL) : Py_NewRef(Py_None);
    if (callee == NULL) {
        Py_DECREF(inner);
        Py_DECREF(site);
        return -1;
    }
    int hit = PyTuple_GET_ITEM(site, 0) == callee;
    Py_DECREF(callee);
    int rc = 0;
    if (!hit) {
        Py_CLEAR(self->site);  /* the engine's answer goes to the code's cache: read it there next time */
    }
    else {
        PyObject *if_none = PyTuple_GET_ITEM(site, 2), *if_future = PyTuple_GET_ITEM(site, 3);
        if (yielded == Py_None) {
            *reason = Py_NewRef(if_none);
        }
        else if (if_future != Py_None) {
            *reason = Py_NewRef(if_future);
        }
        else {
            /* `await sleep(0.3)` or a future awaited directly: a reason that depends on values. */
            *reason = PyObject_CallMethodObjArgs(self->engine, s_dynamic_reason, inner, yielded, NULL);
        }
        if (*reason == NULL) {
            rc = -1;
        }
        else {
            *where = Py_NewRef(PyTuple_GET_ITEM(site, 1));
            rc = 1;
        }
    }
    Py_DECREF(inner);
    Py_DECREF(site);
    return rc;
}

/* Why and where the step stopped: new references in *reason and *where. */
static int
explain(TracedCoro *self, PyObject *yielded, int use_cache, PyObject **reason, PyObject **where)
{
    if (use_cache && self->sites != NULL) {
        int found = cached_site(self, yielded, reason, where);
        if (found != 0) {
            return found < 0 ? -1 : 0;
        }
    }
    /* A miss: the engine walks the await chain (and fills the cache). */
    PyObject *sites = self->sites != NULL ? self->sites : Py_None;
    PyObject *r = PyObject_CallMethodObjArgs(self->engine, s_resolve, self->coro, yielded, sites, NULL);
    if (r == NULL) {
        return -1;
    }
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "resolve() must return (reason, where)");
        return -1;
    }
    *reason = Py_NewRef(PyTuple_GET_ITEM(r, 0));
    *where = Py_NewRef(PyTuple_GET_ITEM(r, 1));
    Py_DECREF(r);
    return 0;
}

/* The step stopped on `yielded`: wait (and ready again at once for a bare yield), or the marker on the future. */
static int
stopped(TracedCoro *self, PyObject *yielded, int use_cache, PyObject **pending)
{
    PyObject *reason = NULL, *where = NULL;
    if (explain(self, yielded, use_cache, &reason, &where) < 0) {
        absorb(self, pending);  /* the wait is still recorded, unexplained, where it was */
    }
    else {
        Py_SETREF(self->where, where);
    }
    int64_t t = now(self);
    if (emit(self, t, CV_WAIT, reason, self->where, CV_NONE) < 0) {
        absorb(self, pending);
    }
    Py_XDECREF(reason);
    if (yielded == Py_None) {
        /* A bare yield (sleep(0)): the task is back in the ready queue at once. */
        if (emit(self, t, CV_READY, NULL, NULL, self->lane) < 0) {
            absorb(self, pending);
        }
        return 0;
    }
    /* The marker goes first among the future's callbacks; the Task adds its wake-up next. */
    PyObject *stack[3] = {NULL, yielded, (PyObject *)self};
    PyObject *r = PyObject_VectorcallMethod(s_add_done_callback, stack + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return -1;  /* not ours to swallow, as in the Python engine */
        }
        PyErr_Clear();  /* a foreign awaitable: no ready event, nothing else changes */
    }
    Py_XDECREF(r);
    return 0;
}

/* The task ended: the engine records how (returned, cancelled, raised) - once a task. */
static void
finish(TracedCoro *self, PyObject *exc, PyObject **pending)
{
    Py_CLEAR(self->frame);  /* the finished frame holds the coroutine's locals: let them go now */
    Py_CLEAR(self->site);
    self->done_t = cv_monotonic_ns();
    PyObject *lane = self->lane_obj;
    PyObject *r = PyObject_CallMethodObjArgs(self->engine, s_finish, lane, self->where ? self->where : Py_None,
                                             exc ? exc : Py_None, NULL);
    if (r == NULL) {
        absorb(self, pending);
    }
    Py_XDECREF(r);
}

/* "throw CancelledError": the run reason of a step that throw() starts. */
static PyObject *
throw_reason(PyObject *args)
{
    PyObject *arg = PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0) : Py_None;
    PyTypeObject *tp = PyType_Check(arg) ? (PyTypeObject *)arg : Py_TYPE(arg);
    PyObject *name = PyType_GetName(tp);
    if (name == NULL) {
        return NULL;
    }
    PyObject *reason = PyUnicode_Concat(s_throw_, name);
    Py_DECREF(name);
    return reason;
}

/* coro.throw(*args), as PyIter_Send would report it. */
static PySendResult
throw_into(PyObject *coro, PyObject *args, PyObject **presult)
{
    *presult = NULL;
    PyObject *meth = PyObject_GetAttr(coro, s_throw);
    if (meth == NULL) {
        return PYGEN_ERROR;
    }
    PyObject *r = PyObject_Call(meth, args, NULL);
    Py_DECREF(meth);
    if (r != NULL) {
        *presult = r;
        return PYGEN_NEXT;
    }
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        return PYGEN_ERROR;
    }
    /* It returned: StopIteration carries the value. */
    PyObject *stop = take_exception();
    PyObject *value = PyObject_GetAttr(stop, s_value);
    Py_DECREF(stop);
    if (value == NULL) {
        return PYGEN_ERROR;
    }
    *presult = value;
    return PYGEN_RETURN;
}

/* -- a step -------------------------------------------------------------------------------- */

/* The lane of the task whose step runs on this thread now (CV_NONE: none). A step that starts
 * inside another task's step is an eager task's first step (3.12's eager_task_factory, or
 * Task(..., eager_start=True)): its creator is suspended in create_task() meanwhile, not running. */
static CV_THREAD_LOCAL int64_t stepping = CV_NONE;

/* The creator of an eager task waits for the child's first step (nested = 1), or runs again
 * after it (nested = 0), caused by the child. Failures are absorbed: the step goes on. */
static void
eager_parent(TracedCoro *self, int64_t parent, int waits, PyObject **pending)
{
    PyObject *reason = NULL;
    if (waits) {
        reason = PyUnicode_FromFormat("eager start of %U", self->name ? self->name : Py_None);
        if (reason == NULL) {
            absorb(self, pending);
            return;
        }
    }
    int drop = cv_room(self->buf);
    if (drop == 0) {
        drop = cv_push(self->buf, now(self), parent, waits ? CV_WAIT : CV_RUN, reason, NULL,
                       waits ? CV_NONE : self->lane, NULL);
    }
    if (drop < 0) {
        absorb(self, pending);
    }
    Py_XDECREF(reason);
}

/* One step of the task: send `value` (throw_args NULL) or throw(*throw_args) into the coroutine. */
static PySendResult
step(TracedCoro *self, PyObject *value, PyObject *throw_args, PyObject **presult)
{
    *presult = NULL;
    PyObject *coro = self->coro;
    if (coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TracedCoro is cleared");
        return PYGEN_ERROR;
    }
    Py_INCREF(coro);
    PyObject *pending = NULL;  /* a KeyboardInterrupt (...) met on the way, raised when the step is over */
    int64_t prev = CV_NONE, cause = CV_NONE;
    int entered = enter(self, &prev) == 0;
    if (entered) {
        cause = prev;
    }
    else {
        absorb(self, &pending);
    }
    int64_t outer = stepping;
    int eager = entered && outer != CV_NONE && outer == prev;
    stepping = self->lane;
    if (eager) {
        eager_parent(self, outer, 1, &pending);
    }
    PyObject *run_reason = NULL;
    if (throw_args != NULL && (run_reason = throw_reason(throw_args)) == NULL) {
        absorb(self, &pending);
    }
    if (emit(self, now(self), CV_RUN, run_reason, self->where, cause) < 0) {
        absorb(self, &pending);
    }
    Py_XDECREF(run_reason);

    PyObject *result;
    PySendResult r = throw_args == NULL ? PyIter_Send(coro, value, &result) : throw_into(coro, throw_args, &result);
    stepping = outer;

    if (r != PYGEN_NEXT) {
        /* The task ends: returned (result is its value), or raised (the exception is set). */
        PyObject *exc = r == PYGEN_ERROR ? take_exception() : NULL;
        if (entered) {
            leave(self, prev);
        }
        finish(self, exc, &pending);
        if (eager) {
            eager_parent(self, outer, 0, &pending);
        }
        if (exc != NULL) {
            restore_exception(exc);
            Py_XDECREF(pending);  /* the program's own exception wins */
        }
        else if (pending != NULL) {
            Py_DECREF(result);
            restore_exception(pending);
            r = PYGEN_ERROR;
            result = NULL;
        }
        Py_DECREF(coro);
        *presult = result;
        return r;
    }
    if (entered) {
        leave(self, prev);
    }
    /* throw() explains afresh: a cancelled step may stop anywhere (an except or finally clause). */
    if (stopped(self, result, throw_args == NULL, &pending) < 0 && pending == NULL) {
        pending = take_exception();
    }
    if (eager) {
        eager_parent(self, outer, 0, &pending);
    }
    Py_DECREF(coro);
    if (pending != NULL) {
        Py_DECREF(result);
        restore_exception(pending);
        return PYGEN_ERROR;
    }
    *presult = result;
    return PYGEN_NEXT;
}

static PySendResult
tc_am_send(TracedCoro *self, PyObject *value, PyObject **presult)
{
    return step(self, value, NULL, presult);
}

static PyObject *
tc_iternext(TracedCoro *self)
{
    PyObject *result;
    PySendResult r = step(self, Py_None, NULL, &result);
    return send_result(r, result);
}

static PyObject *
tc_send(TracedCoro *self, PyObject *value)
{
    PyObject *result;
    PySendResult r = step(self, value, NULL, &result);
    return send_result(r, result);
}

static PyObject *
tc_throw(TracedCoro *self, PyObject *args)
{
    if (PyTuple_GET_SIZE(args) < 1 || PyTuple_GET_SIZE(args) > 3) {
        PyErr_SetString(PyExc_TypeError, "throw() takes 1 to 3 arguments");
        return NULL;
    }
    PyObject *result;
    PySendResult r = step(self, NULL, args, &result);
    return send_result(r, result);
}

static PyObject *
tc_close(TracedCoro *self, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(self->frame);
    if (self->coro == NULL) {
        Py_RETURN_NONE;
    }
    return PyObject_CallMethodNoArgs(self->coro, s_close);
}

/* -- the wake-up marker -------------------------------------------------------------------- */

/* The future this task waits for completed: the task is ready, caused by whoever completed it. */
static void
woken(TracedCoro *self, PyObject *fut, PyObject *depth)
{
    int64_t running;  /* the lane running on the loop's thread: whoever completed the future */
    PyObject *current = cv_lane_get(self->buf, &running) ? PyLong_FromLongLong(running) : Py_NewRef(Py_None);
    if (current == NULL) {
        goto failed;
    }
    int64_t cause;
    PyObject *inner = NULL;
    if (fut != Py_None && lookup_attr(fut, s__coro, &inner) < 0) {
        Py_DECREF(current);
        goto failed;
    }
    if (inner != NULL && Py_IS_TYPE(inner, &TracedCoroType)) {
        cause = ((TracedCoro *)inner)->lane;  /* a task finished (returned, raised or was cancelled) */
    }
    else {
        int is_task = current == Py_None ? 0 : PySet_Contains(self->task_lanes, current);
        if (is_task < 0) {
            Py_XDECREF(inner);
            Py_DECREF(current);
            goto failed;
        }
        if (is_task) {
            cause = lane_of(current);  /* a task set a result, set an Event, put to a Queue, cancelled... */
        }
        else {
            /* A loop callback or a timer: the engine looks at who ran it. */
            PyObject *c = PyObject_CallMethodObjArgs(self->engine, s_completer, fut, depth, current, NULL);
            if (c == NULL) {
                Py_XDECREF(inner);
                Py_DECREF(current);
                goto failed;
            }
            cause = lane_of(c);
            Py_DECREF(c);
        }
    }
    Py_XDECREF(inner);
    Py_DECREF(current);
    PyObject *reason = NULL;
    if (fut != Py_None) {
        PyObject *c = PyObject_CallMethodNoArgs(fut, s_cancelled);
        if (c == NULL) {
            goto failed;
        }
        int yes = PyObject_IsTrue(c);
        Py_DECREF(c);
        if (yes < 0) {
            goto failed;
        }
        reason = yes ? s_cancelled_reason : NULL;
    }
    if (emit(self, now(self), CV_READY, reason, NULL, cause) < 0) {
        goto failed;
    }
    return;
failed:
    absorb(self, NULL);
}

/* _woken(fut, depth): the engine's call_soon found the marker among a completing future's callbacks.
 * depth: how many Python frames above the caller the code that completed the future runs
 * (call_soon's caller: 1), for the engine's completer(). */
static PyObject *
tc_woken(TracedCoro *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_woken() takes 2 arguments (fut, depth)");
        return NULL;
    }
    woken(self, args[0], args[1]);
    Py_RETURN_NONE;
}

/* Called as a done-callback: only on loops that are not BaseEventLoops (uvloop), where the
 * future's callbacks run later than it completed, so the time is approximate. */
static PyObject *
tc_call(TracedCoro *self, PyObject *args, PyObject *kwds)
{
    PyObject *fut = PyTuple_GET_SIZE(args) > 0 ? PyTuple_GET_ITEM(args, 0) : Py_None;
    PyObject *depth = PyLong_FromLong(1);
    if (depth == NULL) {
        return NULL;
    }
    woken(self, fut, depth);
    Py_DECREF(depth);
    Py_RETURN_NONE;
}

/* -- a coroutine to everyone else ---------------------------------------------------------- */

static PyObject *
tc_await(PyObject *self)
{
    return Py_NewRef(self);  /* its own iterator, as a coroutine's __await__ returns a wrapper of itself */
}


static PyObject *
tc_repr(TracedCoro *self)
{
    return self->coro ? PyObject_Repr(self->coro) : PyUnicode_FromString("<TracedCoro (cleared)>");
}

static PyObject *
tc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"coro", "lane", "rec", "engine", "where", NULL};
    PyObject *coro, *lane, *rec, *engine, *where = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!OO|O:TracedCoro", kwlist, &coro, &PyLong_Type, &lane, &rec,
                                     &engine, &where)) {
        return NULL;
    }
    int64_t lane_id = lane_of(lane);
    TracedCoro *self = (TracedCoro *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->coro = Py_NewRef(coro);
    self->lane_obj = Py_NewRef(lane);
    self->lane = lane_id;
    self->rec = Py_NewRef(rec);
    self->engine = Py_NewRef(engine);
    self->where = Py_NewRef(where);
    PyObject *events = PyObject_GetAttr(rec, s__events);
    if (events == NULL) {
        goto error;
    }
    if (!Py_IS_TYPE(events, &CV_EventBufferType)) {
        PyErr_SetString(PyExc_TypeError, "the recorder's _events must be an EventBuffer");
        Py_DECREF(events);
        goto error;
    }
    self->buf = (EventBuffer *)events;
    self->task_lanes = PyObject_GetAttr(engine, s_task_lanes);
    if (self->task_lanes == NULL) {
        goto error;
    }
    if (!PyAnySet_Check(self->task_lanes)) {
        PyErr_SetString(PyExc_TypeError, "engine.task_lanes must be a set");
        goto error;
    }
    /* Where this coroutine waited before, by bytecode offset: None for anything but a plain
     * coroutine of the program's own code, which always takes the slow path. */
    PyObject *sites = PyObject_CallMethodOneArg(engine, s_sites_of, coro);
    if (sites == NULL) {
        goto error;
    }
    if (PyDict_Check(sites)) {
        self->sites = sites;
    }
    else {
        Py_DECREF(sites);
    }
    if (lookup_attr(coro, s___name__, &self->name) < 0) {
        goto error;
    }
    if (self->name == NULL && (self->name = PyType_GetName(Py_TYPE(coro))) == NULL) {
        goto error;
    }
    if (lookup_attr(coro, s___qualname__, &self->qualname) < 0) {
        goto error;
    }
    if (self->qualname == NULL) {
        self->qualname = Py_NewRef(self->name);
    }
    return (PyObject *)self;
error:
    Py_DECREF(self);
    return NULL;
}

static int
tc_traverse(TracedCoro *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coro);
    Py_VISIT(self->lane_obj);
    Py_VISIT(self->buf);
    Py_VISIT(self->rec);
    Py_VISIT(self->engine);
    Py_VISIT(self->task_lanes);
    Py_VISIT(self->where);
    Py_VISIT(self->sites);
    Py_VISIT(self->frame);
    Py_VISIT(self->site);
    Py_VISIT(self->name);
    Py_VISIT(self->qualname);
    return 0;
}

static int
tc_clear(TracedCoro *self)
{
    Py_CLEAR(self->coro);
    Py_CLEAR(self->lane_obj);
    Py_CLEAR(self->buf);
    Py_CLEAR(self->rec);
    Py_CLEAR(self->engine);
    Py_CLEAR(self->task_lanes);
    Py_CLEAR(self->where);
    Py_CLEAR(self->sites);
    Py_CLEAR(self->frame);
    Py_CLEAR(self->site);
    Py_CLEAR(self->name);
    Py_CLEAR(self->qualname);
    return 0;
}

static void
tc_dealloc(TracedCoro *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    tc_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- attributes ------------------------------------------------------------------------------ */

/* The wrapped coroutine's own attributes, read through: asyncio and inspect probe cr_frame,
 * then gi_frame, ...; an AttributeError passes through. */
#define N_FORWARDED 11
static const char *const forwarded[N_FORWARDED] = {
    "cr_await", "cr_code", "cr_frame", "cr_running", "cr_origin", "cr_suspended",
    "gi_code", "gi_frame", "gi_running", "gi_yieldfrom", "gi_suspended",
};
static PyObject *forwarded_names[N_FORWARDED];

static PyObject *
get_forwarded(TracedCoro *self, void *closure)
{
    if (self->coro == NULL) {
        PyErr_SetString(PyExc_AttributeError, "TracedCoro is cleared");
        return NULL;
    }
    return PyObject_GetAttr(self->coro, forwarded_names[(size_t)closure]);
}

static PyObject *
get_object(PyObject *value)
{
    return Py_NewRef(value ? value : Py_None);
}

static PyObject *get_coro(TracedCoro *self, void *c) { return get_object(self->coro); }
static PyObject *get_lane(TracedCoro *self, void *c) { return get_object(self->lane_obj); }
static PyObject *get_where(TracedCoro *self, void *c) { return get_object(self->where); }
static PyObject *get_frame(TracedCoro *self, void *c) { return get_object(self->frame); }
static PyObject *get_name(TracedCoro *self, void *c) { return get_object(self->name); }
static PyObject *get_qualname(TracedCoro *self, void *c) { return get_object(self->qualname); }

static PyObject *
get_done_t(TracedCoro *self, void *c)
{
    return PyLong_FromLongLong(self->done_t);
}

static int
set_where(TracedCoro *self, PyObject *value, void *c)
{
    Py_XSETREF(self->where, Py_NewRef(value ? value : Py_None));
    return 0;
}

static int
set_str(PyObject **slot, PyObject *value, const char *what)
{
    if (value == NULL || !PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be set to a string object", what);
        return -1;
    }
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

static int set_name(TracedCoro *self, PyObject *v, void *c) { return set_str(&self->name, v, "__name__"); }
static int set_qualname(TracedCoro *self, PyObject *v, void *c) { return set_str(&self->qualname, v, "__qualname__"); }

static PyGetSetDef tc_getset[] = {
    {"_coro", (getter)get_coro, NULL, "The wrapped coroutine.", NULL},
    {"_lane", (getter)get_lane, NULL, "The task's lane.", NULL},
    {"_where", (getter)get_where, (setter)set_where, "Where the next step resumes.", NULL},
    {"_frame", (getter)get_frame, NULL, "The coroutine's frame, kept from its first suspension.", NULL},
    {"_done_t", (getter)get_done_t, NULL, "Monotonic ns when the task finished (0 before).", NULL},
    {"__name__", (getter)get_name, (setter)set_name, NULL, NULL},
    {"__qualname__", (getter)get_qualname, (setter)set_qualname, NULL, NULL},
#define FORWARD(name, i) {name, (getter)get_forwarded, NULL, "The wrapped coroutine's " name ".", (void *)(i)}
    FORWARD("cr_await", 0),
    FORWARD("cr_code", 1),
    FORWARD("cr_frame", 2),
    FORWARD("cr_running", 3),
    FORWARD("cr_origin", 4),
    FORWARD("cr_suspended", 5),
    FORWARD("gi_code", 6),
    FORWARD("gi_frame", 7),
    FORWARD("gi_running", 8),
    FORWARD("gi_yieldfrom", 9),
    FORWARD("gi_suspended", 10),
#undef FORWARD
    {NULL},
};

static PyMethodDef tc_methods[] = {
    {"send", (PyCFunction)tc_send, METH_O, "send(value): one step of the task."},
    {"throw", (PyCFunction)tc_throw, METH_VARARGS, "throw(exc): one step that starts by raising exc (cancellation)."},
    {"close", (PyCFunction)tc_close, METH_NOARGS, "Close the wrapped coroutine."},
    {"_woken", (PyCFunction)(void (*)(void))tc_woken, METH_FASTCALL,
     "_woken(fut, depth): the future this task waits for completed; record ready."},
    {NULL},
};

static PyAsyncMethods tc_as_async = {
    .am_await = tc_await,
    .am_send = (sendfunc)tc_am_send,
};

static PyTypeObject TracedCoroType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurview.engines._speedups.TracedCoro",
    .tp_doc = "TracedCoro(coro, lane, rec, engine, where=None): a task's coroutine whose every step is recorded.\n\n"
              "It is also the wake-up marker: a step that stops on a future adds the TracedCoro\n"
              "as the future's first done-callback, and the engine's call_soon calls _woken().",
    .tp_basicsize = sizeof(TracedCoro),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = tc_new,
    .tp_dealloc = (destructor)tc_dealloc,
    .tp_traverse = (traverseproc)tc_traverse,
    .tp_clear = (inquiry)tc_clear,
    .tp_repr = (reprfunc)tc_repr,
    .tp_call = (ternaryfunc)tc_call,
    .tp_as_async = &tc_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)tc_iternext,
    .tp_methods = tc_methods,
    .tp_getset = tc_getset,
    .tp_weaklistoffset = offsetof(TracedCoro, weakrefs),
};

/* -- registration ---------------------------------------------------------------------------- */

static int
intern_all(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s__events, "_events"}, {&s_task_lanes, "task_lanes"}, {&s_sites_of, "sites_of"},
        {&s_resolve, "resolve"}, {&s_dynamic_reason, "dynamic_reason"}, {&s_finish, "finish"},
        {&s_completer, "completer"}, {&s__hook_failed, "_hook_failed"},
        {&s_add_done_callback, "add_done_callback"}, {&s_cancelled, "cancelled"}, {&s_cr_frame, "cr_frame"},
        {&s_throw, "throw"}, {&s_close, "close"}, {&s__coro, "_coro"}, {&s_value, "value"},
        {&s___name__, "__name__"}, {&s___qualname__, "__qualname__"}, {&s_throw_, "throw "},
        {&s_cancelled_reason, "cancelled"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL && (*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) {
            return -1;
        }
    }
    for (size_t i = 0; i < N_FORWARDED; i++) {
        if (forwarded_names[i] == NULL && (forwarded_names[i] = PyUnicode_InternFromString(forwarded[i])) == NULL) {
            return -1;
        }
    }
    return 0;
}

/* The getter of a coroutine attribute, from the coroutine type's own table (looking the
 * attribute up on the type would find type.__qualname__, the metatype's). */
static getter
coro_getter(const char *name)
{
    for (PyGetSetDef *g = PyCoro_Type.tp_getset; g != NULL && g->name != NULL; g++) {
        if (strcmp(g->name, name) == 0 && g->get != NULL) {
            return g->get;
        }
    }
    PyErr_Format(PyExc_RuntimeError, "coroutine.%s has no getter to call", name);
    return NULL;
}

int
cv_asyncio_register(PyObject *m)
{
    if (intern_all() < 0) {
        return -1;
    }
    if ((coro_await_get = coro_getter("cr_await")) == NULL || (coro_qualname_get = coro_getter("__qualname__")) == NULL) {
        return -1;
    }
    if (PyType_Ready(&TracedCoroType) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(m, "TracedCoro", (PyObject *)&TracedCoroType);
}
