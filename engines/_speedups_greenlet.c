/* concurview.engines._speedups: GreenletTracer, the greenlet engine's fast path in C.
 *
 * greenlet calls the function given to greenlet.settrace on every switch, as
 * tracer(event, (origin, target)). A Python tracer costs more than the switch
 * itself before it records anything, so this one does the common case in C:
 * it reads both greenlets' `_concurview` info lists (engines/greenlet_engine.py
 * keeps them), answers why the origin stopped from the per-greenlet caches,
 * appends the origin's WAIT and the target's RUN to the event buffer and makes
 * the target the thread's current lane. Whatever is uncommon - a greenlet seen
 * for the first time, a switch site not cached yet, an explanation that reads
 * a frame's locals, a plain greenlet about to be named - is asked of the
 * engine's Python methods, which keep all the logic: the C path only replays
 * what they answered, so the explanations are the Python engine's own.
 *
 * The tracer never raises for its own failures (greenlet drops a tracer that
 * raises): it hands the exception to the engine's `failed` callback, which
 * counts it. An exception from the tracer it chains to goes to greenlet as it
 * would without us.
 */

#include "_speedups.h"

#include <stddef.h>

/* The info list on each greenlet: the slots of greenlet_engine.py (LANE, RESUME, ...). */
enum {
    I_LANE,          /* lane id; None until a plain greenlet's function is named; -1 past the lane cap */
    I_RESUME,        /* where it resumes: the `where` of its last wait */
    I_TO_ME,         /* "switch → name": why a greenlet that switches to this one stops */
    I_NAME,
    I_HUB,           /* it is gevent's hub */
    I_SITE_CODE,     /* the one-entry site cache: code and f_lasti of its last switch ... */
    I_SITE_LASTI,
    I_SITE,          /* ... and what engine._site() made of them */
    I_CALLER_CODE,   /* the one-entry caller cache: code and f_lasti of the user's frame calling ... */
    I_CALLER_LASTI,  /* ... a fixed-reason library function (gevent.sleep(0)) ... */
    I_CALLER_WHERE,  /* ... and the `where` engine._user_where() found for it */
    I_SELF,          /* weakref.ref(greenlet), or None */
    I_SIZE
};

/* A site entry, the tuple engine._site() returns. */
enum {
    S_HANDLER,   /* None: the user's own line switched (or the hub handed over); else handler(f, ti) -> (reason, where) */
    S_WHERE,     /* for handler None: where the origin stopped */
    S_CALLSITE,  /* for handler None: the reason when the target is the hub (the line's source, `e.join()`) */
    S_CODE,
    S_FIXED,     /* a reason that depends on no local (`sleep(0)`): handler's where is engine._user_where(f) */
    S_SIZE
};

/* Info lists found again by the greenlet's address, without an attribute lookup. A slot holds the
 * list, not the greenlet (a tracer must not keep greenlets alive); the list's weak reference to its
 * greenlet says whether the greenlet at that address is still the one it belongs to. */
#define INFO_BITS 11  /* 2048 slots (48 KB): gevent programs run hundreds of greenlets */
#define INFO_SLOTS (1 << INFO_BITS)
typedef struct {
    PyObject *info;
    int64_t lane;   /* its lane once declared: a declared lane never changes */
    int declared;
} InfoSlot;

/* The getter of gr_frame, per greenlet type: the descriptor's C function, called directly. */
#define FRAME_TYPES 4
typedef struct {
    PyTypeObject *type;
    getter get;     /* NULL: not greenlet's own descriptor here, ask PyObject_GetAttr */
    void *closure;
} FrameGetter;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* tracer_vectorcall: greenlet's PyObject_CallFunction passes its stack here, no tuple */
    EventBuffer *buf;          /* rec._events */
    PyObject *previous;        /* the tracer installed before us (chained), or NULL */
    /* The engine's Python side, for everything uncommon. */
    PyObject *adopt;           /* adopt(g[, origin]) -> info: first sight of a greenlet */
    PyObject *site;            /* site(frame) -> entry */
    PyObject *caller_where;    /* caller_where(frame, info) -> where (fills the caller cache) */
    PyObject *name_on_call;    /* name_on_call(target, info, wait): a plain greenlet starting */
    PyObject *failed;          /* failed(exc): count a failure, never raise */
    unsigned long long slow_calls;  /* calls into the Python methods above (tests: the common switch needs none) */
    /* Allocated at the first switch a thread makes: every thread gets a tracer as it starts, and most
     * never switch a greenlet (a thread per request would pay 48 KB each for nothing). */
    InfoSlot *slots;
    FrameGetter frames[FRAME_TYPES];
    int next_frame;            /* the FrameGetter replaced next */
} GreenletTracer;

