/* azwatch._speedups: the hot loop of azwatch.logparse.parse_block, in C.
 *
 * scan_block(block, classes) walks the lines of `block` (split on "\n", exactly like
 * str.split) and decides each one as azwatch.logparse.parse_line would:
 *
 *   - most lines announce nothing: dropped;
 *   - "✨ Imported #N" lines (most of the rest): folded, like parse_lines, into one
 *     BlockImported per run, the highest;
 *   - the other signals (status, peers, sessions, production, sync mode, banner): the event,
 *     built by calling its class from `classes`;
 *   - fatal lines, lines with ESC or CR (clean() has work to do), and every line this code is
 *     not certain about: the raw line, for parse_line to decide.
 *
 * It returns (items, unsure): the events and raw lines in stream order, and how many raw lines
 * there are. Being unsure is always allowed and always safe. Being sure must be exact, so each
 * check names the Python it mirrors, and tests/test_speedups.py compares the two on the
 * parser's tables and on generated near-misses of every pattern.
 *
 * Python semantics mirrored here:
 *   - str.rstrip() (in clean()) removes what Py_UNICODE_ISSPACE says is whitespace, and
 *     regex \S is its complement;
 *   - regex \d on str patterns matches any Unicode decimal digit: where a non-ASCII one
 *     stands in place of a digit, the line is deferred;
 *   - str.isdigit() (the Docker timestamp guard) is Py_UNICODE_ISDIGIT.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    int kind;
    const void *data;
} text_t;

#define AT(t, i) PyUnicode_READ((t).kind, (t).data, (i))

/* A match step: matched, cannot match, or unsure (the line goes to Python). */
enum { NO = 0, YES = 1, UNSURE = -1 };

/* Regex \d: YES for an ASCII digit, UNSURE for another decimal digit, NO otherwise. */
static int
decimal_digit(Py_UCS4 c)
{
    if (c >= '0' && c <= '9')
        return YES;
    if (c >= 0x80 && Py_UNICODE_ISDECIMAL(c))
        return UNSURE;
    return NO;
}

/* Whether [i, i + len(word)) holds the ASCII `word`, within [.., end). */
static int
has_word(text_t t, Py_ssize_t i, Py_ssize_t end, const char *word)
{
    for (; *word; word++, i++) {
        if (i >= end || AT(t, i) != (Py_UCS4)(unsigned char)*word)
            return 0;
    }
    return 1;
}

/* The first index >= from where the ASCII `word` starts and ends by `end`, or -1. */
static Py_ssize_t
find_word(text_t t, Py_ssize_t from, Py_ssize_t end, const char *word)
{
    Py_ssize_t size = (Py_ssize_t)strlen(word);
    for (Py_ssize_t i = from; i + size <= end; i++) {
        if (AT(t, i) == (Py_UCS4)(unsigned char)word[0] && has_word(t, i, end, word))
            return i;
    }
    return -1;
}

/* split_docker_timestamp on the cleaned line [start, end): YES with *rest the index after
 * "<RFC 3339> ", NO when there is no timestamp, or UNSURE. */
static int
docker_timestamp(text_t t, Py_ssize_t start, Py_ssize_t end, Py_ssize_t *rest)
{
    /* `len(line) > 20 and line[10] == "T" and line[4] == "-"` */
    if (end - start <= 20 || AT(t, start + 10) != 'T' || AT(t, start + 4) != '-')
        return NO;
    /* (\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d) */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    int unsure = 0;
    for (Py_ssize_t k = 0; shape[k]; k++) {
        Py_UCS4 c = AT(t, start + k);
        if (shape[k] == 'd') {
            int d = decimal_digit(c);
            if (d == NO)
                return NO;
            unsure |= d == UNSURE;
        }
        else if (c != (Py_UCS4)(unsigned char)shape[k]) {
            return NO;
        }
    }
    Py_ssize_t i = start + 19;
    /* (?:\.(\d{1,9}))? : the greedy count cannot backtrack into a match, because what
     * follows it (Z, + or -) is never a digit. */
    if (i < end && AT(t, i) == '.') {
        Py_ssize_t j = i + 1;
        int d;
        while (j < end && (d = decimal_digit(AT(t, j))) != NO) {
            unsure |= d == UNSURE;
            j++;
        }
        Py_ssize_t count = j - (i + 1);
        if (count < 1 || count > 9)
            return unsure ? UNSURE : NO;
        i = j;
    }
    /* (Z|[+-]\d\d:\d\d) then a space */
    if (i >= end)
        return NO;
    Py_UCS4 zone = AT(t, i);
    if (zone == 'Z') {
        i += 1;
    }
    else if (zone == '+' || zone == '-') {
        if (i + 6 > end || AT(t, i + 3) != ':')
            return NO;
        static const Py_ssize_t digits[] = {1, 2, 4, 5};
        for (int k = 0; k < 4; k++) {
            int d = decimal_digit(AT(t, i + digits[k]));
            if (d == NO)
                return NO;
            unsure |= d == UNSURE;
        }
        i += 6;
    }
    else {
        return NO;
    }
    if (i >= end || AT(t, i) != ' ')
        return NO;
    if (unsure)
        return UNSURE;
    *rest = i + 1;
    return YES;
}

