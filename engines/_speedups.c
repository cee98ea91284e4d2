/* concurview.engines._speedups: the child's event buffer, in columns, with strings interned per process.
 *
 * Engines record millions of events; a Python tuple per event and a msgpack
 * object per event to send it were most of their cost. Here an event is a row
 * of seven machine words appended to growable columns, and take_frame() hands
 * them over as one wire frame (engines/recorder.py), each column narrowed to the
 * fewest bytes that hold its values, read by the runner with numpy, without a
 * Python object per event on either side.
 */

#include "_speedups.h"

#include <stddef.h>
#include <string.h>
#include <time.h>
#ifdef __APPLE__
#include <mach/mach_time.h>
#endif

/* Past this many strings the table starts over (a flood of unique log lines must not grow it forever). */
#define CV_MAX_STRINGS (1 << 16)
/* ... or past this many characters: the table's memory is bounded in bytes too (and a frame that
 * restores it on a new stream, Recorder._recover, stays far below the runner's MAX_FRAME). */
#define CV_MAX_TABLE_CHARS (16 << 20)

int64_t
cv_monotonic_ns(void)
{
#if defined(__APPLE__)
    /* CPython's time.monotonic_ns() on macOS: mach_absolute_time scaled by the timebase. */
    static mach_timebase_info_data_t base;
    if (base.denom == 0) {
        mach_timebase_info(&base);
    }
    return (int64_t)(mach_absolute_time() * base.numer / base.denom);
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

/* -- growth ------------------------------------------------------------------------------ */

int
cv_grow(EventBuffer *b)
{
    Py_ssize_t cap = b->cap ? b->cap * 2 : 512;
#define GROW(field, type)                                                   \
    do {                                                                    \
        type *p = PyMem_Realloc(b->field, (size_t)cap * sizeof(type));      \
        if (p == NULL) {                                                    \
            PyErr_NoMemory();                                               \
            return -1;                                                      \
        }                                                                   \
        b->field = p;                                                       \
    } while (0)
    GROW(t, int64_t);
    GROW(lane, int64_t);
    GROW(cause, int64_t);
    GROW(reason, uint32_t);
    GROW(where, uint32_t);
    GROW(text, uint32_t);
    GROW(kind, uint8_t);
#undef GROW
    b->cap = cap;
    return 0;
}

/* -- strings ----------------------------------------------------------------------------- */

/* Forget the remembered ids (the table starts over, or the buffer goes). */
static void
memo_clear(EventBuffer *b)
{
    for (int i = 0; i < CV_MEMO; i++) {
        Py_CLEAR(b->memo[i].s);
    }
}

/* cv_intern's slow path: s is not in the memo (or not an exact str). */
uint32_t
cv_intern_slow(EventBuffer *b, PyObject *s, size_t slot)
{
    PyObject *key = s;
    if (!PyUnicode_CheckExact(s)) {
        /* A str subclass or anything else: its text, as the JSON writer would store it. */
        key = PyObject_Str(s);
        if (key == NULL) {
            return (uint32_t)-1;
        }
    }
    else {
        Py_INCREF(key);
    }
    PyObject *found = PyDict_GetItemWithError(b->ids, key);
    uint32_t id;
    if (found != NULL) {
        id = (uint32_t)PyLong_AsUnsignedLong(found);
    }
    else if (PyErr_Occurred()) {
        id = (uint32_t)-1;
    }
    else {
        id = b->next_id;
        PyObject *value = PyLong_FromUnsignedLong(id);
        if (value == NULL || PyDict_SetItem(b->ids, key, value) < 0 || PyList_Append(b->fresh, key) < 0) {
            id = (uint32_t)-1;
        }
        else {
            b->next_id++;
            b->table_chars += PyUnicode_GET_LENGTH(key);
        }
        Py_XDECREF(value);
    }
    Py_DECREF(key);
    if (id != (uint32_t)-1 && PyUnicode_CheckExact(s)) {
        Py_INCREF(s);
        Py_XSETREF(b->memo[slot].s, s);
        b->memo[slot].id = id;
    }
    return id;
}

/* -- the current lane of each thread -------------------------------------------------------- */

CV_THREAD_LOCAL uint64_t cv_tls_owner;
CV_THREAD_LOCAL int64_t cv_tls_lane;
static uint64_t next_serial = 1;  /* under the GIL */

void
cv_lane_unset(EventBuffer *b)
{
    if (cv_tls_owner == b->serial) {
        cv_tls_owner = 0;
    }
}

int
cv_current_lane(EventBuffer *b, int64_t *lane)
{
    if (cv_lane_get(b, lane)) {
        return 0;
    }
    *lane = b->main_lane;
    if (b->thread_lanes == NULL || PyDict_GET_SIZE(b->thread_lanes) == 0) {
        return 0;
    }
    PyObject *ident = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
    if (ident == NULL) {
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(b->thread_lanes, ident);
    Py_DECREF(ident);
    if (found != NULL) {
        int64_t v = cv_int64(found);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        *lane = v;
    }
    return PyErr_Occurred() ? -1 : 0;
}

/* -- the C API the fast paths use ---------------------------------------------------------- */

int
cv_room_slow(EventBuffer *b)
{
    if (b->on_full == NULL || b->on_full == Py_None) {
        return 0;
    }
    PyObject *r = PyObject_CallNoArgs(b->on_full);
    if (r == NULL) {
        return -1;
    }
    int drop = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (drop == 0 && b->n >= b->next_full) {
        /* Nothing was taken: another thread holds the write (the flusher, waiting for the GIL).
         * Ask again a batch later, not at every event (a Python call each), or at the cap. */
        Py_ssize_t next = b->n + b->batch;
        b->next_full = next <= b->limit ? next : (b->limit > b->n ? b->limit : b->n + 1);
    }
    return drop;
}

/* -- Python-level methods ------------------------------------------------------------------ */

static int
as_i64(PyObject *o, int64_t *out, int64_t if_none)
{
    if (o == NULL || o == Py_None) {
        *out = if_none;
        return 0;
    }
    int64_t v = cv_int64(o);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = v;
    return 0;
}

/* (t, lane, kind[, reason[, where[, cause[, text]]]]) — the tuples engines append. */
static int
push_tuple(EventBuffer *b, PyObject *ev)
{
    if (!PyTuple_Check(ev) || PyTuple_GET_SIZE(ev) < 3 || PyTuple_GET_SIZE(ev) > 7) {
        PyErr_SetString(PyExc_TypeError, "an event is a tuple (t, lane, kind[, reason, where, cause, text])");
        return -1;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(ev);
    int64_t t, lane, kind, cause;
    if (as_i64(PyTuple_GET_ITEM(ev, 0), &t, 0) < 0 || as_i64(PyTuple_GET_ITEM(ev, 1), &lane, CV_NONE) < 0
        || as_i64(PyTuple_GET_ITEM(ev, 2), &kind, 0) < 0
        || as_i64(size > 5 ? PyTuple_GET_ITEM(ev, 5) : NULL, &cause, CV_NONE) < 0) {
        return -1;
    }
    if (kind < 0 || kind > 255) {
        PyErr_SetString(PyExc_ValueError, "event kind out of range");
        return -1;
    }
    return cv_push(b, t, lane, (int)kind, size > 3 ? PyTuple_GET_ITEM(ev, 3) : NULL,
                   size > 4 ? PyTuple_GET_ITEM(ev, 4) : NULL, cause, size > 6 ? PyTuple_GET_ITEM(ev, 6) : NULL);
}

static PyObject *
buf_append(EventBuffer *b, PyObject *ev)
{
    if (push_tuple(b, ev) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
buf_extend(EventBuffer *b, PyObject *events)
{
    PyObject *it = PyObject_GetIter(events);
    if (it == NULL) {
        return NULL;
    }
    PyObject *ev;
    while ((ev = PyIter_Next(it)) != NULL) {
        int rc = push_tuple(b, ev);
        Py_DECREF(ev);
        if (rc < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* record(lane, kind, reason=None, where=None, cause=None, text=None), now; record_at(t, lane, ...). */
static PyObject *
record_impl(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int timed)
{
    static const char *const names[] = {"t", "lane", "kind", "reason", "where", "cause", "text"};
    PyObject *v[7] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int first = timed ? 0 : 1;  /* record() has no t */
    Py_ssize_t npos = nargs;
    if (npos > 7 - first) {
        PyErr_SetString(PyExc_TypeError, "record() takes at most 6 arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < npos; i++) {
        v[first + i] = args[i];
    }
    if (kwnames != NULL) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            int slot = -1;
            for (int j = first; j < 7; j++) {
                if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0) {
                    slot = j;
                    break;
                }
            }
            if (slot < 0 || v[slot] != NULL) {
                PyErr_Format(PyExc_TypeError, "record() got an unexpected or repeated argument %R", name);
                return NULL;
            }
            v[slot] = args[npos + k];
        }
    }
    if ((timed && v[0] == NULL) || v[1] == NULL || v[2] == NULL) {
        PyErr_SetString(PyExc_TypeError, "record() needs a lane and a kind");
        return NULL;
    }
    int64_t t, lane, kind, cause;
    if (as_i64(v[1], &lane, CV_NONE) < 0 || as_i64(v[2], &kind, 0) < 0 || as_i64(v[5], &cause, CV_NONE) < 0) {
        return NULL;
    }
    if (kind < 0 || kind > 255) {
        PyErr_SetString(PyExc_ValueError, "event kind out of range");
        return NULL;
    }
    int drop = cv_room(b);
    if (drop < 0) {
        return NULL;
    }
    if (drop) {
        Py_RETURN_NONE;
    }
    if (timed) {
        if (as_i64(v[0], &t, 0) < 0) {
            return NULL;
        }
    }
    else {
        t = cv_monotonic_ns() - b->t0;
    }
    if (cv_push(b, t, lane, (int)kind, v[3], v[4], cause, v[6]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
buf_record(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return record_impl(b, args, PyVectorcall_NARGS(nargs), kwnames, 0);
}

static PyObject *
buf_record_at(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return record_impl(b, args, PyVectorcall_NARGS(nargs), kwnames, 1);
}

static PyObject *
buf_lane(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    int64_t lane;
    if (!cv_lane_get(b, &lane)) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong(lane);
}

static PyObject *
buf_set_lane(EventBuffer *b, PyObject *lane)
{
    if (lane == Py_None) {
        cv_lane_unset(b);
        Py_RETURN_NONE;
    }
    int64_t v = cv_int64(lane);
    if (v == -1 && PyErr_Occurred()) {
        return NULL;
    }
    cv_lane_set(b, v);
    Py_RETURN_NONE;
}

static PyObject *
buf_current_lane(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    int64_t lane;
    if (cv_current_lane(b, &lane) < 0) {
        return NULL;
    }
    return PyLong_FromLongLong(lane);
}

static PyObject *
buf_swap_lane(EventBuffer *b, PyObject *lane)
{
    int64_t prev;
    if (cv_current_lane(b, &prev) < 0) {
        return NULL;
    }
    PyObject *r = buf_set_lane(b, lane);
    if (r == NULL) {
        return NULL;
    }
    Py_DECREF(r);
    return PyLong_FromLongLong(prev);
}

static PyObject *
buf_now(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(cv_monotonic_ns() - b->t0);
}

/* Events of UNTRACED lanes go (their output moves to the main lane); an UNTRACED cause is None. */
static void
drop_untraced(EventBuffer *b, int64_t main_lane)
{
    Py_ssize_t out = 0;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (b->lane[i] == CV_NONE) {
            if (b->kind[i] != CV_LOG && b->kind[i] != CV_ERROR) {
                continue;
            }
            b->lane[i] = main_lane;
        }
        if (out != i) {
            b->t[out] = b->t[i];
            b->lane[out] = b->lane[i];
            b->kind[out] = b->kind[i];
            b->cause[out] = b->cause[i];
            b->reason[out] = b->reason[i];
            b->where[out] = b->where[i];
            b->text[out] = b->text[i];
        }
        out++;
    }
    b->n = out;
    b->untraced = 0;
}

/* The buffer after its events went out: empty, and the string table started over when it is full. */
static void
taken(EventBuffer *b)
{
    b->n = 0;
    b->next_full = b->batch;
    b->reset_pending = 0;
    if (PyDict_GET_SIZE(b->ids) > CV_MAX_STRINGS || b->table_chars > CV_MAX_TABLE_CHARS) {
        PyDict_Clear(b->ids);
        memo_clear(b);
        b->next_id = 1;
        b->table_chars = 0;
        b->reset_pending = 1;
    }
}

/* -- the wire's columns, each at the narrowest width that holds this frame's values ------------ */

/* A column on the wire (engines/events.py, "wire"): a base and n unsigned offsets of one width,
 * 0 (no bytes: every offset is 0), 1, 2, 4 or 8 bytes, native-endian. What an offset means:
 *   t                        t[i] = base + offset[0] + ... + offset[i]: the steps between events
 *                            (the encoder's base is t[0] and offset[0] is 0; a step back wraps: width 8)
 *   lane, kind, reason,      value = base + offset (the encoder's base: the smallest value)
 *   where, text
 *   cause                    offset 0 is None (-1), else cause = base + offset (base: smallest - 1)
 * All arithmetic mod 2**64, so any int64 values make the trip. Bases are rounded down when the
 * offsets still fit (plan_range): the frames of a process then share them, which the runner reads
 * faster. */
enum { COL_T, COL_LANE, COL_KIND, COL_CAUSE, COL_REASON, COL_WHERE, COL_TEXT, N_COLS };  /* wire order */

typedef struct {
    int64_t base;
    int width;
} cv_col;

static inline int
width_for(uint64_t max_offset)
{
    return max_offset == 0 ? 0 : max_offset <= 0xFF ? 1 : max_offset <= 0xFFFF ? 2 : max_offset <= 0xFFFFFFFFu ? 4 : 8;
}

/* The base of values lo..hi (as uint64, lo <= hi) at the narrowest width: lo rounded down to a
 * multiple of 2**(8 * width) when the values still fit (a base the process's other frames likely
 * share: 0 for small ids, pid << 24 for lane ids, which the runner decodes faster), else lo. */
static inline cv_col
plan_range(uint64_t lo, uint64_t hi)
{
    cv_col p;
    p.width = width_for(hi - lo);
    p.base = (int64_t)lo;
    if (p.width >= 1 && p.width <= 4) {
        uint64_t mask = ((uint64_t)1 << (8 * p.width)) - 1, round = lo & ~mask;
        if (hi - round <= mask) {
            p.base = (int64_t)round;
        }
    }
    return p;
}

/* Smallest and largest of v[0..n-1], n > 0, in one pass: as simple loop for the narrow types
 * (the compiler vectorises it), in two chains of compares for int64 (half the latency; int64
 * compares do not vectorise before SSE4.2). */
#define CV_MINMAX(type, v, n, lo, hi)                                           \
    do {                                                                        \
        type lo_ = (v)[0], hi_ = (v)[0];                                        \
        for (Py_ssize_t i_ = 1; i_ < (n); i_++) {                               \
            lo_ = (v)[i_] < lo_ ? (v)[i_] : lo_;                                \
            hi_ = (v)[i_] > hi_ ? (v)[i_] : hi_;                                \
        }                                                                       \
        (lo) = lo_;                                                             \
        (hi) = hi_;                                                             \
    } while (0)

#define CV_MINMAX2(type, v, n, lo, hi)                                          \
    do {                                                                        \
        type lo0_ = (v)[0], hi0_ = (v)[0], lo1_ = (v)[0], hi1_ = (v)[0];        \
        Py_ssize_t i_ = 1;                                                      \
        for (; i_ + 1 < (n); i_ += 2) {                                         \
            type a_ = (v)[i_], b_ = (v)[i_ + 1];                                \
            lo0_ = a_ < lo0_ ? a_ : lo0_;                                       \
            hi0_ = a_ > hi0_ ? a_ : hi0_;                                       \
            lo1_ = b_ < lo1_ ? b_ : lo1_;                                       \
            hi1_ = b_ > hi1_ ? b_ : hi1_;                                       \
        }                                                                       \
        if (i_ < (n)) {                                                         \
            lo0_ = (v)[i_] < lo0_ ? (v)[i_] : lo0_;                             \
            hi0_ = (v)[i_] > hi0_ ? (v)[i_] : hi0_;                             \
        }                                                                       \
        (lo) = lo1_ < lo0_ ? lo1_ : lo0_;                                       \
        (hi) = hi1_ > hi0_ ? hi1_ : hi0_;                                       \
    } while (0)

/* Base and width of column c of the buffer's n events. */
static cv_col
col_plan(EventBuffer *b, int c)
{
    cv_col p = {0, 0};
    Py_ssize_t n = b->n;
    if (n == 0) {
        return p;
    }
    switch (c) {
    case COL_T: {
        /* The width that holds the largest step is the one that holds them all or'ed (vectorised). */
        const int64_t *t = b->t;
        uint64_t steps = 0;
        for (Py_ssize_t i = 1; i < n; i++) {
            steps |= (uint64_t)t[i] - (uint64_t)t[i - 1];
        }
        p.base = t[0];
        p.width = width_for(steps);
        break;
    }
    case COL_LANE: {
        int64_t lo, hi;
        CV_MINMAX2(int64_t, b->lane, n, lo, hi);
        p = plan_range((uint64_t)lo, (uint64_t)hi);
        break;
    }
    case COL_CAUSE: {
        /* As unsigned, None (-1) is the largest value and the smallest of cause + 1 (0): the least
         * of c and the most of c + 1 are those of the causes that are not None. */
        const int64_t *v = b->cause;
        uint64_t lo = UINT64_MAX, hi = 0, lo1 = UINT64_MAX, hi1 = 0;
        Py_ssize_t i = 0;
        for (; i + 1 < n; i += 2) {  /* two chains, as CV_MINMAX2 */
            uint64_t u = (uint64_t)v[i], w = (uint64_t)v[i + 1];
            lo = u < lo ? u : lo;
            hi = u + 1 > hi ? u + 1 : hi;
            lo1 = w < lo1 ? w : lo1;
            hi1 = w + 1 > hi1 ? w + 1 : hi1;
        }
        if (i < n) {
            uint64_t u = (uint64_t)v[i];
            lo = u < lo ? u : lo;
            hi = u + 1 > hi ? u + 1 : hi;
        }
        lo = lo1 < lo ? lo1 : lo;
        hi = hi1 > hi ? hi1 : hi;
        if (hi == 0) {  /* all None */
            p.base = CV_NONE;
            break;
        }
        /* Offsets 1.. from the smallest less one; or, when they fit, from one less than it rounded
         * down (as plan_range: (pid << 24) - 1 for a process's own lanes, whose offset is then
         * their number + 1, and None's 0 is where the runner's table of them has None). */
        p.width = width_for(hi - lo);  /* the largest offset: (hi - 1) - (lo - 1) */
        p.base = (int64_t)(lo - 1);
        if (p.width >= 1 && p.width <= 4) {
            uint64_t mask = ((uint64_t)1 << (8 * p.width)) - 1, round = (lo & ~mask) - 1;
            if (hi - 1 - round <= mask) {
                p.base = (int64_t)round;
            }
        }
        break;
    }
    case COL_KIND: {
        uint8_t lo, hi;
        CV_MINMAX(uint8_t, b->kind, n, lo, hi);
        p = plan_range(lo, hi);
        break;
    }
    default: {
        const uint32_t *v = c == COL_REASON ? b->reason : c == COL_WHERE ? b->where : b->text;
        uint32_t lo, hi;
        CV_MINMAX(uint32_t, v, n, lo, hi);
        p = plan_range(lo, hi);
        break;
    }
    }
    return p;
}

/* Offsets from..n-1 of width w (1, 2, 4, 8) to dst, unaligned: OFFSET is an expression in i. */
#define CV_STORE(type, dst, from, n, OFFSET)                                 \
    for (Py_ssize_t i = (from); i < (n); i++) {                              \
        type o_ = (type)(OFFSET);                                            \
        memcpy((dst) + (size_t)i * sizeof(type), &o_, sizeof(type));         \
    }
#define CV_STORE_ALL(dst, from, n, w, OFFSET)                                \
    do {                                                                     \
        switch (w) {                                                         \
        case 1: CV_STORE(uint8_t, dst, from, n, OFFSET) break;               \
        case 2: CV_STORE(uint16_t, dst, from, n, OFFSET) break;              \
        case 4: CV_STORE(uint32_t, dst, from, n, OFFSET) break;              \
        default: CV_STORE(uint64_t, dst, from, n, OFFSET) break;             \
        }                                                                    \
    } while (0)

/* Column c's n offsets (p.width bytes each) to dst. */
static void
col_write(EventBuffer *b, int c, cv_col p, char *dst)
{
    Py_ssize_t n = b->n;
    uint64_t base = (uint64_t)p.base;
    if (p.width == 0 || n == 0) {
        return;
    }
    switch (c) {
    case COL_T: {
        const int64_t *t = b->t;
        memset(dst, 0, (size_t)p.width);  /* t[0] - base; then the steps */
        CV_STORE_ALL(dst, 1, n, p.width, (uint64_t)t[i] - (uint64_t)t[i - 1]);
        break;
    }
    case COL_LANE: {
        const int64_t *v = b->lane;
        CV_STORE_ALL(dst, 0, n, p.width, (uint64_t)v[i] - base);
        break;
    }
    case COL_CAUSE: {
        const int64_t *v = b->cause;
        if (p.width < 8 && ((base + 1) & (((uint64_t)1 << (8 * p.width)) - 1)) == 0) {
            /* A base one less than a multiple of 2**(8 * width) (the rounded one): None's offset,
             * -1 - base, is 0 in that many bits by itself (the narrowing copy vectorises). */
            CV_STORE_ALL(dst, 0, n, p.width, (uint64_t)v[i] - base);
        }
        else {
            CV_STORE_ALL(dst, 0, n, p.width, v[i] == CV_NONE ? 0 : (uint64_t)v[i] - base);
        }
        break;
    }
    case COL_KIND: {
        const uint8_t *v = b->kind;
        CV_STORE_ALL(dst, 0, n, p.width, (uint64_t)v[i] - base);
        break;
    }
    default: {
        const uint32_t *v = c == COL_REASON ? b->reason : c == COL_WHERE ? b->where : b->text;
        CV_STORE_ALL(dst, 0, n, p.width, (uint64_t)v[i] - base);
        break;
    }
    }
}

/* take(main_lane) -> (n, t, lane, kind, cause, reason, where, text, strings, reset) and an empty buffer.
 *
 * Each column is (base, offsets): bytes of n offsets of one width, as the wire carries it (above);
 * `strings` are the table's entries new in this frame (ids continue where the last frame's ended);
 * `reset` says the table started over with this frame.
 */
static PyObject *
buf_take(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t main_lane = 0;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "take() takes at most one argument");
        return NULL;
    }
    if (nargs == 1 && as_i64(args[0], &main_lane, 0) < 0) {
        return NULL;
    }
    if (b->untraced) {
        drop_untraced(b, main_lane);
    }
    Py_ssize_t n = b->n;
    PyObject *out = PyTuple_New(3 + N_COLS);
    if (out == NULL) {
        return NULL;
    }
    PyObject *count = PyLong_FromSsize_t(n);
    if (count == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, count);
    for (int c = 0; c < N_COLS; c++) {
        cv_col p = col_plan(b, c);
        PyObject *data = PyBytes_FromStringAndSize(NULL, n * p.width);
        if (data == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        col_write(b, c, p, PyBytes_AS_STRING(data));
        PyObject *col = Py_BuildValue("(LN)", (long long)p.base, data);
        if (col == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, 1 + c, col);
    }
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 1 + N_COLS, b->fresh);  /* the buffer's reference, handed over */
    b->fresh = fresh;
    PyTuple_SET_ITEM(out, 2 + N_COLS, Py_NewRef(b->reset_pending ? Py_True : Py_False));
    taken(b);
    return out;
}

/* -- take_frame: the frame encoded here ------------------------------------------------------ */

/* msgpack, as msgspec writes it (the smallest form of each value), into b->enc. */
static int
enc_room(EventBuffer *b, Py_ssize_t more)
{
    if (b->enc_len + more <= b->enc_cap) {
        return 0;
    }
    Py_ssize_t cap = b->enc_cap ? b->enc_cap : 4096;
    while (cap < b->enc_len + more) {
        cap *= 2;
    }
    char *p = PyMem_Realloc(b->enc, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->enc = p;
    b->enc_cap = cap;
    return 0;
}

static inline void
enc_be(EventBuffer *b, uint8_t tag, uint64_t v, int size)
{
    char *p = b->enc + b->enc_len;
    *p++ = (char)tag;
    for (int i = size - 1; i >= 0; i--) {
        *p++ = (char)(v >> (8 * i));
    }
    b->enc_len += 1 + size;
}

static int
enc_int(EventBuffer *b, int64_t v)
{
    if (enc_room(b, 9) < 0) {
        return -1;
    }
    if (v >= 0) {
        if (v < 128) {
            b->enc[b->enc_len++] = (char)v;
        }
        else if (v <= 0xFF) {
            enc_be(b, 0xcc, (uint64_t)v, 1);
        }
        else if (v <= 0xFFFF) {
            enc_be(b, 0xcd, (uint64_t)v, 2);
        }
        else if (v <= 0xFFFFFFFFll) {
            enc_be(b, 0xce, (uint64_t)v, 4);
        }
        else {
            enc_be(b, 0xcf, (uint64_t)v, 8);
        }
    }
    else if (v >= -32) {
        b->enc[b->enc_len++] = (char)(uint8_t)(0xe0 | (v + 32));
    }
    else if (v >= -128) {
        enc_be(b, 0xd0, (uint64_t)v, 1);
    }
    else if (v >= -32768) {
        enc_be(b, 0xd1, (uint64_t)v, 2);
    }
    else if (v >= -2147483648ll) {
        enc_be(b, 0xd2, (uint64_t)v, 4);
    }
    else {
        enc_be(b, 0xd3, (uint64_t)v, 8);
    }
    return 0;
}

/* A str, bin or array header for size n (tags: fix base or -1, 8/16/32-bit forms). */
static int
enc_head(EventBuffer *b, Py_ssize_t n, int fix, Py_ssize_t fix_max, int t8, int t16, int t32, Py_ssize_t more)
{
    if (enc_room(b, 5 + more) < 0) {
        return -1;
    }
    if (fix >= 0 && n <= fix_max) {
        b->enc[b->enc_len++] = (char)(uint8_t)(fix | n);
    }
    else if (t8 >= 0 && n <= 0xFF) {
        enc_be(b, (uint8_t)t8, (uint64_t)n, 1);
    }
    else if (n <= 0xFFFF) {
        enc_be(b, (uint8_t)t16, (uint64_t)n, 2);
    }
    else if ((uint64_t)n <= 0xFFFFFFFFull) {
        enc_be(b, (uint8_t)t32, (uint64_t)n, 4);
    }
    else {
        PyErr_SetString(PyExc_OverflowError, "a frame field is too large for msgpack");
        return -1;
    }
    return 0;
}

/* The event columns, each as the array [base, bin of offsets] (narrowed by col_write). */
static int
enc_columns(EventBuffer *b)
{
    Py_ssize_t n = b->n;
    for (int c = 0; c < N_COLS; c++) {
        cv_col p = col_plan(b, c);
        Py_ssize_t size = n * p.width;
        if (enc_room(b, 1) < 0) {
            return -1;
        }
        b->enc[b->enc_len++] = (char)(0x90 | 2);
        if (enc_int(b, p.base) < 0 || enc_head(b, size, -1, 0, 0xc4, 0xc5, 0xc6, size) < 0) {
            return -1;
        }
        col_write(b, c, p, b->enc + b->enc_len);
        b->enc_len += size;
    }
    return 0;
}

/* What lanes and strings hold: None, bool, int, str, and tuples or lists of them. */
static int
enc_obj(EventBuffer *b, PyObject *o, int depth)
{
    if (o == Py_None || o == Py_True || o == Py_False) {
        if (enc_room(b, 1) < 0) {
            return -1;
        }
        b->enc[b->enc_len++] = (char)(o == Py_None ? 0xc0 : o == Py_True ? 0xc3 : 0xc2);
        return 0;
    }
    if (PyLong_Check(o)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow != 0) {
            unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(o) : (unsigned long long)-1;
            if (overflow < 0 || (u == (unsigned long long)-1 && PyErr_Occurred())) {
                PyErr_Clear();
                PyErr_SetString(PyExc_OverflowError, "can't serialize ints < -2**63 or > 2**64 - 1");
                return -1;
            }
            if (enc_room(b, 9) < 0) {
                return -1;
            }
            enc_be(b, 0xcf, u, 8);
            return 0;
        }
        return enc_int(b, v);
    }
    if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        PyObject *replaced = NULL;
        const char *text = PyUnicode_AsUTF8AndSize(o, &n);
        if (text == NULL && PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            /* Lone surrogates (a surrogateescape'd path, a printed U+DCFF): each sent as '?', as the
             * program's stream (errors="replace") promises; a frame is always valid UTF-8. */
            PyErr_Clear();
            replaced = PyUnicode_AsEncodedString(o, "utf-8", "replace");
            if (replaced != NULL) {
                text = PyBytes_AS_STRING(replaced);
                n = PyBytes_GET_SIZE(replaced);
            }
        }
        if (text == NULL || enc_head(b, n, 0xa0, 31, 0xd9, 0xda, 0xdb, n) < 0) {
            Py_XDECREF(replaced);
            return -1;
        }
        memcpy(b->enc + b->enc_len, text, (size_t)n);
        b->enc_len += n;
        Py_XDECREF(replaced);
        return 0;
    }
    if ((PyTuple_Check(o) || PyList_Check(o)) && depth < 4) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        if (enc_head(b, n, 0x90, 15, -1, 0xdc, 0xdd, 0) < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (enc_obj(b, PySequence_Fast_GET_ITEM(o, i), depth + 1) < 0) {
                return -1;
            }
        }
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "take_frame() cannot encode %.100s", Py_TYPE(o)->tp_name);
    return -1;
}

/* take_frame(out, at, pid, lanes, dropped, main_lane) -> end: what take() returns, as the wire's Frame
 * (engines/events.py) encoded after a 4-byte little-endian length, written into bytearray out at
 * offset at (out grows when it must, never shrinks: the caller reuses it and writes out[:end]).
 * Byte for byte what msgspec writes for Frame(pid, lanes, dropped, *take(main_lane)), without a
 * bytes object per column or a Python object per field: the child's flush is most of this. */
static PyObject *
buf_take_frame(EventBuffer *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyByteArray_CheckExact(args[0]) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "take_frame(out: bytearray, at, pid, lanes: list, dropped, main_lane)");
        return NULL;
    }
    PyObject *out = args[0];
    Py_ssize_t at = PyLong_AsSsize_t(args[1]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (at < 0 || at > PyByteArray_GET_SIZE(out)) {
        PyErr_SetString(PyExc_ValueError, "take_frame(): offset outside the bytearray");
        return NULL;
    }
    int64_t pid, dropped, main_lane;
    if (as_i64(args[2], &pid, 0) < 0 || as_i64(args[4], &dropped, 0) < 0 || as_i64(args[5], &main_lane, 0) < 0) {
        return NULL;
    }
    if (b->untraced) {
        drop_untraced(b, main_lane);
    }
    Py_ssize_t n = b->n;
    b->enc_len = 0;
    if (enc_room(b, 4 + 1) < 0) {
        return NULL;
    }
    b->enc_len = 4;  /* the length, once known */
    b->enc[b->enc_len++] = (char)(0x90 | 13);  /* Frame: 13 fields, as an array */
    if (enc_int(b, pid) < 0 || enc_obj(b, args[3], 0) < 0 || enc_int(b, dropped) < 0 || enc_int(b, n) < 0
        || enc_columns(b) < 0 || enc_obj(b, b->fresh, 0) < 0
        || enc_obj(b, b->reset_pending ? Py_True : Py_False, 0) < 0) {
        return NULL;
    }
    uint32_t size = (uint32_t)(b->enc_len - 4);
    for (int i = 0; i < 4; i++) {
        b->enc[i] = (char)(size >> (8 * i));
    }
    Py_ssize_t end = at + b->enc_len;
    if (end > PyByteArray_GET_SIZE(out) && PyByteArray_Resize(out, end) < 0) {
        return NULL;
    }
    memcpy(PyByteArray_AS_STRING(out) + at, b->enc, (size_t)b->enc_len);
    if (PyList_GET_SIZE(b->fresh) > 0 && PyList_SetSlice(b->fresh, 0, PyList_GET_SIZE(b->fresh), NULL) < 0) {
        return NULL;
    }
    taken(b);
    return PyLong_FromSsize_t(end);
}

static PyObject *
buf_clear(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    b->n = 0;
    b->next_full = b->batch;
    b->untraced = 0;
    Py_RETURN_NONE;
}

static PyObject *
buf_reset_strings(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    /* A forked child: its own stream starts with its own table. */
    PyDict_Clear(b->ids);
    memo_clear(b);
    if (PyList_SetSlice(b->fresh, 0, PyList_GET_SIZE(b->fresh), NULL) < 0) {
        return NULL;
    }
    b->next_id = 1;
    b->table_chars = 0;
    b->reset_pending = 0;
    Py_RETURN_NONE;
}

/* table() -> the strings of the table in id order (ids 1, 2, ...): what a new stream is sent so that
 * frames encoded for the old one still decode (the channel lost and reconnected: Recorder._recover). */
static PyObject *
buf_table(EventBuffer *b, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t n = (Py_ssize_t)b->next_id - 1, pos = 0;
    PyObject *out = PyList_New(n), *key, *value;
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyList_SET_ITEM(out, i, Py_NewRef(Py_None));
    }
    while (PyDict_Next(b->ids, &pos, &key, &value)) {
        unsigned long id = PyLong_AsUnsignedLong(value);
        if (id >= 1 && (Py_ssize_t)id <= n) {
            PyList_SetItem(out, (Py_ssize_t)id - 1, Py_NewRef(key));
        }
    }
    return out;
}

static Py_ssize_t
buf_len(EventBuffer *b)
{
    return b->n;
}

static int
buf_bool(EventBuffer *b)
{
    return b->n > 0;
}

/* -- lifecycle ----------------------------------------------------------------------------- */

static int
buf_init(EventBuffer *b, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"t0", "batch", "on_full", "cap", NULL};
    long long t0 = 0;
    Py_ssize_t batch = 256, cap = PY_SSIZE_T_MAX;
    PyObject *on_full = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|LnOn", kwlist, &t0, &batch, &on_full, &cap)) {
        return -1;
    }
    b->t0 = t0;
    b->batch = batch;
    b->next_full = batch;
    b->limit = cap;
    if (b->serial == 0) {
        b->serial = next_serial++;
    }
    Py_INCREF(on_full);
    Py_XSETREF(b->on_full, on_full);
    if (b->ids == NULL && (b->ids = PyDict_New()) == NULL) {
        return -1;
    }
    if (b->fresh == NULL && (b->fresh = PyList_New(0)) == NULL) {
        return -1;
    }
    if (b->next_id == 0) {
        b->next_id = 1;
    }
    if (b->cap == 0 && cv_grow(b) < 0) {  /* take() always has columns to copy, even empty ones */
        return -1;
    }
    return 0;
}