/* Interned once, at module import. */
static PyObject *str_attr, *str_gr_frame, *str_switch, *str_returned, *str_raised;

/* -- small helpers ----------------------------------------------------------------------- */

/* The exception being raised, normalised, and no error indicator set. */
CV_COLD static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Our own failure: the engine counts it (the first one becomes a log line); nothing propagates. A signal
 * handler's KeyboardInterrupt raised in the Python we called is not ours: failed() has the program get it once
 * the tracer returned, or raises it again when it cannot; then -1, and the tracer raises it (greenlet drops the
 * tracer, and the program gets the interrupt at its switch, as it would have without us). */
CV_COLD static int
report_failure(GreenletTracer *tr)
{
    int rc = 0;
    PyObject *exc = take_exception();
    if (exc != NULL && tr->failed != NULL) {
        PyObject *r = PyObject_CallOneArg(tr->failed, exc);
        if (r == NULL) {
            if (PyErr_ExceptionMatches(PyExc_Exception)) {
                PyErr_Clear();
            }
            else {
                rc = -1;
            }
        }
        Py_XDECREF(r);
    }
    Py_XDECREF(exc);
    return rc;
}

/* A cached f_lasti (a Python int, or None/-1 for "nothing cached") equals lasti. */
static inline int
same_lasti(PyObject *cached, int lasti)
{
    if (!PyLong_CheckExact(cached)) {
        return 0;
    }
#if PY_VERSION_HEX < 0x030C0000
    /* 3.11's int is its digits: a one-digit (or zero) int read in place, not through PyLong_AsLong. */
    Py_ssize_t size = Py_SIZE(cached);
    if (size == 0) {
        return lasti == 0;
    }
    if (size == 1) {
        return (long)((PyLongObject *)cached)->ob_digit[0] == (long)lasti;
    }
#endif
    return PyLong_AsLong(cached) == lasti;
}

/* Store a new reference in an info list slot (the list keeps it). */
static inline void
set_slot(PyObject *info, Py_ssize_t i, PyObject *value)
{
    PyObject *old = PyList_GET_ITEM(info, i);
    PyList_SET_ITEM(info, i, value);
    Py_XDECREF(old);
}

/* Whether info is the info list of g: its weak reference still points at g. */
static inline int
belongs_to(PyObject *info, PyObject *g)
{
    PyObject *me = PyList_GET_SIZE(info) >= I_SIZE ? PyList_GET_ITEM(info, I_SELF) : NULL;
    if (me == NULL || !PyWeakref_CheckRef(me)) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj;
    if (PyWeakref_GetRef(me, &obj) <= 0) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(obj);  /* only compared: g itself is alive (the switch holds it) */
    return obj == g;
#else
    return PyWeakref_GET_OBJECT(me) == g;
#endif
}

static inline InfoSlot *
slot_of(GreenletTracer *tr, PyObject *g)
{
    /* Fibonacci hashing: greenlets of one size sit at regular strides, which a mask of low bits folds together. */
    uint64_t p = (uint64_t)(uintptr_t)g >> 4;
    return &tr->slots[(p * 0x9E3779B97F4A7C15ull) >> (64 - INFO_BITS)];
}

/* A lane slot: 1 and *lane set when declared (UNTRACED past the lane cap), 0 for None, -1 on error. */
static int
lane_of(PyObject *info, int64_t *lane)
{
    PyObject *v = PyList_GET_ITEM(info, I_LANE);
    if (v == Py_None) {
        *lane = CV_NONE;
        return 0;
    }
    int64_t x = cv_int64(v);
    if (x == -1 && PyErr_Occurred()) {
        return -1;
    }
    *lane = x;
    return 1;
}

/* The info list of greenlet g (new reference) and its lane (lane_of's answer in *declared),
 * adopting g when the engine has not seen it. */
