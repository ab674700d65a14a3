/* The stracer's unwinding of a new call site (stracer/unwind.py): libunwind's DWARF unwinder
 * over the tracee's memory, with libunwind-ptrace's accessors for the registers and three of
 * its ways taken out (docs/stracer.md, "Performance" and "Security"):
 *   - libunwind-ptrace finds a module's unwind table by mapping the module's ELF file (the
 *     name /proc/PID/maps gives) and trusting what it reads there: a file of another user's
 *     whose PT_GNU_EH_FRAME points past its end killed root's stracer by SIGSEGV, one whose
 *     table has another encoding by abort(), one truncated under the mapping by SIGBUS, and
 *     the job with it (PTRACE_O_EXITKILL); a FIFO put at the name held it in open(2).  Here
 *     the table is found where the loader put it, in the tracee's memory (the ELF header and
 *     program headers at the module's offset-0 mapping, the eh_frame_hdr they point to), read
 *     by process_vm_readv, which fails on a bad address instead of faulting: no file of the
 *     tracee's is opened or mapped, and every value read is checked before it is used;
 *   - it read /proc/PID/maps again at every step into another module (a libc-internal site in
 *     an MPI rank's MPI_Init crosses 4-6 modules).  Here each module's table is found once for
 *     the life of the process image;
 *   - it reads the tracee's memory a word at a time (PTRACE_PEEKDATA: the unwind table's
 *     binary search, every FDE and CIE, the stack).  Here a page at a time
 *     (process_vm_readv), kept for the one unwind: the stopped thread's stack does not change
 *     meanwhile, and the tables never do.
 * The table is searched by libunwind's own dwarf_search_unwind_table, as libunwind-ptrace
 * does once it has found it: the same frames on the same bytes (tests/test_cost.py).  Not
 * found here (as libunwind-ptrace would): a module's .debug_frame, read from its file only.
 * Names are not asked of libunwind-ptrace (it maps the file): unwind.py names libc's frames
 * from its symbol tables, read (not mapped), and addr2line the rest.
 * libunwind's functions are given by the caller (nothing linked here: the stracer runs
 * without libunwind).  One unwind at a time: the stracer is single-threaded. */
#define _GNU_SOURCE
#include <elf.h>
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

/* libunwind's unw_dyn_info_t, of format UNW_INFO_FORMAT_REMOTE_TABLE (libunwind-dynamic.h) */
typedef struct {
    void *next, *prev;
    word start_ip, end_ip, gp;
    int32_t format, pad;
    word load_offset;
    word name_ptr, segbase, table_len, table_data; /* the union's unw_dyn_remote_table_info_t */
} dyn_info;

#define UNW_INFO_FORMAT_REMOTE_TABLE 2
#define UNW_EINVAL 8
#define UNW_ENOINFO 10

typedef void *(*create_fn)(int pid);
typedef void (*destroy_fn)(void *ui);
typedef int (*search_fn)(void *as, word ip, dyn_info *di, void *pi, int need, void *arg);

#define PAGE 4096u
#define PAGES 64
/* words libunwind may read in one unwind: a deep one reads some thousands.  Its CFA programs
 * are the tracee's bytes: an FDE that says it is 2 GiB of DW_CFA_nop over zero pages the
 * tracee mapped held root's stracer (and so every process of the job) for minutes */
#define MAX_READS (1u << 20)
#define MAX_PHDRS 64 /* more than any linker writes; past it the module has no table here */

typedef struct {
    word lo, hi;
    int mod;
} seg;

/* A module of the image: where its file's offset 0 is mapped, its table once looked for */
typedef struct {
    word base;
    int state; /* 0: not looked for yet, 1: found (di), -1: none */
    dyn_info di;
} module;

/* One process image: its file mappings and modules. */
typedef struct {
    int pid;
    seg *segs; /* the image's file mappings, sorted (the caller's /proc/PID/maps) */
    int nsegs;
    module *mods;
    int nmods;
} image;

static accessors upt, ours;
static create_fn upt_create;
static destroy_fn upt_destroy;
static search_fn search_table;

