/* The stack walk's fast path: the app's own unwind tables (.eh_frame, found through
 * .eh_frame_hdr), read once per return address into a small shared table of frame rules, then
 * walked without libunwind (stack.c falls back to libunwind's unw_backtrace otherwise); a walk
 * repeated from the same place is replayed from a memo instead (below).
 *
 * It walks exactly as libunwind's x86_64 fast trace (Gtrace.c, which unw_backtrace uses) does,
 * so a stack is the same whichever took it (docs/design.md "Stacks"): a frame is followed only
 * where libunwind calls it standard -- the CFA is RSP or RBP plus a constant, the return address
 * at CFA-8, RBP unchanged or saved at CFA plus a constant -- and the walk ends where libunwind's
 * does: at a frame whose return address or RBP the tables mark undefined (_start, a thread's
 * clone), or at a return address below 0x4000.  A signal frame (a handler's return into
 * glibc's __restore_rt) is followed as libunwind's trace follows its SIGRETURN frames: the
 * interrupted RIP, RBP and RSP read from the ucontext_t, that RIP recorded as it is.  Each
 * return address is recorded as unw_backtrace records it (stack.c).  Anything else (no table,
 * an expression, an encoding not handled here) gives up the whole walk: libunwind then takes
 * the stack, as it did before this path existed.
 *
 * The table of rules is keyed by the address: a library unloaded and another mapped at its
 * place would leave rules for code that is gone, so dlclose empties it (wrap_proc.c).  Entries
 * are read and written without a lock (a sequence count per entry: a reader that races a
 * writer sees a miss and reads the tables again). */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

enum { R_EMPTY, R_STD, R_LAST, R_NONE }; /* rule kinds (bits 0-1) */
/* bit 2: CFA from RSP (else RBP); bit 3: RBP saved; bits 4-13: RBP's offset from the CFA;
 * bits 14-31: the CFA's offset from its register (both signed) */
#define CFA_RSP 4u
/* A signal frame (the CIE's augmentation 'S': glibc's __restore_rt): libunwind's trace takes
 * the interrupted RIP, RBP and RSP from the ucontext_t its CFA points at (its SIGRETURN frame,
 * ucontext offset 0) and looks the next frame up at that RIP itself, not minus one. */
#define R_SIGNAL (R_LAST | 4u)
#define UC_RBP 0x78 /* offsetof(ucontext_t, uc_mcontext.gregs[REG_RBP]) */
#define UC_RSP 0xa0
#define UC_RIP 0xa8
#define RBP_SAVED 8u
#define RBP_OFF(r) (((int32_t)((r) << 18)) >> 22)
#define CFA_OFF(r) (((int32_t)(r)) >> 14)

typedef struct {
    uint64_t ip;
    uint32_t seq; /* odd while written */
    uint32_t rule;
} slot;

#define NSLOTS 4096
static slot rules[NSLOTS];

static inline slot *slot_of(uintptr_t ip)
{
    return &rules[(ip * 0x9e3779b97f4a7c15ull) >> 52];
}