CV_COLD static PyObject *
info_of(GreenletTracer *tr, PyObject *g, PyObject *origin, int64_t *lane, int *declared)
{
    if (tr->slots == NULL) {
        tr->slots = PyMem_Calloc(INFO_SLOTS, sizeof(InfoSlot));
        if (tr->slots == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    InfoSlot *slot = slot_of(tr, g);
    PyObject *info = slot->info;
    if (info != NULL && belongs_to(info, g)) {
        Py_INCREF(info);
    }
    else {
        info = PyObject_GetAttr(g, str_attr);
        if (info == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                return NULL;
            }
            PyErr_Clear();
            tr->slow_calls++;
            info = origin == NULL ? PyObject_CallOneArg(tr->adopt, g)
                                  : PyObject_CallFunctionObjArgs(tr->adopt, g, origin, NULL);
            if (info == NULL) {
                return NULL;
            }
        }
        if (!PyList_CheckExact(info) || PyList_GET_SIZE(info) < I_SIZE) {
            /* Not one of ours (a program set `_concurview` itself?): fail this switch, not the process. */
            PyErr_Format(PyExc_TypeError, "greenlet's %U is not the engine's info list", str_attr);
            Py_DECREF(info);
            return NULL;
        }
        if (belongs_to(info, g)) {
            Py_XSETREF(slot->info, Py_NewRef(info));
            slot->declared = 0;
        }
        else {
            slot = NULL;  /* no weak reference to check it by: looked up every time */
        }
    }
    if (slot != NULL && slot->declared) {
        *lane = slot->lane;
        *declared = 1;
        return info;
    }
    *declared = lane_of(info, lane);
    if (*declared < 0) {
        Py_DECREF(info);
        return NULL;
    }
    if (slot != NULL && *declared) {
        slot->lane = *lane;
        slot->declared = 1;
    }
    return info;
}

/* info_of's common case inline: a greenlet seen before, its lane declared. */
static inline PyObject *
info_fast(GreenletTracer *tr, PyObject *g, PyObject *origin, int64_t *lane, int *declared)
{
    if (CV_UNLIKELY(tr->slots == NULL)) {
        return info_of(tr, g, origin, lane, declared);
    }
    InfoSlot *slot = slot_of(tr, g);
    PyObject *info = slot->info;
    if (CV_LIKELY(info != NULL && slot->declared && belongs_to(info, g))) {
        *lane = slot->lane;
        *declared = 1;
        return Py_NewRef(info);
    }
    return info_of(tr, g, origin, lane, declared);
}

/* A type's gr_frame getter, found once: the type's own attribute is the descriptor (greenlet's
 * getset, unless a subclass replaced it). NULL with an exception set. */
CV_COLD static FrameGetter *
frame_getter_new(GreenletTracer *tr, PyTypeObject *type)
{
    PyObject *d = PyObject_GetAttr((PyObject *)type, str_gr_frame);
    if (d == NULL) {
        return NULL;
    }
    FrameGetter *fg = &tr->frames[tr->next_frame];
    tr->next_frame = (tr->next_frame + 1) % FRAME_TYPES;
    Py_INCREF(type);
    Py_XSETREF(fg->type, type);  /* kept, so its address names it (and its descriptor stays) */
    if (Py_IS_TYPE(d, &PyGetSetDescr_Type) && ((PyGetSetDescrObject *)d)->d_getset->get != NULL) {
        fg->get = ((PyGetSetDescrObject *)d)->d_getset->get;
        fg->closure = ((PyGetSetDescrObject *)d)->d_getset->closure;
    }
    else {
        fg->get = NULL;
    }
    Py_DECREF(d);
    return fg;
}

/* origin.gr_frame (new reference): greenlet's getter called directly, found once per type. */
static PyObject *
frame_of(GreenletTracer *tr, PyObject *g)
{
    PyTypeObject *type = Py_TYPE(g);
    FrameGetter *fg = NULL;
    for (int i = 0; i < FRAME_TYPES; i++) {
        if (tr->frames[i].type == type) {
            fg = &tr->frames[i];
            break;
        }
    }
    if (CV_UNLIKELY(fg == NULL)) {
        fg = frame_getter_new(tr, type);
        if (fg == NULL) {
            return NULL;
        }
    }
    return CV_LIKELY(fg->get != NULL) ? fg->get(g, fg->closure) : PyObject_GetAttr(g, str_gr_frame);
}

/* One event, unless the buffer is at a batch boundary and on_full says to drop it (it counted it). */
static int
record(EventBuffer *b, int64_t t, int64_t lane, int kind, PyObject *reason, PyObject *where, int64_t cause)
{
    int drop = cv_room(b);
    if (drop != 0) {
        return drop < 0 ? -1 : 0;
    }
    return cv_push(b, t, lane, kind, reason, where, cause, NULL);
}

/* -- why the origin stopped -------------------------------------------------------------- */

/* Where the user's code calling frame f is (new reference): the caller cache, or the engine. */
static PyObject *
caller_where(GreenletTracer *tr, PyFrameObject *f, PyObject *oi)
{
    PyFrameObject *back = PyFrame_GetBack(f);
    if (back != NULL) {
        PyCodeObject *code = PyFrame_GetCode(back);
        int hit = (PyObject *)code == PyList_GET_ITEM(oi, I_CALLER_CODE)
                  && same_lasti(PyList_GET_ITEM(oi, I_CALLER_LASTI), PyFrame_GetLasti(back));
        Py_DECREF(code);
        Py_DECREF(back);
        if (hit) {
            return Py_NewRef(PyList_GET_ITEM(oi, I_CALLER_WHERE));
        }
    }
    tr->slow_calls++;
    return PyObject_CallFunctionObjArgs(tr->caller_where, (PyObject *)f, oi, NULL);
}

/* The site cache missed: what engine._site() makes of the frame, cached in the origin's info list
 * (new reference), or NULL with an exception set. Takes the reference to code. */
CV_COLD static PyObject *
site_miss(GreenletTracer *tr, PyObject *frame, PyObject *oi, PyCodeObject *code, int lasti)
{
    tr->slow_calls++;
    PyObject *ent = PyObject_CallOneArg(tr->site, frame);
    PyObject *lasti_obj = ent == NULL ? NULL : PyLong_FromLong(lasti);
    if (lasti_obj == NULL) {
        Py_XDECREF(ent);
        Py_DECREF(code);
        return NULL;
    }
    set_slot(oi, I_SITE_CODE, (PyObject *)code);  /* the list takes our reference */
    set_slot(oi, I_SITE_LASTI, lasti_obj);
    set_slot(oi, I_SITE, Py_NewRef(ent));
    return ent;
}

/* The origin's stop: *kind WAIT (or CLOSE when it finished), *reason and *where as new references
 * (or NULL for None). The origin's RESUME becomes the where. 0, or -1 with an exception set. */
static int
explain_stop(GreenletTracer *tr, PyObject *origin, PyObject *oi, PyObject *ti, int switching, int *kind,
             PyObject **reason, PyObject **where)
{
    PyObject *frame = frame_of(tr, origin);
    if (frame == NULL) {
        return -1;
    }
    if (frame == Py_None) {
        /* A finished greenlet's last switch is to its parent ("throw": it raised). */
        Py_DECREF(frame);
        *kind = CV_CLOSE;
        *reason = Py_NewRef(switching ? str_returned : str_raised);
        return 0;
    }
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "gr_frame is not a frame");
        Py_DECREF(frame);
        return -1;
    }
    PyFrameObject *f = (PyFrameObject *)frame;
    *kind = CV_WAIT;

    /* The one-entry site cache: a loop switches from the same place every time. */
    PyCodeObject *code = PyFrame_GetCode(f);
    int lasti = PyFrame_GetLasti(f);
    PyObject *ent;
    if (CV_LIKELY((PyObject *)code == PyList_GET_ITEM(oi, I_SITE_CODE)
                  && same_lasti(PyList_GET_ITEM(oi, I_SITE_LASTI), lasti))) {
        ent = Py_NewRef(PyList_GET_ITEM(oi, I_SITE));
        Py_DECREF(code);
    }
    else {
        ent = site_miss(tr, frame, oi, code, lasti);  /* takes our reference to code */
        if (ent == NULL) {
            Py_DECREF(frame);
            return -1;
        }
    }
    if (CV_UNLIKELY(!PyTuple_Check(ent) || PyTuple_GET_SIZE(ent) < S_SIZE)) {
        PyErr_SetString(PyExc_TypeError, "engine._site() did not return a site entry");
        goto fail;
    }

    PyObject *handler = PyTuple_GET_ITEM(ent, S_HANDLER);
    if (handler == Py_None) {
        /* The user's own line switched (its source is the reason when the target is the hub), or the hub handed over. */
        int to_hub = PyObject_IsTrue(PyList_GET_ITEM(ti, I_HUB));
        if (to_hub < 0) {
            goto fail;
        }
        *reason = Py_NewRef(to_hub ? PyTuple_GET_ITEM(ent, S_CALLSITE) : PyList_GET_ITEM(ti, I_TO_ME));
        *where = Py_NewRef(PyTuple_GET_ITEM(ent, S_WHERE));
    }
    else if (PyTuple_GET_ITEM(ent, S_FIXED) != Py_None) {
        /* sleep(0): the reason is the site's, the where is the user's line above it. */
        *where = caller_where(tr, f, oi);
        if (*where == NULL) {
            goto fail;
        }
        *reason = Py_NewRef(PyTuple_GET_ITEM(ent, S_FIXED));
    }
    else {
        /* It depends on values of the moment (sleep(seconds), a socket's fd): the handler reads them. */
        tr->slow_calls++;
        PyObject *r = PyObject_CallFunctionObjArgs(handler, frame, ti, NULL);
        if (r == NULL) {
            goto fail;
        }
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
            PyErr_SetString(PyExc_TypeError, "a switch handler returns (reason, where)");
            Py_DECREF(r);
            goto fail;
        }
        *reason = Py_NewRef(PyTuple_GET_ITEM(r, 0));
        *where = Py_NewRef(PyTuple_GET_ITEM(r, 1));
        Py_DECREF(r);
    }
    set_slot(oi, I_RESUME, Py_NewRef(*where));
    Py_DECREF(ent);
    Py_DECREF(frame);
    return 0;