static int
buf_traverse(EventBuffer *b, visitproc visit, void *arg)
{
    Py_VISIT(b->on_full);
    Py_VISIT(b->thread_lanes);
    return 0;
}

static int
buf_clear_refs(EventBuffer *b)
{
    Py_CLEAR(b->on_full);
    Py_CLEAR(b->thread_lanes);
    return 0;
}

static void
buf_dealloc(EventBuffer *b)
{
    PyObject_GC_UnTrack(b);
    if (b->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)b);
    }
    buf_clear_refs(b);
    Py_CLEAR(b->ids);
    Py_CLEAR(b->fresh);
    memo_clear(b);
    PyMem_Free(b->t);
    PyMem_Free(b->lane);
    PyMem_Free(b->cause);
    PyMem_Free(b->reason);
    PyMem_Free(b->where);
    PyMem_Free(b->text);
    PyMem_Free(b->kind);
    PyMem_Free(b->enc);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyObject *
get_t0(EventBuffer *b, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(b->t0);
}

static int
set_t0(EventBuffer *b, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "t0 cannot be deleted");
        return -1;
    }
    return as_i64(v, &b->t0, 0);
}

static PyObject *
get_cap(EventBuffer *b, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(b->limit);
}

static int
set_cap(EventBuffer *b, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cap cannot be deleted");
        return -1;
    }
    Py_ssize_t cap = PyLong_AsSsize_t(v);
    if (cap == -1 && PyErr_Occurred()) {
        return -1;
    }
    b->limit = cap;
    if (b->next_full > cap) {
        b->next_full = cap > b->batch ? cap : b->batch;
    }
    return 0;
}