static inline int rule_get(uintptr_t ip, uint32_t *rule)
{
    slot *s = slot_of(ip);
    uint32_t q = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
    uint64_t a = __atomic_load_n(&s->ip, __ATOMIC_RELAXED);
    uint32_t r = __atomic_load_n(&s->rule, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if ((q & 1) || a != ip || __atomic_load_n(&s->seq, __ATOMIC_RELAXED) != q)
        return 0;
    *rule = r;
    return 1;
}

/* Writes ip's rule, or clears the entry (ip 0); skipped while another writer holds it. */
static void rule_put(slot *s, uintptr_t ip, uint32_t rule)
{
    uint32_t q = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
    if ((q & 1) ||
        !__atomic_compare_exchange_n(&s->seq, &q, q + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&s->ip, ip, __ATOMIC_RELAXED);
    __atomic_store_n(&s->rule, rule, __ATOMIC_RELAXED);
    __atomic_store_n(&s->seq, q + 2, __ATOMIC_RELEASE);
}

static uint32_t rules_gen; /* memos of walks (below) made with older rules are not used */

/* A writer that holds an entry while this runs is writing the rule of an address on a live
 * stack, so of code that is still mapped.  rules_gen moves before and after: a walk that read
 * a rule before it was cleared started before the second move. */
void iot_cfi_flush(void)
{
    __atomic_add_fetch(&rules_gen, 1, __ATOMIC_SEQ_CST);
    for (unsigned i = 0; i < NSLOTS; i++)
        if (__atomic_load_n(&rules[i].ip, __ATOMIC_RELAXED))
            rule_put(&rules[i], 0, 0);
    __atomic_add_fetch(&rules_gen, 1, __ATOMIC_SEQ_CST);
}

/* ---- reading .eh_frame_hdr, .eh_frame ---- */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} rd;

static uint64_t uleb(rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; r->p < r->end && shift < 64; shift += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t sleb(rd *r)
{
    uint64_t v = 0;
    int shift = 0;
    for (; r->p < r->end && shift < 64;) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= ~0ull << shift;
            return (int64_t)v;
        }
    }
    r->bad = 1;
    return 0;
}

static uint64_t fixed(rd *r, int n)
{
    if (r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, (size_t)n); /* little-endian */
    r->p += n;
    return v;
}

/* A DW_EH_PE-encoded pointer: absolute or pc-relative only (what .eh_frame uses for code
 * addresses); `value` 0 reads the format alone (an FDE's address range). */
static uintptr_t encoded(rd *r, uint8_t enc, int value)
{
    const uint8_t *at = r->p;
    uint64_t v;
    if (value && (enc & 0x80)) { /* indirect */
        r->bad = 1;
        return 0;
    }
    switch (enc & 0x0f) {
    case 0x00: v = fixed(r, 8); break;
    case 0x01: v = uleb(r); break;
    case 0x02: v = fixed(r, 2); break;
    case 0x03: v = fixed(r, 4); break;
    case 0x04: v = fixed(r, 8); break;
    case 0x09: v = (uint64_t)sleb(r); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)fixed(r, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)fixed(r, 4); break;
    case 0x0c: v = fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    if (!value)
        return (uintptr_t)v;
    switch (enc & 0x70) {
    case 0x00: return (uintptr_t)v;
    case 0x10: return (uintptr_t)at + (uintptr_t)v;
    default: r->bad = 1; return 0;
    }
}

#if __GLIBC_PREREQ(2, 35)
/* The .eh_frame_hdr of the object holding ip: glibc's _dl_find_object, lock-free and O(log n)
 * (made for unwinders); the object is the one whose PT_LOAD segment holds ip, libunwind's pick
 * (objects' mappings do not interleave).  A walk of dl_iterate_phdr over every object's
 * segments was ~a third of the rules' derivation in mpirun (~90 objects). */
static const uint8_t *eh_frame_hdr(uintptr_t ip)
{
    struct dl_find_object o;
    return _dl_find_object((void *)ip, &o) == 0 ? o.dlfo_eh_frame : NULL;
}
#else
typedef struct {
    uintptr_t ip;
    const uint8_t *hdr;
} find;

/* The object whose loaded segment holds ip (as libunwind picks it) and its .eh_frame_hdr. */
static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    find *f = data;
    const ElfW(Phdr) *eh = NULL;
    int in = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && f->ip >= a && f->ip < a + ph->p_memsz)
            in = 1;
        else if (ph->p_type == PT_GNU_EH_FRAME)
            eh = ph;
    }
    if (!in)
        return 0;
    f->hdr = eh ? (const uint8_t *)(info->dlpi_addr + eh->p_vaddr) : NULL;
    return 1;
}

