/* Threads come and go, each making one call the shim measures with the thread's counters
 * (its first reading keeps a descriptor above the soft RLIMIT_NOFILE: the limit raised for a
 * moment), while the main thread makes N children each way (fork, posix_spawn, vfork+exec)
 * that check their soft RLIMIT_NOFILE against the parent's; the count of those that found
 * another is printed a way.  Untraced 0; 16 forks, 10 spawns and 5 vforks of 3,000 each way
 * inherited the raised limit before kio.c's guard.  fork_limit N */
#include <locale.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int done;

static void *one(void *arg)
{
    (void)arg;
    setlocale(LC_ALL, NULL);
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        pthread_t t;
        if (pthread_create(&t, NULL, one, NULL) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

static long children(const char *how, long n, const char *self, const char *want)
{
    long wrong = 0;
    for (long i = 0; i < n; i++) {
        int st = 0;
        pid_t p;
        if (!strcmp(how, "spawn")) {
            char *args[] = {(char *)self, "check", (char *)want, NULL};
            if (posix_spawn(&p, self, NULL, NULL, args, environ) != 0)
                return -1;
        } else if (!strcmp(how, "vfork")) {
            p = vfork();
            if (p == 0) {
                execl(self, self, "check", want, (char *)NULL);
                _exit(3);
            }
        } else {
            p = fork();
            if (p == 0) {
                struct rlimit r;
                getrlimit(RLIMIT_NOFILE, &r);
                _exit((long)r.rlim_cur != atol(want));
            }
        }
        if (p < 0 || waitpid(p, &st, 0) != p)
            return -1;
        wrong += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    return wrong;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "check")) { /* an exec'd child: its limit vs the parent's */
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        return (long)rl.rlim_cur != atol(argv[2]);
    }
    long n = argc > 1 ? atol(argv[1]) : 1000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    char want[32];
    snprintf(want, sizeof want, "%ld", (long)rl.rlim_cur);
    pthread_t c;
    if (pthread_create(&c, NULL, churn, NULL) != 0)
        return 1;
    const char *ways[] = {"fork", "spawn", "vfork"};
    for (int w = 0; w < 3; w++)
        printf("%s %ld\n", ways[w], children(ways[w], n, argv[0], want));
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    pthread_join(c, NULL);
    return 0;
}