/* the unwind in progress */
static image *cur;
static void *cur_ui; /* libunwind-ptrace's context for the thread: its registers */
static int cur_tid;
static word page_at[PAGES];
static int page_ok[PAGES];
static unsigned char page[PAGES][PAGE];
static int npages, next_page;
static unsigned reads; /* by libunwind, this unwind */

/* n bytes of the tracee at addr, all or nothing: a bad address fails, it never faults here */
static int peek(word addr, void *buf, size_t n)
{
    struct iovec local = {buf, n}, remote = {(void *)addr, n};
    return process_vm_readv(cur_tid, &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* The size of a pointer of DWARF encoding enc (its value is not needed), 0: not one read here */
static size_t encoded_size(unsigned char enc)
{
    if (enc & 0x80) /* DW_EH_PE_indirect */
        return 0;
    switch (enc & 0x0f) {
    case 0x00: /* absptr */
    case 0x04: /* udata8 */
    case 0x0c: /* sdata8 */
        return 8;
    case 0x03: /* udata4 */
    case 0x0b: /* sdata4 */
        return 4;
    case 0x02: /* udata2 */
    case 0x0a: /* sdata2 */
        return 2;
    default: /* uleb128, sleb128 */
        return 0;
    }
}

/* The module's eh_frame_hdr binary-search table, from the tracee's memory, as
 * libunwind-ptrace's _UPTi_find_unwind_table describes it from the module's file: 0 if found */
static int find_table(module *m)
{
    Elf64_Ehdr eh;
    Elf64_Phdr ph[MAX_PHDRS];
    if (!m->base || !peek(m->base, &eh, sizeof eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
        !eh.e_phnum || eh.e_phnum > MAX_PHDRS ||
        !peek(m->base + eh.e_phoff, ph, eh.e_phnum * sizeof *ph))
        return -1;
    const Elf64_Phdr *first = NULL, *eh_frame = NULL;
    word start = (word)-1, end = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD) {
            if (ph[i].p_vaddr < start)
                start = ph[i].p_vaddr;
            if (ph[i].p_vaddr + ph[i].p_memsz > end)
                end = ph[i].p_vaddr + ph[i].p_memsz;
            if (ph[i].p_offset == 0 && !first)
                first = &ph[i];
        } else if (ph[i].p_type == PT_GNU_EH_FRAME) {
            eh_frame = &ph[i];
        }
    }
    if (!first || !eh_frame || start >= end)
        return -1;
    word load_base = m->base - first->p_vaddr; /* base maps file offset 0, first's start */
    word hdr = load_base + eh_frame->p_vaddr;
    unsigned char h[4 + 8 + 8]; /* version, 3 encodings, eh_frame_ptr, fde_count */
    if (!peek(hdr, h, 4))
        return -1;
    size_t ptr_size = h[1] == 0xff ? 0 : encoded_size(h[1]); /* DW_EH_PE_omit */
    size_t count_size = encoded_size(h[2]);
    /* the table's entries: two 4-byte offsets from the header (datarel | sdata4), the one
     * encoding libunwind-ptrace reads (others: it aborts); the count an absolute number */
    if (h[0] != 1 || (h[1] != 0xff && !ptr_size) || !count_size || (h[2] & 0x70) ||
        h[3] != 0x3b || !peek(hdr + 4, h + 4, ptr_size + count_size))
        return -1;
    word count = 0;
    memcpy(&count, h + 4 + ptr_size, count_size); /* little-endian */
    if (count_size < 8 && (h[2] & 0x08) && (count >> (count_size * 8 - 1)))
        return -1; /* a negative count */
    m->di = (dyn_info){.start_ip = load_base + start,
                       .end_ip = load_base + end,
                       /* DT_PLTGOT, for pointers encoded data-relative: x86-64's compilers
                        * write none in .eh_frame (the table's base is segbase) */
                       .gp = 0,
                       .format = UNW_INFO_FORMAT_REMOTE_TABLE,
                       .segbase = hdr,
                       .table_len = count, /* in words: 8 bytes an entry */
                       .table_data = hdr + 4 + ptr_size + count_size};
    return 0;
}

/* The module whose file ip is in; NULL: in no file the caller listed (anonymous memory) */
static module *module_of(word ip)
{
    int lo = 0, hi = cur->nsegs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const seg *s = &cur->segs[mid];
        if (ip < s->lo)
            hi = mid - 1;
        else if (ip >= s->hi)
            lo = mid + 1;
        else
            return &cur->mods[s->mod];
    }
    return NULL;
}