fail:
    Py_CLEAR(*reason);
    Py_CLEAR(*where);
    Py_DECREF(ent);
    Py_DECREF(frame);
    return -1;
}

/* -- the switch -------------------------------------------------------------------------- */

/* Record one switch. When the target is a plain greenlet not named yet, nothing is recorded:
 * *pending gets the origin's stop as a tuple (t, lane, kind, reason, where) for name_on_call,
 * and *ti_out, *target_out the target's info and the target. 0, or -1 with an exception set. */
static int
trace_switch(GreenletTracer *tr, PyObject *event, PyObject *pair, PyObject **pending, PyObject **ti_out,
             PyObject **target_out)
{
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_TypeError, "a greenlet tracer is called with (origin, target)");
        return -1;
    }
    PyObject *origin = PyTuple_GET_ITEM(pair, 0), *target = PyTuple_GET_ITEM(pair, 1);
    PyObject *oi = NULL, *ti = NULL, *tl_obj = NULL, *ol_obj = NULL, *reason = NULL, *where = NULL, *resume = NULL;
    int rc = -1;

    int64_t ol, tl;
    int o_declared, t_declared;
    oi = info_fast(tr, origin, NULL, &ol, &o_declared);
    if (oi == NULL) {
        goto done;
    }
    ti = info_fast(tr, target, origin, &tl, &t_declared);
    if (ti == NULL) {
        goto done;
    }
    int64_t t = cv_monotonic_ns() - tr->buf->t0;
    /* Our references: the Python called below may change the lists. */
    ol_obj = Py_NewRef(PyList_GET_ITEM(oi, I_LANE));
    tl_obj = Py_NewRef(PyList_GET_ITEM(ti, I_LANE));
    int switching = event == str_switch || PyUnicode_Compare(event, str_switch) == 0;
    if (PyErr_Occurred()) {
        goto done;
    }

    /* An origin past the lane cap (or never named) has no events to explain: skip the frame. */
    int origin_traced = o_declared && ol != CV_NONE;
    int kind = CV_WAIT;
    if ((origin_traced || !t_declared) && explain_stop(tr, origin, oi, ti, switching, &kind, &reason, &where) < 0) {
        goto done;
    }

    if (!t_declared) {
        /* A plain greenlet starting: its lane, and this stop that names it, are recorded when its
         * function is called (name_on_call), at the time of the switch. */
        *pending = Py_BuildValue("(LOiOO)", (long long)t, ol_obj, kind, reason ? reason : Py_None,
                                 where ? where : Py_None);
        if (*pending == NULL) {
            goto done;
        }
        *ti_out = Py_NewRef(ti);
        *target_out = Py_NewRef(target);
        rc = 0;
        goto done;
    }
    if (origin_traced && record(tr->buf, t, ol, kind, reason, where, CV_NONE) < 0) {
        goto done;
    }
    if (tl != CV_NONE) {
        resume = Py_NewRef(PyList_GET_ITEM(ti, I_RESUME));
        if (record(tr->buf, t, tl, CV_RUN, switching ? NULL : event, resume, ol) < 0) {
            goto done;
        }
    }
    cv_lane_set(tr->buf, tl);  /* the target runs on this thread now (UNTRACED past the lane cap) */
    rc = 0;