static PyObject *
get_strings(EventBuffer *b, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(PyDict_GET_SIZE(b->ids));
}

static PyObject *
get_encoded(EventBuffer *b, void *Py_UNUSED(c))
{
    /* Ids 1..encoded went out with frames taken so far; the rest are new to the next frame. */
    return PyLong_FromSsize_t((Py_ssize_t)b->next_id - 1 - PyList_GET_SIZE(b->fresh));
}

static PyObject *
get_reset_pending(EventBuffer *b, void *Py_UNUSED(c))
{
    return PyBool_FromLong(b->reset_pending);
}

static PyMethodDef buf_methods[] = {
    {"append", (PyCFunction)buf_append, METH_O, "Append one event tuple (t, lane, kind[, reason, where, cause, text])."},
    {"extend", (PyCFunction)buf_extend, METH_O, "Append event tuples."},
    {"record", (PyCFunction)(void (*)(void))buf_record, METH_FASTCALL | METH_KEYWORDS,
     "record(lane, kind, reason=None, where=None, cause=None, text=None): an event now (on_full first, at a batch boundary)."},
    {"record_at", (PyCFunction)(void (*)(void))buf_record_at, METH_FASTCALL | METH_KEYWORDS,
     "record_at(t, lane, kind, reason=None, where=None, cause=None, text=None): an event at trace time t."},
    {"now", (PyCFunction)buf_now, METH_NOARGS, "Trace time now (monotonic ns since t0)."},
    {"lane", (PyCFunction)buf_lane, METH_NOARGS, "The lane an engine made current on this thread, or None."},
    {"set_lane", (PyCFunction)buf_set_lane, METH_O, "set_lane(lane): make lane current on this thread (None: forget it)."},
    {"current_lane", (PyCFunction)buf_current_lane, METH_NOARGS,
     "The lane running on this thread: the one set, else thread_lanes[ident], else main_lane."},
    {"swap_lane", (PyCFunction)buf_swap_lane, METH_O, "swap_lane(lane) -> current_lane() before it was set."},
    {"take", (PyCFunction)(void (*)(void))buf_take, METH_FASTCALL,
     "take(main_lane) -> (n, t, lane, kind, cause, reason, where, text, strings, reset), each column (base, offsets) as on the wire; empties the buffer."},
    {"take_frame", (PyCFunction)(void (*)(void))buf_take_frame, METH_FASTCALL,
     "take_frame(out, at, pid, lanes, dropped, main_lane) -> end: take()'s events as one length-prefixed wire Frame written into bytearray out at offset at."},
    {"clear", (PyCFunction)buf_clear, METH_NOARGS, "Forget the pending events."},
    {"reset_strings", (PyCFunction)buf_reset_strings, METH_NOARGS, "Start a new string table (a forked child)."},
    {"table", (PyCFunction)buf_table, METH_NOARGS, "The table's strings in id order (ids 1, 2, ...)."},
    {NULL},
};

