/* EventParser: trace-file event lines straight into columns, without an object per event.
 *
 * A trace file is JSON Lines; nearly every line is an event object as our own
 * writer makes it. This parser reads such lines into the columns the store
 * keeps (time, lane, kind, cause, and the ids of reason, where and text in a
 * StringTable). It is only a fast path: at the first line it does not fully
 * understand (a tagged lane or footer line, a float, a nested value, a
 * duplicate key, a torn line...) it stops at that line's start and says why,
 * and the reader hands the line to msgspec, which decodes it or says what is
 * wrong with it. So msgspec stays the reference for what a valid line is.
 *
 * Strings are interned by their raw bytes in the file: a reason or a source
 * line seen before costs a hash and a compare, not a str object.
 */

#include "_speedups.h"

#include <stddef.h>
#include <string.h>

enum { STOP_END = 0, STOP_TAGGED = 1, STOP_OTHER = 2 };
enum { F_SEQ = 1, F_T = 2, F_LANE = 4, F_KIND = 8, F_REASON = 16, F_WHERE = 32, F_CAUSE = 64, F_TEXT = 128 };
#define REQUIRED (F_SEQ | F_T | F_LANE | F_KIND)
#define N_KINDS 11  /* engines/events.py EVENT_KINDS; a kind past them is "unknown" */
#define CACHE_MAX (1 << 20)  /* raw strings remembered at most (unique log lines stop being cached) */
/* Longer strings (tracebacks, long log lines) are not remembered: they seldom repeat, and a copy
 * of each would add the size of their text to a load's memory (a 200 MB line: 200 MB more). */
#define CACHE_MAX_LEN 4096

static const char *const KINDS[N_KINDS] = {"open", "run", "wait", "ready", "log", "error", "close", "phase", "mark", "block",
                                           "sample"};

typedef struct {
    uint64_t hash;  /* 0: empty slot */
    char *key;
    Py_ssize_t len;
    int32_t id;
} Slot;

typedef struct {
    PyObject_HEAD
    PyObject *ids;      /* the StringTable's dict: str -> id */
    PyObject *strings;  /* the StringTable's list: id -> str */
    Slot *slots;
    Py_ssize_t n_slots, used;
    Py_ssize_t n, cap;
    int64_t *t;
    int32_t *lane, *cause, *reason, *where, *text;
    uint8_t *kind;
    char *scratch;  /* an unescaped string */
    Py_ssize_t scratch_cap;
} EventParser;

/* -- the raw-string cache ------------------------------------------------------------------- */

static uint64_t
fnv1a(const char *p, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    }
    return h | 1;  /* never 0: 0 marks an empty slot */
}

static Slot *
find_slot(EventParser *p, const char *key, Py_ssize_t len, uint64_t h)
{
    Py_ssize_t mask = p->n_slots - 1;
    for (Py_ssize_t i = (Py_ssize_t)(h & (uint64_t)mask);; i = (i + 1) & mask) {
        Slot *s = &p->slots[i];
        if (s->hash == 0 || (s->hash == h && s->len == len && memcmp(s->key, key, (size_t)len) == 0)) {
            return s;
        }
    }
}