static const uint8_t *eh_frame_hdr(uintptr_t ip)
{
    find f = {ip, NULL};
    return dl_iterate_phdr(find_object, &f) ? f.hdr : NULL;
}
#endif

/* The FDE covering ip, from .eh_frame_hdr's sorted table (datarel sdata4 pairs). */
static const uint8_t *fde_of(uintptr_t ip)
{
    const uint8_t *h = eh_frame_hdr(ip);
    if (!h)
        return NULL;
    if (h[0] != 1 || h[3] != 0x3b || (h[2] != 0x03 && h[2] != 0x0b))
        return NULL;
    rd r = {h + 4, h + 4 + 16, 0};
    encoded(&r, h[1], 0); /* .eh_frame's address: not needed */
    uint64_t count = encoded(&r, h[2], 0);
    if (r.bad || !count)
        return NULL;
    const int32_t *t = (const int32_t *)r.p;
    uintptr_t base = (uintptr_t)h;
    if (ip < base + (intptr_t)t[0])
        return NULL;
    uint64_t lo = 0, hi = count; /* the last entry starting at or below ip */
    while (hi - lo > 1) {
        uint64_t mid = (lo + hi) / 2;
        if (base + (intptr_t)t[2 * mid] <= ip)
            lo = mid;
        else
            hi = mid;
    }
    return (const uint8_t *)(base + (intptr_t)t[2 * lo + 1]);
}

/* ---- the rule at one address: the CFA program run up to it ---- */

enum { W_SAME, W_UNDEF, W_CFAREL, W_OTHER }; /* a register's rule */
#define NREGS 17 /* DWARF x86_64 0-16: libunwind refuses any other */
#define RBP 6
#define RSP 7
#define RIP 16

typedef struct {
    int cfa_reg, cfa_expr;
    int64_t cfa_off;
    uint8_t where[NREGS];
    int64_t off[NREGS];
} row;

typedef struct {
    uint64_t code_align;
    int64_t data_align;
} cie;

/* Runs instructions while the row's address is at or below ip (as libunwind's
 * run_cfi_program); 0 ok, -1 anything not handled here. */
static int run(rd *r, const cie *c, uintptr_t *loc, uintptr_t ip, row *cur, const row *init)
{
    row stack[8];
    int depth = 0;
    while (*loc <= ip && r->p < r->end && !r->bad) {
        uint8_t op = *r->p++;
        uint64_t reg = op & 0x3f;
        switch (op & 0xc0) {
        case 0x40: *loc += reg * c->code_align; continue;
        case 0x80:
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = W_CFAREL;
            cur->off[reg] = (int64_t)uleb(r) * c->data_align;
            continue;
        case 0xc0:
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = init->where[reg];
            cur->off[reg] = init->off[reg];
            continue;
        }
        switch (op) {
        case 0x00: break;                                    /* nop */
        case 0x02: *loc += fixed(r, 1) * c->code_align; break; /* advance_loc1 */
        case 0x03: *loc += fixed(r, 2) * c->code_align; break;
        case 0x04: *loc += fixed(r, 4) * c->code_align; break;
        case 0x05:                                           /* offset_extended */
        case 0x11:                                           /* offset_extended_sf */
            reg = uleb(r);
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = W_CFAREL;
            cur->off[reg] = (op == 0x05 ? (int64_t)uleb(r) : sleb(r)) * c->data_align;
            break;
        case 0x06:                                           /* restore_extended */
            reg = uleb(r);
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = init->where[reg];
            cur->off[reg] = init->off[reg];
            break;
        case 0x07:                                           /* undefined */
        case 0x08:                                           /* same_value */
            reg = uleb(r);
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = op == 0x07 ? W_UNDEF : W_SAME;
            break;
        case 0x09:                                           /* register */
            reg = uleb(r);
            uleb(r);
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = W_OTHER;
            break;
        case 0x0a:                                           /* remember_state */
            if (depth == 8)
                return -1;
            stack[depth++] = *cur;
            break;
        case 0x0b:                                           /* restore_state */
            if (!depth)
                return -1;
            *cur = stack[--depth];
            break;
        case 0x0c:                                           /* def_cfa */
        case 0x12:                                           /* def_cfa_sf */
            cur->cfa_reg = (int)uleb(r);
            cur->cfa_off = op == 0x0c ? (int64_t)uleb(r) : sleb(r) * c->data_align;
            cur->cfa_expr = 0;
            break;
        case 0x0d:                                           /* def_cfa_register */
            cur->cfa_reg = (int)uleb(r);
            cur->cfa_expr = 0;
            break;
        case 0x0e: cur->cfa_off = (int64_t)uleb(r); break;   /* def_cfa_offset */
        case 0x13: cur->cfa_off = sleb(r) * c->data_align; break;
        case 0x0f:                                           /* def_cfa_expression */
            cur->cfa_expr = 1;
            r->p += uleb(r);
            break;
        case 0x10:                                           /* expression */
        case 0x16:                                           /* val_expression */
            reg = uleb(r);
            if (reg >= NREGS)
                return -1;
            cur->where[reg] = W_OTHER;
            r->p += uleb(r);
            break;
        case 0x2e: uleb(r); break;                           /* GNU_args_size */
        default: return -1; /* set_loc, val_offset, GNU_negative_offset_extended, ... */
        }
    }
    return r->bad || r->p > r->end ? -1 : 0;
}