done:
    Py_XDECREF(oi);
    Py_XDECREF(ti);
    Py_XDECREF(ol_obj);
    Py_XDECREF(tl_obj);
    Py_XDECREF(reason);
    Py_XDECREF(where);
    Py_XDECREF(resume);
    return rc;
}

static PyObject *
tracer_vectorcall(GreenletTracer *tr, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) || PyVectorcall_NARGS(nargsf) != 2) {
        PyErr_SetString(PyExc_TypeError, "GreenletTracer(event, (origin, target))");
        return NULL;  /* a wrong call, not a switch: say so */
    }
    PyObject *event = args[0], *pair = args[1];
    PyObject *pending = NULL, *ti = NULL, *target = NULL;
    if (!PyUnicode_Check(event)) {
        PyErr_SetString(PyExc_TypeError, "a greenlet trace event is a str");
        if (report_failure(tr) < 0) {
            return NULL;
        }
    }
    else if (trace_switch(tr, event, pair, &pending, &ti, &target) < 0) {
        if (report_failure(tr) < 0) {
            Py_XDECREF(pending);
            Py_XDECREF(ti);
            Py_XDECREF(target);
            return NULL;
        }
    }
    if (tr->previous != NULL) {
        PyObject *r = PyObject_CallFunctionObjArgs(tr->previous, event, pair, NULL);
        if (r == NULL) {
            /* Theirs to raise: greenlet treats it as it would have without us. */
            Py_XDECREF(pending);
            Py_XDECREF(ti);
            Py_XDECREF(target);
            return NULL;
        }
        Py_DECREF(r);
    }
    if (pending != NULL) {
        /* Last thing: the next Python call on this thread is the new greenlet's function. */
        tr->slow_calls++;
        PyObject *r = PyObject_CallFunctionObjArgs(tr->name_on_call, target, ti, pending, NULL);
        int failed = r == NULL && report_failure(tr) < 0;
        Py_XDECREF(r);
        Py_DECREF(pending);
        Py_DECREF(ti);
        Py_DECREF(target);
        if (failed) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

/* -- lifecycle ----------------------------------------------------------------------------- */

static PyObject *
tracer_uninitialised(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyErr_SetString(PyExc_TypeError, "GreenletTracer.__init__() was not called");
    return NULL;
}

static int
tracer_init(GreenletTracer *tr, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"events", "adopt", "site", "caller_where", "name_on_call", "failed", NULL};
    PyObject *buf, *adopt = NULL, *site = NULL, *caller = NULL, *name_on_call = NULL, *failed = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|$OOOOO", kwlist, &CV_EventBufferType, &buf,
                                     &adopt, &site, &caller, &name_on_call, &failed)) {
        return -1;
    }
    PyObject *callbacks[] = {adopt, site, caller, name_on_call, failed};
    for (size_t i = 0; i < sizeof(callbacks) / sizeof(callbacks[0]); i++) {
        if (callbacks[i] == NULL || !PyCallable_Check(callbacks[i])) {
            PyErr_Format(PyExc_TypeError, "GreenletTracer needs the engine's %s= callable", kwlist[1 + i]);
            return -1;
        }
    }
    Py_XSETREF(tr->buf, (EventBuffer *)Py_NewRef(buf));
    Py_XSETREF(tr->adopt, Py_NewRef(adopt));
    Py_XSETREF(tr->site, Py_NewRef(site));
    Py_XSETREF(tr->caller_where, Py_NewRef(caller));
    Py_XSETREF(tr->name_on_call, Py_NewRef(name_on_call));
    Py_XSETREF(tr->failed, Py_NewRef(failed));
    tr->vectorcall = (vectorcallfunc)tracer_vectorcall;
    return 0;
}