static int
cache_grow(EventParser *p)
{
    Py_ssize_t old_n = p->n_slots;
    Slot *old = p->slots;
    Py_ssize_t n = old_n ? old_n * 2 : 1024;
    Slot *slots = PyMem_Calloc((size_t)n, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->slots = slots;
    p->n_slots = n;
    for (Py_ssize_t i = 0; i < old_n; i++) {
        if (old[i].hash) {
            *find_slot(p, old[i].key, old[i].len, old[i].hash) = old[i];
        }
    }
    PyMem_Free(old);
    return 0;
}

/* -- columns --------------------------------------------------------------------------------- */

static int
grow_rows(EventParser *p)
{
    Py_ssize_t cap = p->cap ? p->cap * 2 : 4096;
#define GROW(field, type)                                                   \
    do {                                                                    \
        type *q = PyMem_Realloc(p->field, (size_t)cap * sizeof(type));      \
        if (q == NULL) {                                                    \
            PyErr_NoMemory();                                               \
            return -1;                                                      \
        }                                                                   \
        p->field = q;                                                       \
    } while (0)
    GROW(t, int64_t);
    GROW(lane, int32_t);
    GROW(cause, int32_t);
    GROW(reason, int32_t);
    GROW(where, int32_t);
    GROW(text, int32_t);
    GROW(kind, uint8_t);
#undef GROW
    p->cap = cap;
    return 0;
}

/* -- lexing ---------------------------------------------------------------------------------- */

#define WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r')

/* A JSON string starting at the quote at *pos. Sets [*start, *end) to its raw contents and
 * *escaped when it holds a backslash; moves *pos past the closing quote. 0, or -1: not a
 * string this parser takes (torn, or a raw control character). */
static int
lex_string(const char *b, Py_ssize_t n, Py_ssize_t *pos, Py_ssize_t *start, Py_ssize_t *end, int *escaped)
{
    Py_ssize_t i = *pos + 1;
    *start = i;
    *escaped = 0;
    while (i < n) {
        unsigned char c = (unsigned char)b[i];
        if (c == '"') {
            *end = i;
            *pos = i + 1;
            return 0;
        }
        if (c == '\\') {
            *escaped = 1;
            i += 2;
            continue;
        }
        if (c < 0x20) {
            return -1;
        }
        i++;
    }
    return -1;
}

static int
hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static char *
put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    }
    else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* The escaped string's UTF-8 into p->scratch; its length, or -1 (a bad escape: msgspec says). */
static Py_ssize_t
unescape(EventParser *p, const char *s, Py_ssize_t n)
{
    if (n > p->scratch_cap) {
        char *q = PyMem_Realloc(p->scratch, (size_t)n);
        if (q == NULL) {
            return -1;
        }
        p->scratch = q;
        p->scratch_cap = n;
    }
    char *o = p->scratch;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\') {
            *o++ = c;
            continue;
        }
        if (++i >= n) {
            return -1;
        }
        switch (s[i]) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                /* \uXXXX never takes more bytes in UTF-8 than its 6 (a pair: 4 for 12). */
                unsigned cp, lo;
                if (i + 4 >= n || hex4(s + i + 1, &cp) < 0) {
                    return -1;
                }
                i += 4;
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u' || hex4(s + i + 3, &lo) < 0
                        || lo < 0xDC00 || lo >= 0xE000) {
                        return -1;  /* a lone surrogate: not text */
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                else if (cp >= 0xDC00 && cp < 0xE000) {
                    return -1;
                }
                o = put_utf8(o, cp);
                break;
            }
            default:
                return -1;
        }
    }
    return o - p->scratch;
}

/* The StringTable id of the string with raw JSON contents [s, s + n): -1 not ours to decode
 * (no exception), -2 error (exception set). */
