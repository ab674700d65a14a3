/* The stracer's unwinding of a new call site (stracer/unwind.py), with libunwind-ptrace's
 * accessors and two of their costs taken out (docs/stracer.md, "Performance"):
 *   - libunwind-ptrace keeps the unwind table of one module per context: every step into
 *     another module read /proc/PID/maps again and mapped that module's ELF file again (a
 *     libc-internal site in an MPI rank's MPI_Init crosses 4-6 modules).  Here each module
 *     keeps a context of its own for the life of the process image;
 *   - it reads the tracee's memory a word at a time (PTRACE_PEEKDATA: the unwind table's
 *     binary search, every FDE and CIE, the stack).  Here a page at a time
 *     (process_vm_readv), kept for the one unwind: the stopped thread's stack does not change
 *     meanwhile, and the tables never do.
 * The frames found are libunwind-ptrace's own: the same lookups on the same bytes.
 * libunwind-ptrace's functions are given by the caller (nothing linked here: the stracer runs
 * without libunwind).  One unwind at a time: the stracer is single-threaded. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef uint64_t word;

/* libunwind's unw_accessors_t */
typedef struct {
    int (*find_proc_info)(void *as, word ip, void *pi, int need, void *arg);
    void (*put_unwind_info)(void *as, void *pi, void *arg);
    int (*get_dyn_info_list_addr)(void *as, word *addr, void *arg);
    int (*access_mem)(void *as, word addr, word *val, int write, void *arg);
    int (*access_reg)(void *as, int reg, word *val, int write, void *arg);
    int (*access_fpreg)(void *as, int reg, void *val, int write, void *arg);
    int (*resume)(void *as, void *cursor, void *arg);
    int (*get_proc_name)(void *as, word ip, char *buf, size_t len, word *off, void *arg);
} accessors;

typedef void *(*create_fn)(int pid);
typedef void (*destroy_fn)(void *ui);

#define PAGE 4096u
#define PAGES 64

typedef struct {
    word lo, hi;
    int mod;
} seg;

/* One process image: its modules' contexts, made at their first lookup. */
typedef struct {
    int pid;
    seg *segs; /* the image's file mappings, sorted (the caller's /proc/PID/maps) */
    int nsegs;
    void **mod_ui;
    int nmods;
} image;

static accessors upt, ours;
static create_fn upt_create;
static destroy_fn upt_destroy;

/* the unwind in progress */
static image *cur;
static void *cur_ui; /* libunwind-ptrace's context for the thread: registers, names, writes */
static int cur_tid;
static word page_at[PAGES];
static int page_ok[PAGES];
static unsigned char page[PAGES][PAGE];
static int npages, next_page;

static void *module_ui(word ip)
{
    int lo = 0, hi = cur->nsegs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const seg *s = &cur->segs[mid];
        if (ip < s->lo) {
            hi = mid - 1;
        } else if (ip >= s->hi) {
            lo = mid + 1;
        } else {
            void **ui = &cur->mod_ui[s->mod];
            if (!*ui)
                *ui = upt_create(cur->pid);
            return *ui ? *ui : cur_ui;
        }
    }
    /* In no file the caller listed: anonymous memory, or a name that is no regular file now
     * (unwind.py), which libunwind-ptrace would open by its /proc/PID/maps name (a FIFO put
     * there held the stracer in open(2)): no unwind info, no name. */
    return NULL;
}

#define UNW_ENOINFO 10

static int find_proc_info(void *as, word ip, void *pi, int need, void *arg)
{
    (void)arg;
    void *ui = cur ? module_ui(ip) : NULL; /* outside an unwind: libunwind does not ask then */
    return ui ? upt.find_proc_info(as, ip, pi, need, ui) : -UNW_ENOINFO;
}

static void put_unwind_info(void *as, void *pi, void *arg)
{
    (void)arg;
    upt.put_unwind_info(as, pi, cur_ui);
}

static int get_dyn_info_list_addr(void *as, word *addr, void *arg)
{
    (void)arg;
    return upt.get_dyn_info_list_addr(as, addr, cur_ui);
}