/* A tracer made but not initialised refuses to be called (its callbacks are missing). */
static PyObject *
tracer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    GreenletTracer *tr = (GreenletTracer *)PyType_GenericNew(type, args, kwds);
    if (tr != NULL) {
        tr->vectorcall = (vectorcallfunc)tracer_uninitialised;
    }
    return (PyObject *)tr;
}

static int
tracer_traverse(GreenletTracer *tr, visitproc visit, void *arg)
{
    Py_VISIT(tr->buf);
    Py_VISIT(tr->previous);
    Py_VISIT(tr->adopt);
    Py_VISIT(tr->site);
    Py_VISIT(tr->caller_where);
    Py_VISIT(tr->name_on_call);
    Py_VISIT(tr->failed);
    for (int i = 0; tr->slots != NULL && i < INFO_SLOTS; i++) {
        Py_VISIT(tr->slots[i].info);
    }
    for (int i = 0; i < FRAME_TYPES; i++) {
        Py_VISIT(tr->frames[i].type);
    }
    return 0;
}

static int
tracer_clear(GreenletTracer *tr)
{
    Py_CLEAR(tr->buf);
    Py_CLEAR(tr->previous);
    Py_CLEAR(tr->adopt);
    Py_CLEAR(tr->site);
    Py_CLEAR(tr->caller_where);
    Py_CLEAR(tr->name_on_call);
    Py_CLEAR(tr->failed);
    for (int i = 0; tr->slots != NULL && i < INFO_SLOTS; i++) {
        Py_CLEAR(tr->slots[i].info);
        tr->slots[i].declared = 0;
    }
    for (int i = 0; i < FRAME_TYPES; i++) {
        Py_CLEAR(tr->frames[i].type);
    }
    return 0;
}

