/* The user and group lookups (preload/wrap_nss.c) and their _r forms: root, found by name and by
 * id, a name that does not exist, a _r call whose buffer is too small (ERANGE), and root's group
 * list.  Prints each result, so runs compare as text. */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>

int main(void)
{
    struct passwd pw, *pr = NULL;
    struct group gr, *gp = NULL;
    char buf[4096], tiny[1];
    struct passwd *p = getpwnam("root");
    printf("getpwnam %s\n", p ? p->pw_dir : "-");
    printf("getpwuid %s\n", (p = getpwuid(0)) ? p->pw_name : "-");
    printf("getpwnam-none %d\n", getpwnam("no-such-user-xyz") != NULL);
    struct group *g = getgrnam("root");
    printf("getgrnam %d\n", g ? (int)g->gr_gid : -1);
    printf("getgrgid %s\n", (g = getgrgid(0)) ? g->gr_name : "-");
    printf("getpwnam_r %d %s\n", getpwnam_r("root", &pw, buf, sizeof buf, &pr), pr ? "y" : "n");
    printf("getpwuid_r %d\n", getpwuid_r(0, &pw, tiny, sizeof tiny, &pr)); /* ERANGE */
    printf("getgrnam_r %d %s\n", getgrnam_r("root", &gr, buf, sizeof buf, &gp), gp ? "y" : "n");
    printf("getgrgid_r %d %s\n", getgrgid_r(0, &gr, buf, sizeof buf, &gp), gp ? "y" : "n");
    gid_t groups[64];
    int n = 64;
    printf("getgrouplist %d %d\n", getgrouplist("root", 0, groups, &n), n);
    return 0;
}
