/* concurview.engines._speedups: what the hot paths of the engines share (the event buffer). */

#ifndef CONCURVIEW_SPEEDUPS_H
#define CONCURVIEW_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Event kinds: the order of engines/events.py EVENT_KINDS. */
enum { CV_OPEN, CV_RUN, CV_WAIT, CV_READY, CV_LOG, CV_ERROR, CV_CLOSE, CV_PHASE, CV_MARK, CV_BLOCK, CV_SAMPLE };

/* Branch hints and cold paths: a traced switch runs inside the interpreter's hot loop, and every
 * cache line of code it touches evicts one of the interpreter's (greenlet ping-pong: 85 L1i misses
 * a round traced, 10 with a no-op tracer, cachegrind). Error and slow paths are laid out of line. */
#if defined(__GNUC__)
#define CV_LIKELY(x) __builtin_expect(!!(x), 1)
#define CV_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CV_COLD __attribute__((cold, noinline))
#else
#define CV_LIKELY(x) (x)
#define CV_UNLIKELY(x) (x)
#define CV_COLD
#endif

#define CV_NONE (-1)      /* a cause that is None (and the lane cap's UNTRACED lane) */
#define CV_MEMO_BITS 10   /* strings whose ids are remembered by address: 2**10 slots (16 KB a buffer) */
#define CV_MEMO (1 << CV_MEMO_BITS)

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
    Py_ssize_t table_chars;  /* characters of the strings in the table (it starts over past a budget) */
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
 * what it set itself). A store to these is what a greenlet switch or a task step costs to say
 * who runs now (a thread-local dict, Python's threading.local, costs ~200 instructions a store);
 * the initial-exec model makes it one store, not a call to __tls_get_addr. */
#if defined(_MSC_VER)
#define CV_THREAD_LOCAL __declspec(thread)
#elif defined(__GNUC__) && defined(__ELF__)
#define CV_THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define CV_THREAD_LOCAL _Thread_local
#endif
extern CV_THREAD_LOCAL uint64_t cv_tls_owner;  /* the serial of the buffer that set cv_tls_lane; 0: none */
extern CV_THREAD_LOCAL int64_t cv_tls_lane;

/* 1 and *lane when this buffer set the thread's lane, else 0. */
static inline int
cv_lane_get(EventBuffer *b, int64_t *lane)
{
    if (cv_tls_owner != b->serial) {
        return 0;
    }
    *lane = cv_tls_lane;
    return 1;
}

static inline void
cv_lane_set(EventBuffer *b, int64_t lane)
{
    cv_tls_owner = b->serial;
    cv_tls_lane = lane;
}

void cv_lane_unset(EventBuffer *b);
/* The current lane, or where unset the thread's lane in thread_lanes, or main_lane. -1 on error. */
int cv_current_lane(EventBuffer *b, int64_t *lane);

/* Monotonic nanoseconds, the clock of time.monotonic_ns(). */
int64_t cv_monotonic_ns(void);

/* The slow paths of the inline functions below (engines/_speedups.c). */
CV_COLD uint32_t cv_intern_slow(EventBuffer *b, PyObject *s, size_t slot);
CV_COLD int cv_grow(EventBuffer *b);
CV_COLD int cv_room_slow(EventBuffer *b);

/* The id of s in this process's string table (0 for None), adding it when new; (uint32_t)-1 on error.
 * A hot path records the same few strings over and over (`switch → pong`, `x.py:12`): the last
 * ids are remembered by the string's address. The memo owns a reference, so an address it holds
 * is that string's and no other's; it is cleared whenever the table starts over. */
static inline uint32_t
cv_intern(EventBuffer *b, PyObject *s)
{
    if (s == NULL || s == Py_None) {
        return 0;
    }
    /* Fibonacci hashing of the address: a program's lanes each have their own `switch → name`
     * (gevent: one per greenlet the hub switches to), made one after another at regular strides. */
    size_t slot = (size_t)(((uint64_t)(uintptr_t)s >> 4) * 0x9E3779B97F4A7C15ull >> (64 - CV_MEMO_BITS));
    if (CV_LIKELY(b->memo[slot].s == s)) {
        return b->memo[slot].id;
    }
    return cv_intern_slow(b, s, slot);
}

/* Append one event. Strings may be NULL or None. 0, or -1 with an exception set.
 * Inline: the engines' fast paths (other files) append an event or two per switch. */
static inline int
cv_push(EventBuffer *b, int64_t t, int64_t lane, int kind, PyObject *reason, PyObject *where,
        int64_t cause, PyObject *text)
{
    uint32_t r = cv_intern(b, reason), w, x;
    if (CV_UNLIKELY(r == (uint32_t)-1)) {
        return -1;
    }
    w = cv_intern(b, where);
    if (CV_UNLIKELY(w == (uint32_t)-1)) {
        return -1;
    }
    x = cv_intern(b, text);
    if (CV_UNLIKELY(x == (uint32_t)-1)) {
        return -1;
    }
    if (CV_UNLIKELY(b->n == b->cap) && cv_grow(b) < 0) {
        return -1;
    }
    Py_ssize_t i = b->n++;
    b->t[i] = t;
    b->lane[i] = lane;
    b->kind[i] = (uint8_t)kind;
    b->cause[i] = cause;
    b->reason[i] = r;
    b->where[i] = w;
    b->text[i] = x;
    if (CV_UNLIKELY(lane == CV_NONE)) {  /* the lane cap's UNTRACED lane */
        b->untraced = 1;
    }
    return 0;
}

/* Before recording at a batch boundary: 0 record, 1 drop (counted by on_full), -1 error. */
static inline int
cv_room(EventBuffer *b)
{
    return CV_LIKELY(b->n < b->next_full) ? 0 : cv_room_slow(b);
}

/* Each fast path in its own file adds its types to the module (called from module_exec). 0, or -1. */
int cv_greenlet_register(PyObject *module);   /* _speedups_greenlet.c: GreenletTracer */
int cv_asyncio_register(PyObject *module);    /* _speedups_asyncio.c: TracedCoro */
int cv_threads_register(PyObject *module);    /* _speedups_threads.c: ThreadHook, ThreadMethod */

#endif