/* The rule at ip (a return address minus one, or the walk's own first address). */
static uint32_t rule_at(uintptr_t ip)
{
    const uint8_t *fde = fde_of(ip);
    if (!fde)
        return R_NONE;
    rd f = {fde, fde + 8, 0};
    uint64_t len = fixed(&f, 4);
    if (len == 0 || len >= 0xfffffff0u)
        return R_NONE;
    f.end = fde + 4 + len;
    const uint8_t *field = f.p;
    const uint8_t *cie_at = field - (int32_t)fixed(&f, 4);
    rd c = {cie_at, cie_at + 8, 0};
    uint64_t clen = fixed(&c, 4);
    if (clen == 0 || clen >= 0xfffffff0u)
        return R_NONE;
    c.end = cie_at + 4 + clen;
    uint8_t version = 0;
    if (fixed(&c, 4) != 0 || ((version = (uint8_t)fixed(&c, 1)) != 1 && version != 3))
        return R_NONE;
    const char *aug = (const char *)c.p;
    size_t alen = strnlen(aug, (size_t)(c.end - c.p));
    c.p += alen + 1;
    cie ci;
    ci.code_align = uleb(&c);
    ci.data_align = sleb(&c);
    uint64_t ra = version == 1 ? fixed(&c, 1) : uleb(&c);
    uint8_t fde_enc = 0;
    int signal_frame = 0;
    if (aug[0] == 'z') {
        uint64_t n = uleb(&c);
        const uint8_t *aug_end = c.p + n;
        for (size_t i = 1; i < alen && !c.bad; i++) {
            if (aug[i] == 'R')
                fde_enc = (uint8_t)fixed(&c, 1);
            else if (aug[i] == 'L')
                fixed(&c, 1);
            else if (aug[i] == 'P')
                encoded(&c, (uint8_t)fixed(&c, 1), 0);
            else if (aug[i] == 'S')
                signal_frame = 1;
            else /* unknown */
                return R_NONE;
        }
        c.p = aug_end;
    } else if (aug[0]) {
        return R_NONE;
    }
    if (c.bad || ra != RIP || c.p > c.end)
        return R_NONE;
    uintptr_t start = encoded(&f, fde_enc, 1);
    uintptr_t range = encoded(&f, fde_enc, 0);
    if (aug[0] == 'z')
        f.p += uleb(&f);
    if (f.bad || f.p > f.end || ip < start || ip - start >= range)
        return R_NONE;

    row init = {.cfa_reg = -1}, cur;
    uintptr_t loc = 0;
    if (run(&c, &ci, &loc, UINTPTR_MAX - 1, &init, &init) < 0)
        return R_NONE;
    cur = init;
    loc = start;
    if (run(&f, &ci, &loc, ip, &cur, &init) < 0)
        return R_NONE;
    if (signal_frame) /* its CFA and registers are expressions over the ucontext */
        return R_SIGNAL;

    /* libunwind's test, in this order: a simple CFA; the end of the stack; a standard frame */
    if (cur.cfa_expr || (cur.cfa_reg != RBP && cur.cfa_reg != RSP))
        return R_NONE;
    for (int reg = 0; reg < NREGS; reg++) /* an expression libunwind may fail to evaluate */
        if (cur.where[reg] == W_OTHER)
            return R_NONE;
    if (cur.where[RIP] == W_UNDEF || cur.where[RBP] == W_UNDEF)
        return R_LAST;
    for (int reg = RBP; reg <= RSP; reg++)
        if (cur.where[reg] == W_CFAREL &&
            (cur.off[reg] == -1 || cur.off[reg] <= -(1 << 14) || cur.off[reg] >= (1 << 14)))
            return R_NONE;
    if (cur.where[RIP] != W_CFAREL || cur.off[RIP] != -8)
        return R_NONE;
    int64_t rbp_off = cur.where[RBP] == W_CFAREL ? cur.off[RBP] : 0;
    if (cur.cfa_off < -(1 << 17) || cur.cfa_off >= (1 << 17) || rbp_off < -512 || rbp_off >= 512)
        return R_NONE; /* libunwind takes it, this table cannot hold it: libunwind walks */
    return R_STD | (cur.cfa_reg == RSP ? CFA_RSP : 0) |
           (cur.where[RBP] == W_CFAREL ? RBP_SAVED : 0) | ((uint32_t)(rbp_off & 0x3ff) << 4) |
           ((uint32_t)cur.cfa_off << 14);
}

