/* The shim loaded into a process that is already running (`iotrace attach --shim`: the
 * attacher makes the process dlopen it, docs/attach.md).  Preloaded, the shim comes first in
 * the symbol search order; loaded late, it comes after libc, and every call the program makes
 * is already bound to libc's function.  So each loaded object's GOT slots (JUMP_SLOT and
 * GLOB_DAT relocations) naming a function the shim exports are pointed at its wrapper, as
 * preloading would have bound them.  libc and the loader are left alone (preloading does not
 * reach their internal calls either), and so is the shim.  The wrappers' own real functions
 * are found as before: RTLD_NEXT from a dlopen'd object searches the objects after it in its
 * own scope, libc among them. */
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

unsigned iot_injected_gen;
static void *self_handle;
/* the slots bound and what they held: put back by iotrace_detach */
#define MAX_BOUND 8192
static struct {
    void **slot;
    void *was;
    int relro;
} bound[MAX_BOUND];
static int nbound;

static int left_alone(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return !strncmp(base, "libc.so", 7) || !strncmp(base, "ld-linux", 8) ||
           !strncmp(base, "linux-vdso", 10) || !strncmp(base, "libiotrace", 10);
}

/* The shim's wrapper of `name`, NULL if it wraps none. */
static void *wrapper_of(const char *name)
{
    void *w = dlsym(self_handle, name);
    return (uintptr_t)w >= iot_p.self_lo && (uintptr_t)w < iot_p.self_hi ? w : NULL;
}

/* Pointers in a loaded object's dynamic section: glibc has relocated them in place, except
 * where the section is read-only (then they are still offsets). */
static uintptr_t dyn_ptr(uintptr_t base, uintptr_t p)
{
    return p < base ? base + p : p;
}

/* 0: slot now holds w.  A slot in a RELRO range (bound at load, then made read-only) is made
 * writable for the store. */
static int set_slot(void **slot, void *w, int relro)
{
    if (relro) {
        long pg = sysconf(_SC_PAGESIZE);
        void *page = (void *)((uintptr_t)slot & ~(uintptr_t)(pg - 1));
        if (mprotect(page, (size_t)pg, PROT_READ | PROT_WRITE) != 0)
            return -1;
        __atomic_store_n(slot, w, __ATOMIC_RELEASE);
        mprotect(page, (size_t)pg, PROT_READ);
        return 0;
    }
    __atomic_store_n(slot, w, __ATOMIC_RELEASE);
    return 0;
}

static void patch_relocs(uintptr_t base, const ElfW(Rela) *r, size_t bytes, const ElfW(Sym) *syms,
                         const char *strs, uintptr_t relro_lo, uintptr_t relro_hi, int *n)
{
    for (size_t i = 0; r && i < bytes / sizeof *r; i++) {
        unsigned type = (unsigned)ELF64_R_TYPE(r[i].r_info);
        const ElfW(Sym) *s = &syms[ELF64_R_SYM(r[i].r_info)];
        if ((type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) || !ELF64_R_SYM(r[i].r_info) ||
            s->st_shndx != SHN_UNDEF)
            continue; /* not a call the object makes to another one */
        void *w = wrapper_of(strs + s->st_name);
        void **slot = (void **)(base + r[i].r_offset);
        int relro = (uintptr_t)slot >= relro_lo && (uintptr_t)slot < relro_hi;
        if (!w || *slot == w || nbound == MAX_BOUND)
            continue;
        void *was = *slot;
        if (set_slot(slot, w, relro) == 0) {
            bound[nbound].slot = slot;
            bound[nbound].relro = relro;
            bound[nbound++].was = was;
            (*n)++;
        }
    }
}

static int patch_object(struct dl_phdr_info *info, size_t size, void *count)
{
    (void)size;
    if (left_alone(info->dlpi_name))
        return 0;
    uintptr_t base = info->dlpi_addr, relro_lo = 0, relro_hi = 0;
    const ElfW(Dyn) *dyn = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
        else if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = base + ph->p_vaddr;
            relro_hi = relro_lo + ph->p_memsz;
        }
    }
    const ElfW(Sym) *syms = NULL;
    const char *strs = NULL;
    const ElfW(Rela) *plt = NULL, *rela = NULL;
    size_t pltsz = 0, relasz = 0;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        uintptr_t p = dyn->d_un.d_ptr;
        switch (dyn->d_tag) {
        case DT_SYMTAB: syms = (const ElfW(Sym) *)dyn_ptr(base, p); break;
        case DT_STRTAB: strs = (const char *)dyn_ptr(base, p); break;
        case DT_JMPREL: plt = (const ElfW(Rela) *)dyn_ptr(base, p); break;
        case DT_PLTRELSZ: pltsz = dyn->d_un.d_val; break;
        case DT_RELA: rela = (const ElfW(Rela) *)dyn_ptr(base, p); break;
        case DT_RELASZ: relasz = dyn->d_un.d_val; break;
        }
    }
    if (!syms || !strs)
        return 0;
    patch_relocs(base, plt, pltsz, syms, strs, relro_lo, relro_hi, count);
    patch_relocs(base, rela, relasz, syms, strs, relro_lo, relro_hi, count);
    return 0;
}

int iot_inject_bind(void)
{
    if (!self_handle)
        self_handle = dlopen(iot_p.self_path, RTLD_LAZY | RTLD_NOLOAD);
    if (!self_handle)
        return -1;
    int n = 0;
    dl_iterate_phdr(patch_object, &n);
    return n;
}

/* `iotrace attach --shim` ends: the calls go to libc's functions again, the log is finished,
 * and a wrapper still reached (a call in flight, a function pointer kept) records nothing.
 * Called by the attacher in one thread of the process; the shim stays loaded. */
IOT_API void iotrace_detach(void)
{
    for (int i = 0; i < nbound; i++)
        set_slot(bound[i].slot, bound[i].was, bound[i].relro);
    nbound = 0;
    iot_finish();
    iot_p.state = IOT_OFF;
}