static void
tracer_dealloc(GreenletTracer *tr)
{
    PyObject_GC_UnTrack(tr);
    tracer_clear(tr);
    PyMem_Free(tr->slots);
    tr->slots = NULL;
    Py_TYPE(tr)->tp_free((PyObject *)tr);
}

static PyObject *
get_previous(GreenletTracer *tr, void *Py_UNUSED(c))
{
    return Py_NewRef(tr->previous != NULL ? tr->previous : Py_None);
}

static int
set_previous(GreenletTracer *tr, PyObject *v, void *Py_UNUSED(c))
{
    if (v != NULL && v != Py_None && !PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "previous must be a tracer or None");
        return -1;
    }
    Py_XSETREF(tr->previous, v == NULL || v == Py_None ? NULL : Py_NewRef(v));
    return 0;
}

static PyObject *
get_slow_calls(GreenletTracer *tr, void *Py_UNUSED(c))
{
    return PyLong_FromUnsignedLongLong(tr->slow_calls);
}

static PyGetSetDef tracer_getset[] = {
    {"previous", (getter)get_previous, (setter)set_previous, "The tracer called after this one (chaining), or None.", NULL},
    {"slow_calls", (getter)get_slow_calls, NULL, "How many times a switch asked the engine's Python methods.", NULL},
    {NULL},
};

