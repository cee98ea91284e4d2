/* The GIL view: a native sampler thread that sees who holds the GIL and which threads are blocked in the kernel.
 *
 * A pthread that never takes the GIL wakes every `period` ns and, for each thread that registered itself
 * (its PyThreadState*, its native tid and its lane), works out one sub-state:
 *   HOLDS    the GIL's last_holder is this thread's state and the GIL is locked (and the thread is on a CPU)
 *   GILWAIT  blocked in futex() on an address inside the interpreter's GIL state (waiting for the GIL)
 *   NOGIL    on a CPU without the GIL (C code that released it; a hand-off under way)
 *   KERNEL   blocked in any other system call (its number and first argument kept)
 *   ONCPU    on a CPU, no GIL known (a free-threaded build, a layout this build does not cover)
 * from the GIL's two atomics (pointer values compared, nothing dereferenced) and the thread's
 * /proc/self/task/TID/syscall ("running", or the syscall number and arguments), read with pread on an fd
 * kept open. Only changes go into a ring that the recorder's flusher drains (with the GIL) into events.
 *
 * The interpreter's layout comes from its own internal headers (Py_BUILD_CORE): 3.11 keeps the GIL in
 * _PyRuntime.ceval.gil, 3.12 and 3.13 behind the interpreter's ceval.gil pointer. Other versions and
 * free-threaded builds compile without them and say so through layout().
 */
#define PY_SSIZE_T_CLEAN
#include "pyconfig.h"
#include "patchlevel.h"

#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && defined(__linux__)
#  define GILVIEW_LAYOUT 1
#  ifndef Py_BUILD_CORE_MODULE
#    define Py_BUILD_CORE_MODULE 1
#  endif
#else
#  define GILVIEW_LAYOUT 0
#endif

#include <Python.h>

#if GILVIEW_LAYOUT
#  include "internal/pycore_gil.h"
#  if PY_VERSION_HEX < 0x030C0000
#    include "internal/pycore_runtime.h"
#  else
#    include "internal/pycore_interp.h"
#  endif
#endif

#if defined(Py_GIL_DISABLED)
#  define FREE_THREADED 1
#else
#  define FREE_THREADED 0
#endif

#ifdef __linux__
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define GILVIEW_OS 1
#else
#define GILVIEW_OS 0
#endif

enum { S_NONE = 0, S_HOLDS = 1, S_GILWAIT = 2, S_NOGIL = 3, S_KERNEL = 4, S_ONCPU = 5 };

#define MAX_SLOTS 1024
#define RING 16384

typedef struct {
    int used;
    int fd;                 /* /proc/self/task/TID/syscall */
    void *tstate;           /* compared, never dereferenced */
    long tid;
    long long lane;
    unsigned long long ident;
    int last;               /* last sub-state seen (S_NONE: none yet) */
    long last_nr;
    unsigned long long last_arg;
    clockid_t cpu_clock;    /* the thread's CPU-time clock */
    long long last_cpu, last_cpu_t;
} Slot;

typedef struct {
    long long t;
    long long lane;
    unsigned long long ident;
    long nr;
    unsigned long long arg;
    int state;
} Entry;

#if GILVIEW_OS
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static Slot slots[MAX_SLOTS];
static int n_slots;             /* slots in use are among the first n_slots */
static Entry ring[RING];
static size_t r_head, r_tail;   /* head: next to write; tail: next to read */
static unsigned long long r_dropped, n_samples, n_unregistered;
static atomic_int running;
static int started;
static pthread_t sampler;
static atomic_long sampler_tid;  /* its native id, kept after it ends (the fork-warning count reads it) */
static long long t0_ns, period_ns;
static uintptr_t gil_lo, gil_hi;  /* the GIL state's address range (futex waits inside it are GIL waits) */
#if GILVIEW_LAYOUT
static struct _gil_runtime_state *gil;
#endif

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void holder(void **who, int *locked)
{
    *who = NULL;
    *locked = 0;
#if GILVIEW_LAYOUT
    if (gil == NULL)
        return;
#  if PY_VERSION_HEX >= 0x030D0000
    *who = (void *)_Py_atomic_load_ptr_relaxed(&gil->last_holder);
    *locked = _Py_atomic_load_int_relaxed(&gil->locked);
#  else
    *who = (void *)_Py_atomic_load_relaxed(&gil->last_holder);
    *locked = _Py_atomic_load_relaxed(&gil->locked);
#  endif
#endif
}