/* node_message: the index where the message starts, or -1 when the line has no node prefix. */
static Py_ssize_t
node_message(text_t t, Py_ssize_t start, Py_ssize_t end)
{
    static const char *levels[] = {" INFO", " WARN", "ERROR", "DEBUG", "TRACE"};
    if (end - start < 21 || AT(t, start + 4) != '-' || AT(t, start + 10) != ' ' ||
        AT(t, start + 13) != ':')
        return -1;
    Py_UCS4 c = AT(t, start + 19);
    if (c == ' ')
        return start + 20;
    if (c != '.')
        return -1;
    Py_ssize_t space = find_word(t, start + 20, end, " ");
    if (space < 0)
        return -1;
    for (int k = 0; k < 5; k++) {
        if (space + 6 <= end && has_word(t, space + 1, end, levels[k])) {
            Py_ssize_t colon = find_word(t, space + 6, end, ": ");
            return colon >= 0 ? colon + 2 : space + 1;
        }
    }
    return space + 1;
}

/* What one line announces: the event's kind and its numbers. */
enum kind {
    NO_EVENT,
    DEFER, /* unsure, or a kind this scan leaves to Python (fatal lines) */
    IMPORTED,
    SYNC_STATUS,
    HIGHEST,
    MAJOR_SYNC_ON,
    MAJOR_SYNC_OFF,
    SESSION,
    PREPARED,
    PRESEALED,
    PEERS,
    BANNER,
};

typedef struct {
    enum kind kind;
    long long numbers[3];
} found_t;

/* `(\d{1,18})` at i, followed (in every pattern here) by something that is not a digit:
 * 19 digits in a row can never match. On YES, *value and *next are set. */
static int
number_at(text_t t, Py_ssize_t i, Py_ssize_t end, long long *value, Py_ssize_t *next)
{
    Py_ssize_t first = i;
    long long total = 0;
    while (i < end && i - first < 19) {
        Py_UCS4 c = AT(t, i);
        if (c < '0' || c > '9')
            break;
        if (i - first < 18)
            total = total * 10 + (long long)(c - '0');
        i++;
    }
    if (i - first > 18)
        return NO;
    if (i < end && decimal_digit(AT(t, i)) == UNSURE)
        return UNSURE;
    if (i == first)
        return NO;
    *value = total;
    *next = i;
    return YES;
}

/* What may follow a number: `(?: |$)`. */
static const char SPACE_OR_END[] = " |$";

/* Match `word`, then a number, then `after` ("" when the number must end the message, or
 * SPACE_OR_END). *at moves past what matched. */
static int
word_number(text_t t, Py_ssize_t *at, Py_ssize_t end, const char *word, long long *value,
            const char *after)
{
    Py_ssize_t i = *at;
    if (!has_word(t, i, end, word))
        return NO;
    int step = number_at(t, i + (Py_ssize_t)strlen(word), end, value, &i);
    if (step != YES)
        return step;
    if (after == SPACE_OR_END) {
        if (i < end && AT(t, i) != ' ')
            return NO;
        after = "";
    }
    else if (*after == '\0' ? i != end : !has_word(t, i, end, after)) {
        return NO;
    }
    *at = i + (Py_ssize_t)strlen(after);
    return YES;
}