static PyTypeObject GreenletTracerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurview.engines._speedups.GreenletTracer",
    .tp_doc = "GreenletTracer(events, *, adopt, site, caller_where, name_on_call, failed): "
              "the callable for greenlet.settrace; the common switch in C, the rest through the engine's methods.",
    .tp_basicsize = sizeof(GreenletTracer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = tracer_new,
    .tp_init = (initproc)tracer_init,
    .tp_dealloc = (destructor)tracer_dealloc,
    .tp_traverse = (traverseproc)tracer_traverse,
    .tp_clear = (inquiry)tracer_clear,
    /* greenlet calls PyObject_CallFunction(tracer, "O(OO)", ...), which builds its arguments on the
     * stack and hands them to a vectorcall (a tp_call costs a tuple made and freed, ~150 instructions). */
    .tp_vectorcall_offset = offsetof(GreenletTracer, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_getset = tracer_getset,
};

/* -- creation: greenlet has no hook for it ---------------------------------------------------
 *
 * A greenlet that is created and never switched to (the lesson's `p = greenlet(play)`) would
 * never reach the tracer. hook_init(type, callback) puts a tp_init in the greenlet type's slot
 * that calls greenlet's own and then callback(new greenlet), while the program's line that
 * called greenlet(...) is still the running frame. Nothing the program can see changes: the
 * type, its __init__ (the slot wrapper keeps the original function), isinstance, getcurrent().
 * The slot wrapper `greenlet.__init__` is pointed at the same function: a subclass's slot (made
 * from it) and a subclass's __init__ calling greenlet.__init__ reach the hook too.
 * The callback never raises (the engine's method catches everything); if it does, the error
 * is dropped here: the program's greenlet(...) call must not fail because of us.
 */

static initproc original_init = NULL;
static PyTypeObject *hooked_type = NULL;
static PyObject *created_callback = NULL;
static PyWrapperDescrObject *init_wrapper = NULL;  /* greenlet.__init__, when it wraps the original */

static int
hooked_init(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (original_init == NULL || original_init(self, args, kwargs) < 0) {
        return -1;
    }
    PyObject *cb = created_callback;
    if (cb != NULL) {
        Py_INCREF(cb);
        PyObject *r = PyObject_CallOneArg(cb, self);
        Py_DECREF(cb);
        if (r == NULL) {
            PyErr_Clear();
        }
        else {
            Py_DECREF(r);
        }
    }
    return 0;
}

static PyObject *
hook_init(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "hook_init(greenlet_type, callback or None)");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    PyObject *cb = args[1];
    if (cb == Py_None) {
        Py_CLEAR(created_callback);
        if (hooked_type == type && type->tp_init == hooked_init) {
            type->tp_init = original_init;  /* subclasses made meanwhile keep hooked_init: it still works */
        }
        if (init_wrapper != NULL && init_wrapper->d_wrapped == (void *)hooked_init) {
            init_wrapper->d_wrapped = (void *)original_init;
        }
        Py_RETURN_FALSE;
    }
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable");
        return NULL;
    }
    if (hooked_type != NULL && hooked_type != type) {
        Py_RETURN_FALSE;  /* one greenlet type per process */
    }
    if (type->tp_init != hooked_init) {
        if (type->tp_init == NULL) {
            Py_RETURN_FALSE;
        }
        original_init = type->tp_init;
        hooked_type = type;
        type->tp_init = hooked_init;
    }
    if (init_wrapper == NULL) {
        PyObject *d = PyObject_GetAttrString((PyObject *)type, "__init__");
        if (d == NULL) {
            PyErr_Clear();
        }
        else if (Py_IS_TYPE(d, &PyWrapperDescr_Type)) {
            init_wrapper = (PyWrapperDescrObject *)d;  /* kept: the type holds it for good anyway */
        }
        else {
            Py_DECREF(d);
        }
    }
    if (init_wrapper != NULL && init_wrapper->d_wrapped == (void *)original_init) {
        init_wrapper->d_wrapped = (void *)hooked_init;
    }
    Py_XSETREF(created_callback, Py_NewRef(cb));
    Py_RETURN_TRUE;
}

static PyMethodDef greenlet_functions[] = {
    {"hook_greenlet_init", (PyCFunction)(void (*)(void))hook_init, METH_FASTCALL,
     "hook_greenlet_init(type, callback): callback(g) after each greenlet g of `type` is initialised "
     "(None: stop). True if hooked."},
    {NULL},
};

int
cv_greenlet_register(PyObject *module)
{
    struct { PyObject **slot; const char *text; } strings[] = {
        {&str_attr, "_concurview"}, {&str_gr_frame, "gr_frame"},
        {&str_switch, "switch"}, {&str_returned, "returned"}, {&str_raised, "raised"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (*strings[i].slot == NULL && (*strings[i].slot = PyUnicode_InternFromString(strings[i].text)) == NULL) {
            return -1;
        }
    }
    if (PyType_Ready(&GreenletTracerType) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(module, greenlet_functions) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "GreenletTracer", (PyObject *)&GreenletTracerType);
}
