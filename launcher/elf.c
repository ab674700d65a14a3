/* What the launcher reads of ELF files (iotrace/elf.py's rules, 64-bit little-endian only):
 * the dynamic section's DT_NEEDED and RUNPATH (RPATH without one), and whether a string table
 * names io_uring_queue_init. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"

static const unsigned char *map_elf(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 64)
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return NULL;
    const unsigned char *d = p;
    if (memcmp(d, ELFMAG, SELFMAG) || d[EI_CLASS] != ELFCLASS64 || d[EI_DATA] != ELFDATA2LSB) {
        munmap(p, (size_t)st.st_size);
        return NULL;
    }
    *size = (size_t)st.st_size;
    return d;
}

/* "$ORIGIN" and "${ORIGIN}" in each directory of a RUNPATH replaced (elf.py _dynamic) */
static void expand_origin(const char *in, const char *origin, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < cap;) {
        size_t skip = !strncmp(p, "${ORIGIN}", 9) ? 9 : !strncmp(p, "$ORIGIN", 7) ? 7 : 0;
        if (skip) {
            for (const char *q = origin; *q && o + 1 < cap; q++)
                out[o++] = *q;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

int iot_elf_dynamic(const char *path, char needed[][128], int max_needed, int *n_needed,
                    char *runpath, size_t cap)
{
    size_t size;
    *n_needed = 0;
    runpath[0] = '\0';
    const unsigned char *d = map_elf(path, &size);
    if (!d)
        return -1;
    const Elf64_Ehdr *eh = (const void *)d;
    const Elf64_Phdr *dyn = NULL;
    int ok = eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr) <= size;
    for (int i = 0; ok && i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const void *)(d + eh->e_phoff + (size_t)i * eh->e_phentsize);
        if (ph->p_type == PT_DYNAMIC)
            dyn = ph;
    }
    if (!dyn || dyn->p_offset + dyn->p_filesz > size) {
        munmap((void *)d, size);
        return -1;
    }
    const Elf64_Dyn *e = (const void *)(d + dyn->p_offset);
    size_t n = dyn->p_filesz / sizeof *e;
    uint64_t strtab = (uint64_t)-1;
    for (size_t i = 0; i < n && e[i].d_tag != DT_NULL; i++)
        if (e[i].d_tag == DT_STRTAB)
            strtab = e[i].d_un.d_val;
    long base = -1;
    for (int i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const void *)(d + eh->e_phoff + (size_t)i * eh->e_phentsize);
        if (ph->p_type == PT_LOAD && ph->p_vaddr <= strtab && strtab < ph->p_vaddr + ph->p_filesz) {
            base = (long)(ph->p_offset + strtab - ph->p_vaddr);
            break;
        }
    }
    if (base < 0) {
        munmap((void *)d, size);
        return -1;
    }
    char self[4096], origin[4096];
    if (!realpath(path, self))
        snprintf(self, sizeof self, "%s", path);
    snprintf(origin, sizeof origin, "%s", dirname(self));
    const char *run = NULL, *rpath = NULL;
    for (size_t i = 0; i < n && e[i].d_tag != DT_NULL; i++) {
        size_t at = (size_t)base + e[i].d_un.d_val;
        if (at >= size)
            continue;
        const char *s = (const char *)d + at;
        if (!memchr(s, '\0', size - at))
            continue;
        if (e[i].d_tag == DT_NEEDED && *n_needed < max_needed)
            snprintf(needed[(*n_needed)++], 128, "%s", s);
        else if (e[i].d_tag == DT_RUNPATH && !run)
            run = s;
        else if (e[i].d_tag == DT_RPATH && !rpath)
            rpath = s;
    }
    if (run || rpath)
        expand_origin(run ? run : rpath, origin, runpath, cap);
    munmap((void *)d, size);
    return 0;
}

int iot_elf_names_liburing(const char *path)
{
    static const char want[] = "\0io_uring_queue_init";
    size_t size;
    const unsigned char *d = map_elf(path, &size);
    if (!d)
        return 0;
    const Elf64_Ehdr *eh = (const void *)d;
    int found = 0;
    if (eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) <= size)
        for (int i = 0; i < eh->e_shnum && !found; i++) {
            const Elf64_Shdr *sh = (const void *)(d + eh->e_shoff + (size_t)i * eh->e_shentsize);
            if (sh->sh_type == SHT_STRTAB && sh->sh_offset + sh->sh_size <= size)
                found = memmem(d + sh->sh_offset, sh->sh_size, want, sizeof want - 1) != NULL;
        }
    munmap((void *)d, size);
    return found;
}
