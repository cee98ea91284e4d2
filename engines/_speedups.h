/* concurview.engines._speedups: what the hot paths of the engines share (the event buffer). */

#ifndef CONCURVIEW_SPEEDUPS_H
#define CONCURVIEW_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Event kinds: the order of engines/events.py EVENT_KINDS. */
enum { CV_OPEN, CV_RUN, CV_WAIT, CV_READY, CV_LOG, CV_ERROR, CV_CLOSE, CV_PHASE, CV_MARK };

#define CV_NONE (-1)      /* a cause that is None (and the lane cap's UNTRACED lane) */
#define CV_MEMO 64        /* strings whose ids are remembered by address (a power of two) */

/* The events of one process not yet sent, column by column, strings interned per process. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t n, cap;
    int64_t *t, *lane, *cause;
    uint32_t *reason, *where, *text;
    uint8_t *kind;
    PyObject *ids;        /* str -> int: every string sent since the last reset */
    PyObject *fresh;      /* strings first seen since the last take(), in id order */
    uint32_t next_id;     /* 0 means None */
    int reset_pending;    /* the next frame starts a new string table */
    int untraced;         /* an event of an UNTRACED lane (or cause) is in the buffer */
    int64_t t0;           /* trace start, monotonic ns */
    uint64_t serial;      /* this buffer's number: a thread's current lane belongs to one buffer */
    int64_t main_lane;    /* the current lane of a thread no engine told about */
    PyObject *thread_lanes;  /* thread ident -> lane, for threads whose lane is known elsewhere */
    Py_ssize_t batch;     /* on_full is called when a record() finds this many events pending */
    Py_ssize_t next_full; /* ... or, when it could not flush (another thread is writing), this many */
    Py_ssize_t limit;     /* `cap`: past this many pending, on_full is asked at every event (it may drop them) */
    PyObject *on_full;    /* () -> bool: flush (False), or drop this event (True) */
    PyObject *weakrefs;
    char *enc;            /* take_frame()'s scratch: one frame encoded, reused (no allocation per frame) */
    Py_ssize_t enc_len, enc_cap;
    struct { PyObject *s; uint32_t id; } memo[CV_MEMO];  /* recent strings by address (owned refs) */
} EventBuffer;

extern PyTypeObject CV_EventBufferType;
extern PyTypeObject CV_EventParserType;  /* _speedups_json.c: trace event lines into columns */

/* A Python int as int64: -1 with an exception set on failure. Lane ids (pid << 24 | n) are
 * two-digit ints, which PyLong_AsLong reads directly and PyLong_AsLongLong (3.11) converts
 * through a byte array, ~100 instructions more. */
static inline int64_t
cv_int64(PyObject *o)
{
#if LONG_MAX >= INT64_MAX
    return PyLong_AsLong(o);
#else
    return PyLong_AsLongLong(o);
#endif
}

/* The lane now running on the calling OS thread, as the engines keep it (greenlets and tasks
 * take turns on a thread: each switch sets it). One C thread-local per thread, owned by one
 * buffer at a time: the recorder of the process (tests may make others; a buffer reads only
 * what it set itself). */
int cv_lane_get(EventBuffer *b, int64_t *lane);  /* 1 and *lane when set, else 0 */
void cv_lane_set(EventBuffer *b, int64_t lane);
void cv_lane_unset(EventBuffer *b);
/* The current lane, or where unset the thread's lane in thread_lanes, or main_lane. -1 on error. */
int cv_current_lane(EventBuffer *b, int64_t *lane);

/* Monotonic nanoseconds, the clock of time.monotonic_ns(). */
int64_t cv_monotonic_ns(void);

/* Append one event. Strings may be NULL or None. 0, or -1 with an exception set. */
int cv_push(EventBuffer *b, int64_t t, int64_t lane, int kind, PyObject *reason, PyObject *where,
            int64_t cause, PyObject *text);

/* Before recording at a batch boundary: 0 record, 1 drop (counted by on_full), -1 error. */
int cv_room(EventBuffer *b);

/* Each fast path in its own file adds its types to the module (called from module_exec). 0, or -1. */
int cv_greenlet_register(PyObject *module);   /* _speedups_greenlet.c: GreenletTracer */
int cv_asyncio_register(PyObject *module);    /* _speedups_asyncio.c: TracedCoro */
int cv_threads_register(PyObject *module);    /* _speedups_threads.c: ThreadHook, ThreadMethod */

#endif