static PyObject *
get_main_lane(EventBuffer *b, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(b->main_lane);
}

static int
set_main_lane(EventBuffer *b, PyObject *v, void *Py_UNUSED(c))
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "main_lane cannot be deleted");
        return -1;
    }
    return as_i64(v, &b->main_lane, 0);
}

static PyObject *
get_thread_lanes(EventBuffer *b, void *Py_UNUSED(c))
{
    return Py_NewRef(b->thread_lanes ? b->thread_lanes : Py_None);
}

static int
set_thread_lanes(EventBuffer *b, PyObject *v, void *Py_UNUSED(c))
{
    if (v != NULL && v != Py_None && !PyDict_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "thread_lanes is a dict (thread ident -> lane)");
        return -1;
    }
    Py_XSETREF(b->thread_lanes, v == NULL || v == Py_None ? NULL : Py_NewRef(v));
    return 0;
}

static PyGetSetDef buf_getset[] = {
    {"t0", (getter)get_t0, (setter)set_t0, "Trace start (monotonic ns).", NULL},
    {"main_lane", (getter)get_main_lane, (setter)set_main_lane, "The lane of a thread nobody told about.", NULL},
    {"thread_lanes", (getter)get_thread_lanes, (setter)set_thread_lanes,
     "thread ident -> lane: the current lane of threads that never set one.", NULL},
    {"strings", (getter)get_strings, NULL, "Strings in the table now.", NULL},
    {"encoded", (getter)get_encoded, NULL, "Strings of the table (ids 1..encoded) already in taken frames.", NULL},
    {"reset_pending", (getter)get_reset_pending, NULL, "The next frame starts a new string table.", NULL},
    {"cap", (getter)get_cap, (setter)set_cap,
     "Pending events past which on_full is asked at every event (below it, once a batch when it could not flush).", NULL},
    {NULL},
};