/* The page at base, read once per unwind; NULL: unreadable this way (then word by word) */
static const unsigned char *page_of(word base)
{
    for (int i = 0; i < npages; i++)
        if (page_at[i] == base)
            return page_ok[i] ? page[i] : NULL;
    int i = npages < PAGES ? npages++ : next_page++ % PAGES;
    struct iovec local = {page[i], PAGE}, remote = {(void *)base, PAGE};
    page_at[i] = base;
    page_ok[i] = process_vm_readv(cur_tid, &local, 1, &remote, 1, 0) == (ssize_t)PAGE;
    return page_ok[i] ? page[i] : NULL;
}

/* libunwind asks for aligned words: one page holds the whole word */
static int access_mem(void *as, word addr, word *val, int write, void *arg)
{
    (void)arg;
    if (!write && !(addr & 7)) {
        const unsigned char *p = page_of(addr & ~(word)(PAGE - 1));
        if (p) {
            memcpy(val, p + (addr & (PAGE - 1)), sizeof *val);
            return 0;
        }
    }
    return upt.access_mem(as, addr, val, write, cur_ui);
}

static int access_reg(void *as, int reg, word *val, int write, void *arg)
{
    (void)arg;
    return upt.access_reg(as, reg, val, write, cur_ui);
}

static int access_fpreg(void *as, int reg, void *val, int write, void *arg)
{
    (void)arg;
    return upt.access_fpreg(as, reg, val, write, cur_ui);
}

static int resume(void *as, void *cursor, void *arg)
{
    (void)arg;
    return upt.resume(as, cursor, cur_ui);
}

static int get_proc_name(void *as, word ip, char *buf, size_t len, word *off, void *arg)
{
    (void)arg;
    if (!cur || !module_ui(ip)) /* named from the module's file: a listed one only */
        return -UNW_ENOINFO;
    return upt.get_proc_name(as, ip, buf, len, off, cur_ui);
}

/* The accessors to create the address space with, from libunwind-ptrace's _UPT_accessors and
 * its _UPT_create/_UPT_destroy. */
const void *iotu_accessors(const void *upt_accessors, void *create, void *destroy)
{
    memcpy(&upt, upt_accessors, sizeof upt);
    upt_create = (create_fn)create;
    upt_destroy = (destroy_fn)destroy;
    ours = (accessors){find_proc_info, put_unwind_info, get_dyn_info_list_addr, access_mem,
                       access_reg,     access_fpreg,    resume,                 get_proc_name};
    return &ours;
}

void *iotu_image(void)
{
    return calloc(1, sizeof(image));
}

static void drop_modules(image *m)
{
    for (int i = 0; i < m->nmods; i++)
        if (m->mod_ui[i])
            upt_destroy(m->mod_ui[i]);
    free(m->mod_ui);
    m->mod_ui = NULL;
    m->nmods = 0;
}

/* The image's file mappings (lo, hi, module index), sorted by lo, as the caller read them from
 * /proc/PID/maps for process pid.  A module's context is kept while its index names the same
 * file: the caller numbers modules once per image and only adds to them. */
int iotu_maps(void *img, int pid, const word *lo, const word *hi, const int *mod, int n,
              int nmods)
{
    image *m = img;
    if (pid != m->pid)
        drop_modules(m);
    m->pid = pid;
    seg *s = realloc(m->segs, (size_t)(n ? n : 1) * sizeof *s);
    if (!s)
        return -1;
    m->segs = s;
    for (int i = 0; i < n; i++)
        s[i] = (seg){lo[i], hi[i], mod[i] < nmods ? mod[i] : 0};
    m->nsegs = n;
    if (nmods > m->nmods) {
        void **u = realloc(m->mod_ui, (size_t)nmods * sizeof *u);
        if (!u)
            return -1;
        memset(u + m->nmods, 0, (size_t)(nmods - m->nmods) * sizeof *u);
        m->mod_ui = u;
        m->nmods = nmods;
    }
    return 0;
}

/* Start unwinding thread tid of the image: the context to give unw_init_remote (NULL: none). */
void *iotu_begin(void *img, int tid)
{
    cur_ui = upt_create(tid);
    if (!cur_ui)
        return NULL;
    cur = img;
    cur_tid = tid;
    npages = next_page = 0;
    return cur;
}

void iotu_end(void)
{
    if (cur_ui)
        upt_destroy(cur_ui);
    cur_ui = NULL;
    cur = NULL;
}

void iotu_free(void *img)
{
    image *m = img;
    if (!m)
        return;
    drop_modules(m);
    free(m->segs);
    free(m);
}