static int32_t
string_id(EventParser *p, const char *s, Py_ssize_t n, int escaped)
{
    uint64_t h = 0;
    Slot *slot = NULL;
    if (n <= CACHE_MAX_LEN) {
        h = fnv1a(s, n);
        if (p->used * 2 >= p->n_slots && p->used < CACHE_MAX && cache_grow(p) < 0) {
            return -2;
        }
        slot = find_slot(p, s, n, h);
        if (slot->hash) {
            return slot->id;
        }
    }
    const char *text = s;
    Py_ssize_t len = n;
    if (escaped) {
        len = unescape(p, s, n);
        if (len < 0) {
            return -1;
        }
        text = p->scratch;
    }
    PyObject *str = PyUnicode_DecodeUTF8(text, len, NULL);
    if (str == NULL) {
        PyErr_Clear();  /* not UTF-8: msgspec reports it */
        return -1;
    }
    int32_t id;
    PyObject *known = PyDict_GetItemWithError(p->ids, str);
    if (known != NULL) {
        id = (int32_t)PyLong_AsLong(known);
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(str);
        return -2;
    }
    else {
        Py_ssize_t next = PyList_GET_SIZE(p->strings);
        PyObject *value = PyLong_FromSsize_t(next);
        if (value == NULL || PyList_Append(p->strings, str) < 0 || PyDict_SetItem(p->ids, str, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(str);
            return -2;
        }
        Py_DECREF(value);
        id = (int32_t)next;
    }
    Py_DECREF(str);
    if (slot != NULL && p->used < CACHE_MAX) {
        char *key = PyMem_Malloc(n ? (size_t)n : 1);
        if (key == NULL) {
            PyErr_NoMemory();
            return -2;
        }
        memcpy(key, s, (size_t)n);
        slot->hash = h;
        slot->key = key;
        slot->len = n;
        slot->id = id;
        p->used++;
    }
    return id;
}

/* Whether [s, s + n) is UTF-8 (a string this parser does not keep must still be text). */
static int
is_utf8(const char *s, Py_ssize_t n)
{
    PyObject *str = PyUnicode_DecodeUTF8(s, n, NULL);
    if (str == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(str);
    return 1;
}

/* A non-negative JSON integer at *pos, at most `limit`: 0, or -1 (anything else: msgspec decides). */
static int
lex_uint(const char *b, Py_ssize_t n, Py_ssize_t *pos, uint64_t limit, int64_t *out)
{
    Py_ssize_t i = *pos;
    if (i >= n || b[i] < '0' || b[i] > '9') {
        return -1;
    }
    if (b[i] == '0' && i + 1 < n && b[i + 1] >= '0' && b[i + 1] <= '9') {
        return -1;  /* a leading zero is not JSON */
    }
    uint64_t v = 0;
    for (; i < n && b[i] >= '0' && b[i] <= '9'; i++) {
        unsigned d = (unsigned)(b[i] - '0');
        if (v > (limit - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (i < n && (b[i] == '.' || b[i] == 'e' || b[i] == 'E')) {
        return -1;
    }
    *pos = i;
    *out = (int64_t)v;
    return 0;
}

static int
lex_word(const char *b, Py_ssize_t n, Py_ssize_t *pos, const char *word)
{
    Py_ssize_t len = (Py_ssize_t)strlen(word);
    if (n - *pos < len || memcmp(b + *pos, word, (size_t)len) != 0) {
        return -1;
    }
    *pos += len;
    return 0;
}

/* -- one line --------------------------------------------------------------------------------- */

/* Parse the event line at *pos (no leading blanks). 0: parsed, *pos past its newline;
 * STOP_TAGGED / STOP_OTHER: not parsed, *pos unchanged; -2: error (exception set). */
static int
parse_line(EventParser *p, const char *b, Py_ssize_t n, Py_ssize_t *pos)
{
    Py_ssize_t i = *pos;
    int seen = 0;
    int64_t t = 0, lane = 0, cause = -1, v;
    int32_t reason = 0, where = 0, text = 0;
    int kind = 0;
    if (b[i] != '{') {
        return STOP_OTHER;
    }
    i++;
    for (;;) {
        while (i < n && WS(b[i])) i++;
        if (i >= n) return STOP_OTHER;
        if (b[i] == '}' && seen == 0) return STOP_OTHER;  /* {} lacks the event's fields */
        if (b[i] != '"') return STOP_OTHER;
        Py_ssize_t ks, ke;
        int esc;
        if (lex_string(b, n, &i, &ks, &ke, &esc) < 0 || esc) return STOP_OTHER;
        while (i < n && WS(b[i])) i++;
        if (i >= n || b[i] != ':') return STOP_OTHER;
        i++;
        while (i < n && WS(b[i])) i++;
        if (i >= n) return STOP_OTHER;
        Py_ssize_t klen = ke - ks;
        const char *k = b + ks;
        int field = 0;
#define KEY(s) (klen == (Py_ssize_t)sizeof(s) - 1 && memcmp(k, s, sizeof(s) - 1) == 0)
        if (KEY("seq")) field = F_SEQ;
        else if (KEY("t")) field = F_T;
        else if (KEY("lane")) field = F_LANE;
        else if (KEY("kind")) field = F_KIND;
        else if (KEY("reason")) field = F_REASON;
        else if (KEY("where")) field = F_WHERE;
        else if (KEY("cause")) field = F_CAUSE;
        else if (KEY("text")) field = F_TEXT;
        else if (KEY("type")) return STOP_TAGGED;
#undef KEY
        if (field & seen) return STOP_OTHER;  /* a repeated key */
        seen |= field;
        char c = b[i];
        switch (field) {
            case F_SEQ:
                if (lex_uint(b, n, &i, INT64_MAX, &v) < 0) return STOP_OTHER;
                break;
            case F_T:
                if (lex_uint(b, n, &i, INT64_MAX, &t) < 0) return STOP_OTHER;
                break;
            case F_LANE:
                if (lex_uint(b, n, &i, INT32_MAX, &lane) < 0) return STOP_OTHER;
                break;
            case F_CAUSE:
                if (c == 'n') {
                    if (lex_word(b, n, &i, "null") < 0) return STOP_OTHER;
                    cause = -1;
                }
                else if (lex_uint(b, n, &i, INT32_MAX, &cause) < 0) return STOP_OTHER;
                break;
            case F_KIND: {
                Py_ssize_t s, e;
                if (c != '"' || lex_string(b, n, &i, &s, &e, &esc) < 0 || esc) return STOP_OTHER;
                kind = N_KINDS;
                for (int j = 0; j < N_KINDS; j++) {
                    if ((size_t)(e - s) == strlen(KINDS[j]) && memcmp(b + s, KINDS[j], (size_t)(e - s)) == 0) {
                        kind = j;
                        break;
                    }
                }
                if (kind == N_KINDS && !is_utf8(b + s, e - s)) return STOP_OTHER;
                break;
            }
            case F_REASON:
            case F_WHERE:
            case F_TEXT: {
                int32_t id = 0;
                if (c == 'n') {
                    if (lex_word(b, n, &i, "null") < 0) return STOP_OTHER;
                }
                else {
                    Py_ssize_t s, e;
                    if (c != '"' || lex_string(b, n, &i, &s, &e, &esc) < 0) return STOP_OTHER;
                    id = string_id(p, b + s, e - s, esc);
                    if (id == -2) return -2;
                    if (id < 0) return STOP_OTHER;
                }
                if (field == F_REASON) reason = id;
                else if (field == F_WHERE) where = id;
                else text = id;
                break;
            }
            default: {
                /* A field from a newer writer: skipped when its value is a plain one. */
                Py_ssize_t s, e;
                if (c == '"') {
                    if (lex_string(b, n, &i, &s, &e, &esc) < 0 || esc || !is_utf8(b + s, e - s)) return STOP_OTHER;
                }
                else if (c == 'n') { if (lex_word(b, n, &i, "null") < 0) return STOP_OTHER; }
                else if (c == 't') { if (lex_word(b, n, &i, "true") < 0) return STOP_OTHER; }
                else if (c == 'f') { if (lex_word(b, n, &i, "false") < 0) return STOP_OTHER; }
                else if (lex_uint(b, n, &i, INT64_MAX, &v) < 0) return STOP_OTHER;
            }
        }
        while (i < n && WS(b[i])) i++;
        if (i >= n) return STOP_OTHER;
        if (b[i] == ',') {
            i++;
            continue;
        }
        if (b[i] != '}') return STOP_OTHER;
        i++;
        break;
    }
    while (i < n && WS(b[i])) i++;
    if (i < n && b[i] != '\n') return STOP_OTHER;
    if ((seen & REQUIRED) != REQUIRED) return STOP_OTHER;
    if (p->n == p->cap && grow_rows(p) < 0) return -2;
    Py_ssize_t r = p->n++;
    p->t[r] = t;
    p->lane[r] = (int32_t)lane;
    p->kind[r] = (uint8_t)kind;
    p->cause[r] = (int32_t)cause;
    p->reason[r] = reason;
    p->where[r] = where;
    p->text[r] = text;
    *pos = i < n ? i + 1 : i;
    return 0;
}

/* -- Python-level methods ----------------------------------------------------------------------- */

/* parse(data, pos) -> (stop, pos, lines): parse event lines from pos on. stop is 0 at the end of
 * data, 1 at a tagged line, 2 at a line for msgspec; pos is that line's start; lines counts the
 * lines passed (blank ones too). */
static PyObject *
parser_parse(EventParser *p, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse(data, pos)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const char *b = view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t lines = 0;
    int stop = STOP_END;
    if (pos < 0) {
        pos = 0;
    }
    while (pos < n) {
        Py_ssize_t i = pos;
        while (i < n && WS(b[i])) i++;
        if (i < n && b[i] == '\n') {
            pos = i + 1;
            lines++;
            continue;
        }
        if (i >= n) {
            pos = n;
            break;
        }
        int rc = parse_line(p, b, n, &i);
        if (rc == -2) {
            PyBuffer_Release(&view);
            return NULL;
        }
        if (rc != 0) {
            stop = rc;
            break;
        }
        pos = i;
        lines++;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(inn)", stop, pos, lines);
}

/* take() -> (n, t, lane, kind, reason, where, text, cause): the rows parsed so far, as bytes. */
static PyObject *
parser_take(EventParser *p, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t n = p->n;
    static const char empty[8];
#define COL(field, size) (n ? (const char *)p->field : empty), n * (size)
    PyObject *out = Py_BuildValue("(ny#y#y#y#y#y#y#)", n, COL(t, 8), COL(lane, 4), COL(kind, 1), COL(reason, 4),
                                  COL(where, 4), COL(text, 4), COL(cause, 4));
#undef COL
    if (out != NULL) {
        p->n = 0;
    }
    return out;
}

static PyObject *
parser_len(EventParser *p, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(p->n);
}

static int
parser_init(EventParser *p, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ids", "strings", NULL};
    PyObject *ids, *strings;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!", kwlist, &PyDict_Type, &ids, &PyList_Type, &strings)) {
        return -1;
    }
    Py_INCREF(ids);
    Py_XSETREF(p->ids, ids);
    Py_INCREF(strings);
    Py_XSETREF(p->strings, strings);
    if (p->slots == NULL && cache_grow(p) < 0) {
        return -1;
    }
    return 0;
}

static int
parser_traverse(EventParser *p, visitproc visit, void *arg)
{
    Py_VISIT(p->ids);
    Py_VISIT(p->strings);
    return 0;
}

static int
parser_clear(EventParser *p)
{
    Py_CLEAR(p->ids);
    Py_CLEAR(p->strings);
    return 0;
}

static void
parser_dealloc(EventParser *p)
{
    PyObject_GC_UnTrack(p);
    parser_clear(p);
    for (Py_ssize_t i = 0; i < p->n_slots; i++) {
        if (p->slots[i].hash) {
            PyMem_Free(p->slots[i].key);
        }
    }
    PyMem_Free(p->slots);
    PyMem_Free(p->t);
    PyMem_Free(p->lane);
    PyMem_Free(p->cause);
    PyMem_Free(p->reason);
    PyMem_Free(p->where);
    PyMem_Free(p->text);
    PyMem_Free(p->kind);
    PyMem_Free(p->scratch);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyMethodDef parser_methods[] = {
    {"parse", (PyCFunction)(void (*)(void))parser_parse, METH_FASTCALL,
     "parse(data, pos) -> (stop, pos, lines): event lines into rows; stop 0 end, 1 tagged line, 2 for msgspec."},
    {"take", (PyCFunction)parser_take, METH_NOARGS,
     "take() -> (n, t, lane, kind, reason, where, text, cause) as bytes (int64, int32, uint8, int32 ...)."},
    {"pending", (PyCFunction)parser_len, METH_NOARGS, "Rows parsed and not yet taken."},
    {NULL},
};

PyTypeObject CV_EventParserType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "concurview.engines._speedups.EventParser",
    .tp_doc = "EventParser(ids, strings): trace event lines into columns, strings interned into a StringTable.",
    .tp_basicsize = sizeof(EventParser),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)parser_init,
    .tp_dealloc = (destructor)parser_dealloc,
    .tp_traverse = (traverseproc)parser_traverse,
    .tp_clear = (inquiry)parser_clear,
    .tp_methods = parser_methods,
};