static PySequenceMethods buf_as_sequence = {
    .sq_length = (lenfunc)buf_len,
};

static PyNumberMethods buf_as_number = {
    .nb_bool = (inquiry)buf_bool,
};

PyTypeObject CV_EventBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurview.engines._speedups.EventBuffer",
    .tp_doc = "EventBuffer(t0=0, batch=256, on_full=None, cap=sys.maxsize): a process's pending events, in columns.",
    .tp_basicsize = sizeof(EventBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)buf_init,
    .tp_dealloc = (destructor)buf_dealloc,
    .tp_traverse = (traverseproc)buf_traverse,
    .tp_clear = (inquiry)buf_clear_refs,
    .tp_methods = buf_methods,
    .tp_getset = buf_getset,
    .tp_as_sequence = &buf_as_sequence,
    .tp_as_number = &buf_as_number,
    .tp_weaklistoffset = offsetof(EventBuffer, weakrefs),
};

/* -- module -------------------------------------------------------------------------------- */

static PyObject *
monotonic_ns(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLongLong(cv_monotonic_ns());
}

static PyMethodDef module_methods[] = {
    {"monotonic_ns", monotonic_ns, METH_NOARGS, "The clock the buffer stamps events with (time.monotonic_ns)."},
    {NULL},
};

static int
add_type(PyObject *m, const char *name, PyTypeObject *type)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(m, name, (PyObject *)type);
}

static int
module_exec(PyObject *m)
{
    if (add_type(m, "EventBuffer", &CV_EventBufferType) < 0 || add_type(m, "EventParser", &CV_EventParserType) < 0) {
        return -1;
    }
    if (cv_greenlet_register(m) < 0) {
        return -1;
    }
    if (cv_asyncio_register(m) < 0) {
        return -1;
    }
    if (cv_threads_register(m) < 0) {
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "concurview.engines._speedups",
    .m_doc = "Hot paths in C: the child's event buffer, the greenlet tracer, the trace file's event parser.",
    .m_size = 0,
    .m_methods = module_methods,
    .m_slots = module_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module_def);
}
