// The app's own unwinding under the shim: C++ exceptions (libgcc_s), glibc's backtrace() and
// libunwind's unw_backtrace called by the program itself, each around I/O the shim records.
#include <execinfo.h>
#include <fcntl.h>
#include <libunwind.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

__attribute__((noinline)) static void io_then_throw(int i)
{
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0 || write(fd, "x", 1) != 1)
        throw std::logic_error("io");
    close(fd);
    if (i % 2)
        throw std::runtime_error("odd");
}

int main()
{
    int caught = 0;
    for (int i = 0; i < 10; i++) {
        try {
            io_then_throw(i);
        } catch (const std::runtime_error &) {
            caught++;
        }
    }
    void *b[64];
    int unw = unw_backtrace(b, 64), gcc = backtrace(b, 64);
    std::printf("caught=%d unw_backtrace=%d backtrace=%d\n", caught, unw, gcc);
    return 0;
}