/* The thread's syscall file: 1 on a CPU ("running"), 0 blocked in syscall *nr with first argument *arg,
   -1 unreadable (gone, or stopped outside a syscall). */
static int read_syscall(int fd, long *nr, unsigned long long *arg)
{
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (buf[0] == 'r')
        return 1;
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf || v < 0)
        return -1;
    *nr = v;
    *arg = strtoull(end, NULL, 16);
    return 0;
}

static void push(long long t, Slot *s, int state, long nr, unsigned long long arg)
{
    if (r_head - r_tail >= RING) {
        r_dropped++;
        return;
    }
    Entry *e = &ring[r_head % RING];
    e->t = t;
    e->lane = s->lane;
    e->ident = s->ident;
    e->state = state;
    e->nr = nr;
    e->arg = arg;
    r_head++;
}

static long long clock_ns(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -1;
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* On a CPU without the GIL: running C code that released it if the thread used at least half the time
   since it was last looked at (and did not hold the GIL then), else a hand-off: woken to take the GIL,
   or back from a system call and asking for it. */
static int runnable_state(Slot *s, long long t)
{
    long long cpu = clock_ns(s->cpu_clock);
    int state = S_GILWAIT;
    if (cpu >= 0 && s->last_cpu_t > 0 && s->last != S_HOLDS && t > s->last_cpu_t
        && (cpu - s->last_cpu) * 2 >= t - s->last_cpu_t)
        state = S_NOGIL;
    s->last_cpu = cpu;
    s->last_cpu_t = t;
    return state;
}

static void sample_once(void)
{
    void *who;
    int locked;
    holder(&who, &locked);
    long long t = mono_ns() - t0_ns;
    pthread_mutex_lock(&mu);
    n_samples++;
    for (int i = 0; i < n_slots; i++) {
        Slot *s = &slots[i];
        if (!s->used)
            continue;
        if (s->fd < 0) {
            char path[64];
            snprintf(path, sizeof(path), "/proc/self/task/%ld/syscall", s->tid);
            s->fd = open(path, O_RDONLY | O_CLOEXEC);
            if (s->fd < 0) {
                s->used = 0;  /* gone already, or /proc unreadable: not sampled */
                continue;
            }
        }
        long nr = -1;
        unsigned long long arg = 0;
        int state;
        int r = read_syscall(s->fd, &nr, &arg);
        if (r < 0)
            continue;
        if (r == 1) {
            nr = -1;
            arg = 0;
            if (gil_lo == 0)
                state = S_ONCPU;
            else if (locked && who == s->tstate) {
                state = S_HOLDS;
                s->last_cpu = clock_ns(s->cpu_clock);
                s->last_cpu_t = t;
            }
            else
                state = runnable_state(s, t);
        }
        else if (nr == SYS_futex && gil_lo != 0 && arg >= gil_lo && arg < gil_hi) {
            state = S_GILWAIT;
            nr = -1;
            arg = 0;
        }
        else if (nr == SYS_futex && gil_lo == 0 && !FREE_THREADED) {
            continue;  /* maybe a GIL wait, maybe a lock: no GIL layout to tell them apart */
        }
        else {
            state = S_KERNEL;
        }
        if (state != s->last || nr != s->last_nr || arg != s->last_arg) {
            s->last = state;
            s->last_nr = nr;
            s->last_arg = arg;
            push(t, s, state, nr, arg);
        }
    }
    pthread_mutex_unlock(&mu);
}

/* The next period: `period_ns` while the program keeps a CPU busy, longer (up to MAX_STRETCH times) while
   it uses little, so the sampler's own CPU time stays a small share (BUDGET) of the program's. */
#define MAX_STRETCH 16
#define BUDGET 0.02
static long long next_period(long long cost_ns, long long prog_cpu_ns, long long elapsed_ns)
{
    if (elapsed_ns <= 0 || prog_cpu_ns < 0)
        return period_ns;
    double rate = (double)prog_cpu_ns / (double)elapsed_ns;  /* CPUs the program kept busy */
    double want = rate > 0 ? (double)cost_ns / (BUDGET * rate) : (double)period_ns * MAX_STRETCH;
    if (want < (double)period_ns)
        return period_ns;
    if (want > (double)period_ns * MAX_STRETCH)
        return period_ns * MAX_STRETCH;
    return (long long)want;
}

static void *sampler_main(void *unused)
{
    (void)unused;
    atomic_store(&sampler_tid, (long)syscall(SYS_gettid));
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long long period = period_ns;
    long long last_wall = mono_ns(), last_proc = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    long long last_self = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    while (atomic_load(&running)) {
        next.tv_nsec += period;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
            next = now;  /* late (a busy machine): no burst of catch-up samples */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        if (!atomic_load(&running))
            break;
        long long before = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        sample_once();
        long long self = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall = mono_ns();
        long long proc = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        period = next_period(self - before, (proc - last_proc) - (self - last_self), wall - last_wall);
        last_wall = wall;
        last_proc = proc;
        last_self = self;
    }
    return NULL;
}

static void after_fork_child(void)
{
    /* The sampler thread is the parent's; so are the threads registered. Nothing is sampled here. */
    pthread_mutex_init(&mu, NULL);
    for (int i = 0; i < n_slots; i++)
        if (slots[i].used && slots[i].fd >= 0)
            close(slots[i].fd);
    memset(slots, 0, sizeof(slots));
    n_slots = 0;
    r_head = r_tail = 0;
    atomic_store(&running, 0);
    atomic_store(&sampler_tid, 0);
    started = 0;
}
#endif /* GILVIEW_OS */

static PyObject *
gv_sampler_tid(PyObject *m, PyObject *unused)
{
#if GILVIEW_OS
    return PyLong_FromLong(atomic_load(&sampler_tid));
#else
    return PyLong_FromLong(0);
#endif
}

/* sys._current_frames() and sys._current_exceptions() as the program sees them: python's dicts without the
 * threads of ours (the recorder's flusher), as built-in functions of the sys module like the originals (name,
 * qualname, module, __self__, repr, doc and text signature: inspect sees what it sees under python). */
static PyObject *hidden_idents;  /* a set of thread idents, recorder.py's: changed there, read here */
static PyObject *real_frames, *real_exceptions;

static PyObject *
without_ours(PyObject *real)
{
    PyObject *d = PyObject_CallNoArgs(real);
    if (d == NULL || !PyDict_Check(d) || hidden_idents == NULL)
        return d;
    PyObject *it = PyObject_GetIter(hidden_idents);
    if (it == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    PyObject *ident;
    while ((ident = PyIter_Next(it)) != NULL) {
        int rc = PyDict_Contains(d, ident);
        if (rc > 0)
            rc = PyDict_DelItem(d, ident);
        Py_DECREF(ident);
        if (rc < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *
gv_current_frames(PyObject *self, PyObject *unused)
{
    return without_ours(real_frames);
}

static PyObject *
gv_current_exceptions(PyObject *self, PyObject *unused)
{
    return without_ours(real_exceptions);
}

static PyMethodDef frames_def = {"_current_frames", gv_current_frames, METH_NOARGS, NULL};
static PyMethodDef exceptions_def = {"_current_exceptions", gv_current_exceptions, METH_NOARGS, NULL};

static const char *
kept_doc(PyObject *doc)
{
    if (doc == NULL || !PyUnicode_Check(doc))
        return NULL;
    const char *s = PyUnicode_AsUTF8(doc);
    if (s == NULL) {
        PyErr_Clear();
        return NULL;
    }
    char *copy = strdup(s);  /* kept for the process's life, as a static ml_doc is */
    return copy;
}

/* conceal(sys, real_frames, real_exceptions, idents, frames_doc, exceptions_doc) -> (frames, exceptions) */
static PyObject *
gv_conceal(PyObject *m, PyObject *args)
{
    PyObject *sys_module, *frames, *exceptions, *idents, *frames_doc, *exceptions_doc;
    if (!PyArg_ParseTuple(args, "OOOOOO", &sys_module, &frames, &exceptions, &idents, &frames_doc,
                          &exceptions_doc))
        return NULL;
    if (real_frames != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "conceal() was already called");
        return NULL;
    }
    PyObject *name = PyUnicode_FromString("sys");
    if (name == NULL)
        return NULL;
    frames_def.ml_doc = kept_doc(frames_doc);
    exceptions_def.ml_doc = kept_doc(exceptions_doc);
    PyObject *f = PyCFunction_NewEx(&frames_def, sys_module, name);
    PyObject *e = f == NULL ? NULL : PyCFunction_NewEx(&exceptions_def, sys_module, name);
    Py_DECREF(name);
    if (e == NULL) {
        Py_XDECREF(f);
        return NULL;
    }
    real_frames = Py_NewRef(frames);
    real_exceptions = Py_NewRef(exceptions);
    hidden_idents = Py_NewRef(idents);
    return Py_BuildValue("(NN)", f, e);
}

static PyObject *
gv_layout(PyObject *m, PyObject *unused)
{
#if defined(Py_GIL_DISABLED)
    return PyUnicode_FromString("free-threaded");
#elif GILVIEW_LAYOUT
    return PyUnicode_FromString("gil");
#else
    return PyUnicode_FromString("unknown");
#endif
}

static PyObject *
gv_start(PyObject *m, PyObject *args)
{
#if GILVIEW_OS
    long long t0, period;
    if (!PyArg_ParseTuple(args, "LL", &t0, &period))
        return NULL;
    if (period < 100000)
        period = 100000;  /* 0.1 ms: below that the sampler would be the busiest thread */
    if (started)
        Py_RETURN_FALSE;
    t0_ns = t0;
    period_ns = period;
#if GILVIEW_LAYOUT
#  if PY_VERSION_HEX < 0x030C0000
    gil = &_PyRuntime.ceval.gil;
#  else
    gil = PyInterpreterState_Get()->ceval.gil;
#  endif
    if (gil != NULL) {
        gil_lo = (uintptr_t)gil;
        gil_hi = gil_lo + sizeof(*gil);
    }
#endif
    static int atfork_done;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_done = 1;
    }
    atomic_store(&running, 1);
    atomic_store(&sampler_tid, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int err = pthread_create(&sampler, &attr, sampler_main, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        atomic_store(&running, 0);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    started = 1;
    /* Its native id is known before the program can fork (recorder.py's fork-warning count): the thread
     * needs no GIL to get there. */
    for (int i = 0; i < 20000 && atomic_load(&sampler_tid) == 0; i++) {
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *
gv_stop(PyObject *m, PyObject *unused)
{
#if GILVIEW_OS
    atomic_store(&running, 0);
    started = 0;
#endif
    Py_RETURN_NONE;
}

/* register(lane, ident): the calling thread is sampled as `lane` from now on. */
static PyObject *
gv_register(PyObject *m, PyObject *args)
{
#if GILVIEW_OS
    long long lane;
    unsigned long long ident;
    if (!PyArg_ParseTuple(args, "LK", &lane, &ident))
        return NULL;
    long tid = (long)syscall(SYS_gettid);
    int fd = -1;  /* opened by the sampler at its next look: nothing slow on the thread's way to start */
    void *ts = (void *)PyThreadState_Get();
    pthread_mutex_lock(&mu);
    int free_at = -1;
    for (int i = 0; i < n_slots; i++) {
        if (slots[i].used && slots[i].tid == tid) {  /* registered again (a new lane for the thread) */
            if (slots[i].fd >= 0)
                close(slots[i].fd);
            slots[i].used = 0;
        }
        if (!slots[i].used && free_at < 0)
            free_at = i;
    }
    if (free_at < 0) {
        if (n_slots >= MAX_SLOTS) {
            n_unregistered++;
            pthread_mutex_unlock(&mu);
            Py_RETURN_FALSE;
        }
        free_at = n_slots++;
    }
    Slot *s = &slots[free_at];
    memset(s, 0, sizeof(*s));
    s->used = 1;
    s->fd = fd;
    s->tstate = ts;
    s->tid = tid;
    s->lane = lane;
    s->ident = ident;
    s->last = S_NONE;
    s->last_nr = -1;
    if (pthread_getcpuclockid(pthread_self(), &s->cpu_clock) != 0)
        s->cpu_clock = CLOCK_THREAD_CPUTIME_ID;  /* unreadable from the sampler: never "without the GIL" */
    pthread_mutex_unlock(&mu);
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

/* unregister(): the calling thread is no longer sampled (it is about to end). */
static PyObject *
gv_unregister(PyObject *m, PyObject *unused)
{
#if GILVIEW_OS
    long tid = (long)syscall(SYS_gettid);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_slots; i++) {
        if (slots[i].used && slots[i].tid == tid) {
            if (slots[i].fd >= 0)
                close(slots[i].fd);
            slots[i].used = 0;
        }
    }
    while (n_slots > 0 && !slots[n_slots - 1].used)
        n_slots--;
    pthread_mutex_unlock(&mu);
#endif
    Py_RETURN_NONE;
}

/* drain() -> [(t, lane, ident, state, nr, arg), ...]: the changes seen since the last drain, in order. */
static PyObject *
gv_drain(PyObject *m, PyObject *unused)
{
#if GILVIEW_OS
    Entry local[512];
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (;;) {
        size_t k = 0;
        pthread_mutex_lock(&mu);
        while (r_tail != r_head && k < 512)
            local[k++] = ring[r_tail++ % RING];
        pthread_mutex_unlock(&mu);
        for (size_t i = 0; i < k; i++) {
            Entry *e = &local[i];
            PyObject *row = Py_BuildValue("(LLKilK)", e->t, e->lane, e->ident, e->state, e->nr, e->arg);
            if (row == NULL || PyList_Append(out, row) < 0) {
                Py_XDECREF(row);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(row);
        }
        if (k < 512)
            break;
    }
    return out;
#else
    return PyList_New(0);
#endif
}

/* stats() -> {"samples", "dropped", "unregistered", "cpu_ns", "threads", "period_ns"}. */
static PyObject *
gv_stats(PyObject *m, PyObject *unused)
{
#if GILVIEW_OS
    long long cpu = -1;
    int threads = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_slots; i++)
        threads += slots[i].used;
    unsigned long long samples = n_samples, dropped = r_dropped, unreg = n_unregistered;
    pthread_mutex_unlock(&mu);
    if (started) {
        clockid_t cid;
        struct timespec ts;
        if (pthread_getcpuclockid(sampler, &cid) == 0 && clock_gettime(cid, &ts) == 0)
            cpu = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    }
    return Py_BuildValue("{s:K,s:K,s:K,s:L,s:i,s:L}", "samples", samples, "dropped", dropped,
                         "unregistered", unreg, "cpu_ns", cpu, "threads", threads, "period_ns", period_ns);
#else
    return PyDict_New();
#endif
}

static PyMethodDef methods[] = {
    {"layout", gv_layout, METH_NOARGS, "'gil' (the GIL's holder is readable), 'free-threaded' or 'unknown'."},
    {"start", gv_start, METH_VARARGS, "start(t0_ns, period_ns): start the sampler thread (False if already running)."},
    {"stop", gv_stop, METH_NOARGS, "Stop sampling (the thread ends within a period)."},
    {"register", gv_register, METH_VARARGS, "register(lane, ident): sample the calling thread as `lane`."},
    {"unregister", gv_unregister, METH_NOARGS, "Stop sampling the calling thread."},
    {"drain", gv_drain, METH_NOARGS, "The sub-state changes since the last drain: (t, lane, ident, state, nr, arg)."},
    {"sampler_tid", gv_sampler_tid, METH_NOARGS, "The sampler thread's native id (0: none started in this process)."},
    {"conceal", gv_conceal, METH_VARARGS,
     "conceal(sys, frames, exceptions, idents, frames_doc, exceptions_doc): sys._current_frames and "
     "sys._current_exceptions without the threads in `idents` (built-ins of `sys`)."},
    {"stats", gv_stats, METH_NOARGS, "Counters: samples, dropped, unregistered, the sampler's cpu_ns, threads."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gilview",
    "A native sampler thread: who holds the GIL, who waits for it, who is blocked in the kernel.", -1, methods,
};

PyMODINIT_FUNC
PyInit__gilview(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "HOLDS", S_HOLDS) < 0 || PyModule_AddIntConstant(m, "GILWAIT", S_GILWAIT) < 0
        || PyModule_AddIntConstant(m, "NOGIL", S_NOGIL) < 0 || PyModule_AddIntConstant(m, "KERNEL", S_KERNEL) < 0
        || PyModule_AddIntConstant(m, "ONCPU", S_ONCPU) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