/* ---- the walk, and a memo of whole walks ---- */

/* A walk is a function of its start (this file's one call site: its address, RSP, and RBP if a
 * frame's CFA is RBP-based before RBP is read back from the stack), the rules, and the stack
 * words it reads.  So a memo of a walk -- the words it read, where, and the stack it gave --
 * replayed in order (an address is only known to be the walk's once the words before it
 * matched) gives the walk's result exactly, reading only addresses the walk itself would read.
 * A saved RBP that no later frame uses is not kept.  rules_gen (bumped when the rules are
 * emptied) retires memos of unloaded code.  Per thread (a block mapped at its first stack,
 * unmapped at its exit): no lock, no copy; a signal handler's calls made while the shim is busy
 * take no stack, so a thread never uses its memo from two places at once.  A memo also holds
 * the stack's interned id, for the log of the process it was interned in. */
#define MEMO_READS 24
#define MEMO_DEPTH 16
#define MEMO_SETS 16
#define MEMO_WAYS 2

typedef struct {
    uintptr_t sp, bp;
    uint32_t rules_gen, proc_gen, id;
    uint16_t nread, n, depth, need_bp;
    uint64_t unused; /* while walking: the saved RBPs read and never used */
    uintptr_t at[MEMO_READS], val[MEMO_READS];
    uintptr_t out[MEMO_DEPTH];
} memo;

typedef struct {
    memo *last; /* the memo of this thread's last walk (its id comes after) */
    unsigned victim;
    memo e[MEMO_SETS * MEMO_WAYS];
} memos;

#define MEMOS_GONE ((void *)1) /* the thread is exiting */
#define MEMOS_SIZE ((sizeof(memos) + 4095) & ~(size_t)4095)