static int find_proc_info(void *as, word ip, void *pi, int need, void *arg)
{
    module *m = cur ? module_of(ip) : NULL; /* outside an unwind: libunwind does not ask then */
    if (!m)
        return -UNW_ENOINFO;
    if (!m->state)
        m->state = find_table(m) == 0 ? 1 : -1;
    if (m->state < 0 || ip < m->di.start_ip || ip >= m->di.end_ip)
        return -UNW_ENOINFO;
    return search_table(as, ip, &m->di, pi, need, arg);
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
    page_at[i] = base;
    page_ok[i] = peek(base, page[i], PAGE);
    return page_ok[i] ? page[i] : NULL;
}

/* libunwind asks for aligned words: one page holds the whole word */
static int access_mem(void *as, word addr, word *val, int write, void *arg)
{
    (void)arg;
    if (++reads > MAX_READS)
        return -UNW_EINVAL;
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

/* libunwind-ptrace names an address from the module's file, mapped: never here */
static int get_proc_name(void *as, word ip, char *buf, size_t len, word *off, void *arg)
{
    (void)as, (void)ip, (void)buf, (void)len, (void)off, (void)arg;
    return -UNW_ENOINFO;
}

/* The accessors to create the address space with, from libunwind-ptrace's _UPT_accessors,
 * its _UPT_create/_UPT_destroy and libunwind's dwarf_search_unwind_table. */
const void *iotu_accessors(const void *upt_accessors, void *create, void *destroy, void *search)
{
    memcpy(&upt, upt_accessors, sizeof upt);
    upt_create = (create_fn)create;
    upt_destroy = (destroy_fn)destroy;
    search_table = (search_fn)search;
    ours = (accessors){find_proc_info, put_unwind_info, get_dyn_info_list_addr, access_mem,
                       access_reg,     access_fpreg,    resume,                 get_proc_name};
    return &ours;
}

void *iotu_image(void)
{
    return calloc(1, sizeof(image));
}

/* The image's file mappings (lo, hi, module index), sorted by lo, and each module's offset-0
 * mapping (base, 0: none), as the caller read them from /proc/PID/maps for process pid.  A
 * module's table is kept while its index names the same file at the same base: the caller
 * numbers modules once per image and only adds to them. */
int iotu_maps(void *img, int pid, const word *lo, const word *hi, const int *mod, int n,
              const word *base, int nmods)
{
    image *m = img;
    if (pid != m->pid) {
        free(m->mods);
        m->mods = NULL;
        m->nmods = 0;
    }
    m->pid = pid;
    seg *s = realloc(m->segs, (size_t)(n ? n : 1) * sizeof *s);
    if (!s)
        return -1;
    m->segs = s;
    if (nmods > m->nmods) {
        module *u = realloc(m->mods, (size_t)nmods * sizeof *u);
        if (!u) {
            m->nsegs = 0;
            return -1;
        }
        memset(u + m->nmods, 0, (size_t)(nmods - m->nmods) * sizeof *u);
        m->mods = u;
        m->nmods = nmods;
    }
    for (int i = 0; i < m->nmods && i < nmods; i++)
        if (m->mods[i].base != base[i])
            m->mods[i] = (module){.base = base[i]};
    for (int i = 0; i < n; i++)
        s[i] = (seg){lo[i], hi[i], mod[i] >= 0 && mod[i] < m->nmods ? mod[i] : 0};
    m->nsegs = m->nmods ? n : 0;
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
    npages = next_page = reads = 0;
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
    free(m->mods);
    free(m->segs);
    free(m);
}