/* Whether the message [i, end) is exactly the ASCII `word`. */
static int
is_word(text_t t, Py_ssize_t i, Py_ssize_t end, const char *word)
{
    return end - i == (Py_ssize_t)strlen(word) && has_word(t, i, end, word);
}

static enum kind
verdict(int step, enum kind kind)
{
    return step == YES ? kind : step == NO ? NO_EVENT : DEFER;
}

/* _SYNC_STATUS_RE: `Imported: #N \([^)]*\), finalized: #N \([^)]*\), favourite: #N \(`.
 * `[^)]*` runs to the first ")" (what follows it starts with ")"), so nothing backtracks. */
static enum kind
sync_status(text_t t, Py_ssize_t i, Py_ssize_t end, found_t *found)
{
    static const char *words[] = {"Imported: #", "), finalized: #", "), favourite: #"};
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            while (i < end && AT(t, i) != ')')
                i++;
        }
        int step = word_number(t, &i, end, words[k], &found->numbers[k], " (");
        if (step != YES)
            return verdict(step, SYNC_STATUS);
    }
    return SYNC_STATUS;
}

/* _PEERS_RE: `Network status report: /\S*\/sync/0 connected peers - N;`. `\S*` stops at the
 * first whitespace and "/sync/0" must end exactly there, followed by a space. */
static enum kind
peers(text_t t, Py_ssize_t i, Py_ssize_t end, found_t *found)
{
    static const char head[] = "Network status report: /";
    if (!has_word(t, i, end, head))
        return NO_EVENT;
    Py_ssize_t run = i + (Py_ssize_t)strlen(head), space = run;
    while (space < end && !Py_UNICODE_ISSPACE(AT(t, space)))
        space++;
    Py_ssize_t at = space - 7;
    if (at < run || !has_word(t, at, end, "/sync/0"))
        return NO_EVENT;
    return verdict(word_number(t, &space, end, " connected peers - ", &found->numbers[0], ";"),
                   PEERS);
}

/* parse_message, for a non-empty message [m, end). */
static enum kind
message_kind(text_t t, Py_ssize_t m, Py_ssize_t end, found_t *found)
{
    long long *n = &found->numbers[0];
    switch (AT(t, m)) {
    case 0x2728:  /* ✨ */
    case 0x1F3C6: /* 🏆 */
    case 0x1F195: /* 🆕 */
        /* `[✨🏆🆕] Imported #(\d{1,18})(?: |$)` */
        m += 1;
        return verdict(word_number(t, &m, end, " Imported #", n, SPACE_OR_END), IMPORTED);
    case 'I':
        return sync_status(t, m, end, found);
    case 0x1F4E6: /* 📦 `📦 Highest known block at #(\d{1,18})$` */
        m += 1;
        return verdict(word_number(t, &m, end, " Highest known block at #", n, ""), HIGHEST);
    case 'S':
        return is_word(t, m, end, "Switched to major sync state.") ? MAJOR_SYNC_ON : NO_EVENT;
    case 'N':
        if (is_word(t, m, end, "No longer in major sync state."))
            return MAJOR_SYNC_OFF;
        return peers(t, m, end, found);
    case 'R': { /* `Running session (\d{1,18})\.$` */
        int step = word_number(t, &m, end, "Running session ", n, ".");
        return step == YES && m != end ? NO_EVENT : verdict(step, SESSION);
    }
    case 0x1F381: /* 🎁 `🎁 Prepared block for proposing at (\d{1,18}) ` */
        m += 1;
        return verdict(word_number(t, &m, end, " Prepared block for proposing at ", n, " "),
                       PREPARED);
    case 0x1F516: /* 🔖 `🔖 Pre-sealed block for proposal at (\d{1,18})\.` */
        m += 1;
        return verdict(word_number(t, &m, end, " Pre-sealed block for proposal at ", n, "."),
                       PRESEALED);
    case 'A':
        return is_word(t, m, end, "Aleph Node") ? BANNER : NO_EVENT;
    case 'E': /* fatal lines: rare, and their text is wanted; Python builds them */
    case 'T':
        return DEFER;
    default:
        return NO_EVENT;
    }
}