static memos *my_memos(void)
{
    memos *m = iot_t.stack_memo;
    if (IOT_LIKELY(m != NULL))
        return m == MEMOS_GONE ? NULL : m;
    if (!iot_own_begin()) /* under the app's seccomp filter (sandbox.c) */
        return NULL;
    void *p = (void *)syscall(SYS_mmap, NULL, MEMOS_SIZE, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    iot_own_end();
    if (p == MAP_FAILED)
        return NULL;
    iot_t.stack_memo = p;
    return p;
}

void iot_cfi_thread_exit(void)
{
    memos *m = iot_t.stack_memo;
    iot_t.stack_memo = MEMOS_GONE;
    if (m && m != MEMOS_GONE)
        syscall(SYS_munmap, m, MEMOS_SIZE);
}

static inline memo *memo_set(memos *ms, uintptr_t sp)
{
    return &ms->e[(((sp >> 4) * 0x9e3779b97f4a7c15ull) >> 60) * MEMO_WAYS];
}

/* The memo of the walk from (sp, bp): its stack into out, or only its id (*id set) if it has
 * one of this process and !want_out; -1 if none. */
static int memo_get(memos *ms, uintptr_t sp, uintptr_t bp, uint32_t gen, uintptr_t *out,
                    int depth, uint32_t *id, int want_out)
{
    memo *set = memo_set(ms, sp);
    for (int w = 0; w < MEMO_WAYS; w++) {
        memo *e = &set[w];
        if (e->sp != sp || e->rules_gen != gen || e->depth != depth || (e->need_bp && e->bp != bp))
            continue;
        unsigned k = 0, nread = e->nread;
        while (k < nread && *(const uintptr_t *)e->at[k] == e->val[k])
            k++;
        if (k < nread)
            continue;
        if (!want_out && e->id && e->proc_gen == iot_p.gen) {
            *id = e->id;
            return e->n;
        }
        memcpy(out, e->out, sizeof *out * e->n);
        ms->last = e;
        return e->n;
    }
    return -1;
}

static memo *memo_slot(memos *ms, uintptr_t sp)
{
    memo *set = memo_set(ms, sp);
    for (int w = 0; w < MEMO_WAYS; w++)
        if (set[w].sp == sp)
            return &set[w];
    return &set[ms->victim++ % MEMO_WAYS];
}

void iot_cfi_memo_id(uint32_t id)
{
    memos *ms = iot_t.stack_memo;
    if (ms && ms != MEMOS_GONE && ms->last) {
        ms->last->id = id;
        ms->last->proc_gen = iot_p.gen;
        ms->last = NULL;
    }
}

/* One word of the walk, noted for the memo (nread past MEMO_READS: too long to keep). */
static inline uintptr_t word(memo *m, uintptr_t at)
{
    uintptr_t v = *(const uintptr_t *)at;
    if (m->nread < MEMO_READS) {
        m->at[m->nread] = at;
        m->val[m->nread] = v;
    }
    m->nread++;
    return v;
}

static int walk(memo *m, uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t *out, int depth,
                int derive)
{
    int n = 0, own = 0, bp_read = 0, bp_word = -1;
    uintptr_t key = ip;
    for (;;) {
        uint32_t r;
        if (IOT_UNLIKELY(!rule_get(key, &r))) {
            if (!derive)
                return IOT_CFI_MISS;
            r = rule_at(key);
            rule_put(slot_of(key), key, r);
        }
        if (r == R_SIGNAL) { /* the interrupted frame: recorded and looked up as it is */
            uintptr_t uc = sp;
            uintptr_t rip = word(m, uc + UC_RIP);
            bp_word = m->nread;
            if (bp_word < 64)
                m->unused |= 1ull << bp_word;
            bp = word(m, uc + UC_RBP);
            bp_read = 1;
            uintptr_t rsp = word(m, uc + UC_RSP);
            if (IOT_UNLIKELY(rip == ip && rsp == sp))
                return -1;
            sp = rsp;
            if (rip < 0x4000)
                return n;
            ip = key = rip;
            if (!n && rip >= iot_p.self_lo && rip < iot_p.self_hi) {
                if (++own > 32)
                    return -1;
                continue;
            }
            out[n++] = rip;
            if (n == depth)
                return n;
            continue;
        }
        if ((r & 3) == R_LAST)
            return n;
        if ((r & 3) != R_STD)
            return -1;
        if (!(r & CFA_RSP)) {
            if (!bp_read)
                m->need_bp = 1;
            else if (bp_word >= 0 && bp_word < 64)
                m->unused &= ~(1ull << bp_word);
        }
        uintptr_t cfa = ((r & CFA_RSP) ? sp : bp) + (intptr_t)CFA_OFF(r);
        uintptr_t ret = word(m, cfa - 8);
        if (r & RBP_SAVED) {
            bp_word = m->nread;
            if (bp_word < 64)
                m->unused |= 1ull << bp_word;
            bp = word(m, cfa + (intptr_t)RBP_OFF(r));
            bp_read = 1;
        }
        if (IOT_UNLIKELY(ret == ip && cfa == sp)) /* libunwind: a frame that does not move */
            return -1;
        sp = cfa;
        if (ret < 0x4000)
            return n;
        ip = ret;
        key = ret - 1;
        uintptr_t pc = ret; /* as unw_backtrace records it (stack.c) */
        if (!n && pc >= iot_p.self_lo && pc < iot_p.self_hi) {
            if (++own > 32)
                return -1;
            continue;
        }
        out[n++] = pc;
        if (n == depth)
            return n;
    }
}

unsigned long iot_cfi_unknown; /* walks that met a return address of unknown rule */

/* Not inlined: its own frame is the walk's first, described by the tables at the address the
 * registers are read at. */
__attribute__((noinline)) int iot_cfi_backtrace(uintptr_t *out, int depth, uint32_t *id)
{
    uintptr_t ip, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                     : "=r"(ip), "=r"(sp), "=r"(bp));
    uint32_t gen = __atomic_load_n(&rules_gen, __ATOMIC_ACQUIRE);
    memos *ms = depth <= MEMO_DEPTH ? my_memos() : NULL;
    if (id)
        *id = 0;
    if (ms) {
        ms->last = NULL;
        int n = memo_get(ms, sp, bp, gen, out, depth, id, id == NULL);
        if (n >= 0)
            return n;
    }
    memo m;
    m.nread = 0;
    m.need_bp = 0;
    m.unused = 0;
    int n = walk(&m, ip, sp, bp, out, depth, 0);
    if (IOT_UNLIKELY(n == IOT_CFI_MISS)) { /* again, deriving the rules not known yet, in this
                                            * frame: a second call site would be another walk */
        __atomic_add_fetch(&iot_cfi_unknown, 1, __ATOMIC_RELAXED);
        if (!iot_cfi_derive_begin())
            return IOT_CFI_MISS;
        m.nread = 0;
        m.need_bp = 0;
        m.unused = 0;
        n = walk(&m, ip, sp, bp, out, depth, 1);
        iot_cfi_derive_end();
    }
    if (n >= 0 && ms && m.nread <= MEMO_READS) {
        unsigned kept = 0;
        for (unsigned k = 0; k < m.nread; k++)
            if (!(m.unused >> k & 1)) {
                m.at[kept] = m.at[k];
                m.val[kept++] = m.val[k];
            }
        m.nread = (uint16_t)kept;
        memo *e = memo_slot(ms, sp);
        memcpy(e->at, m.at, sizeof *m.at * m.nread);
        memcpy(e->val, m.val, sizeof *m.val * m.nread);
        memcpy(e->out, out, sizeof *out * (size_t)n);
        e->nread = m.nread;
        e->n = (uint16_t)n;
        e->depth = (uint16_t)depth;
        e->need_bp = m.need_bp;
        e->bp = bp;
        e->rules_gen = gen;
        e->id = 0;
        e->sp = sp;
        ms->last = e;
    }
    return n;
}