/* parse_line for one line [start, end) without its "\n". */
static enum kind
classify(text_t t, Py_ssize_t start, Py_ssize_t end, found_t *found)
{
    /* clean(): trailing whitespace goes (ESC and CR lines were deferred by the caller). */
    while (end > start && Py_UNICODE_ISSPACE(AT(t, end - 1)))
        end--;
    if (end == start)
        return NO_EVENT;
    /* `if line[:1].isdigit(): _, line = split_docker_timestamp(line)` */
    Py_UCS4 first = AT(t, start);
    if (first >= '0' && first <= '9') {
        Py_ssize_t rest;
        int step = docker_timestamp(t, start, end, &rest);
        if (step == UNSURE)
            return DEFER;
        if (step == YES)
            start = rest;
    }
    else if (first >= 0x80 && Py_UNICODE_ISDIGIT(first)) {
        return DEFER;
    }
    Py_ssize_t message = node_message(t, start, end);
    if (message < 0) {
        /* _parse_unprefixed: `Error: …` and panics, both fatal lines */
        if (has_word(t, start, end, "Error: ") || has_word(t, start, end, "Thread '"))
            return DEFER;
        return NO_EVENT;
    }
    if (message >= end)
        return NO_EVENT;
    return message_kind(t, message, end, found);
}

/* classify, compiled once per string width: with the width a constant, every character read
 * below is a plain array access instead of a switch on the width. */
#define CLASSIFY_FOR(width)                                                                    \
    static enum kind __attribute__((flatten))                                                  \
    classify_##width(const void *data, Py_ssize_t start, Py_ssize_t end, found_t *found)       \
    {                                                                                          \
        text_t t = {PyUnicode_##width##BYTE_KIND, data};                                       \
        return classify(t, start, end, found);                                                 \
    }
CLASSIFY_FOR(1)
CLASSIFY_FOR(2)
CLASSIFY_FOR(4)

/* The event classes, in the order scan_block's second argument gives them. */
enum { K_IMPORTED, K_SYNC, K_HIGHEST, K_MAJOR, K_SESSION, K_PREPARED, K_PRESEALED, K_PEERS,
       K_BANNER, K_COUNT };

/* Call `cls` with the one argument `value` (a new reference, consumed). */
static PyObject *
call_with(PyObject *cls, PyObject *value)
{
    if (value == NULL)
        return NULL;
    PyObject *result = PyObject_CallOneArg(cls, value);
    Py_DECREF(value);
    return result;
}

static PyObject *
make_event(PyObject *const *classes, const found_t *found)
{
    const long long *n = found->numbers;
    switch (found->kind) {
    case IMPORTED:
        return call_with(classes[K_IMPORTED], PyLong_FromLongLong(n[0]));
    case SYNC_STATUS:
        return PyObject_CallFunction(classes[K_SYNC], "LLL", n[0], n[1], n[2]);
    case HIGHEST:
        return call_with(classes[K_HIGHEST], PyLong_FromLongLong(n[0]));
    case MAJOR_SYNC_ON:
        return PyObject_CallOneArg(classes[K_MAJOR], Py_True);
    case MAJOR_SYNC_OFF:
        return PyObject_CallOneArg(classes[K_MAJOR], Py_False);
    case SESSION:
        return call_with(classes[K_SESSION], PyLong_FromLongLong(n[0]));
    case PREPARED:
        return call_with(classes[K_PREPARED], PyLong_FromLongLong(n[0]));
    case PRESEALED:
        return call_with(classes[K_PRESEALED], PyLong_FromLongLong(n[0]));
    case PEERS:
        return call_with(classes[K_PEERS], PyLong_FromLongLong(n[0]));
    case BANNER:
        return PyObject_CallNoArgs(classes[K_BANNER]);
    default:
        PyErr_SetString(PyExc_SystemError, "azwatch._speedups: no event to make");
        return NULL;
    }
}

/* Append `item` (a new reference, or NULL on error) to `out`. */
static int
append(PyObject *out, PyObject *item)
{
    if (item == NULL)
        return -1;
    int failed = PyList_Append(out, item);
    Py_DECREF(item);
    return failed;
}

/* The first index in [from, to) of the ASCII character `unit`, or `to`. Like CPython's own
 * str.find for one character: memchr finds the byte, and the hit counts if the character
 * holding it is `unit` (a wider character may hold that byte too; whatever the byte order,
 * `unit` itself holds it once). */
static Py_ssize_t
find_unit(text_t t, Py_ssize_t from, Py_ssize_t to, unsigned char unit)
{
    const char *bytes = (const char *)t.data;
    const char *p = bytes + from * t.kind, *stop = bytes + to * t.kind;
    while (p < stop) {
        const char *hit = memchr(p, unit, (size_t)(stop - p));
        if (hit == NULL)
            return to;
        Py_ssize_t index = (hit - bytes) / t.kind;
        if (AT(t, index) == unit)
            return index;
        p = hit + 1;
    }
    return to;
}

static PyObject *
scan_block(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1]) ||
        PyTuple_GET_SIZE(args[1]) != K_COUNT) {
        PyErr_Format(PyExc_TypeError,
                     "scan_block(block: str, classes: tuple of %d event classes)", K_COUNT);
        return NULL;
    }
    PyObject *block = args[0];
    PyObject *const *classes = &PyTuple_GET_ITEM(args[1], 0);
    text_t t = {PyUnicode_KIND(block), PyUnicode_DATA(block)};
    Py_ssize_t length = PyUnicode_GET_LENGTH(block);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    /* Like parse_lines, a run of imports becomes one event: the highest block. */
    found_t pending = {IMPORTED, {-1, 0, 0}};
    Py_ssize_t deferred = 0;
    Py_ssize_t start = 0;
    /* Lines holding ESC or CR are left to clean(); these are where the next ones are. */
    Py_ssize_t escape = find_unit(t, 0, length, 0x1b), carriage = find_unit(t, 0, length, '\r');
    for (;;) {
        Py_ssize_t end = find_unit(t, start, length, '\n');
        if (escape < start)
            escape = find_unit(t, start, length, 0x1b);
        if (carriage < start)
            carriage = find_unit(t, start, length, '\r');
        int odd = escape < end || carriage < end;
        found_t found = {NO_EVENT, {-1, -1, -1}};
        if (odd)
            found.kind = DEFER;
        else if (t.kind == PyUnicode_1BYTE_KIND)
            found.kind = classify_1(t.data, start, end, &found);
        else if (t.kind == PyUnicode_2BYTE_KIND)
            found.kind = classify_2(t.data, start, end, &found);
        else
            found.kind = classify_4(t.data, start, end, &found);
        if (found.kind == IMPORTED) {
            if (found.numbers[0] > pending.numbers[0])
                pending.numbers[0] = found.numbers[0];
        }
        else if (found.kind != NO_EVENT) {
            if (pending.numbers[0] >= 0) {
                if (append(out, make_event(classes, &pending)) < 0)
                    goto error;
                pending.numbers[0] = -1;
            }
            deferred += found.kind == DEFER;
            PyObject *item = found.kind == DEFER ? PyUnicode_Substring(block, start, end)
                                                 : make_event(classes, &found);
            if (append(out, item) < 0)
                goto error;
        }
        if (end >= length)
            break;
        start = end + 1;
    }
    if (pending.numbers[0] >= 0 && append(out, make_event(classes, &pending)) < 0)
        goto error;
    return Py_BuildValue("(Nn)", out, deferred);
error:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_block", (PyCFunction)(void (*)(void))scan_block, METH_FASTCALL,
     "scan_block(block, classes, /)\n--\n\n"
     "The events the lines of *block* announce, with runs of imports folded, and the raw\n"
     "lines this scan is unsure about (for parse_line), in order; and how many lines those\n"
     "are. *classes* are the event\n"
     "classes: BlockImported, SyncStatus, HighestKnownBlock, MajorSyncChanged,\n"
     "SessionStarted, BlockPrepared, BlockPreSealed, PeersReported, NodeBanner."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "azwatch._speedups",
    .m_doc = "C version of azwatch.logparse's line scan (optional; see parse_block).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
