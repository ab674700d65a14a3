/* The NSS lookups getent makes, called by name (preload/wrap_nss.c): whole-database walks
 * (set*ent, get*ent, end*ent) and single lookups by name, and getnameinfo, with no network (files
 * only: /etc/passwd, /etc/group, /etc/hosts, /etc/services, /etc/protocols).  Prints what each
 * found, so runs compare as text. */
#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(void)
{
    int n = 0;
    setpwent();
    while (getpwent())
        n++;
    endpwent();
    printf("passwd %d\n", n);
    n = 0;
    setgrent();
    while (getgrent())
        n++;
    endgrent();
    printf("group %d\n", n);
    n = 0;
    sethostent(0);
    while (gethostent())
        n++;
    endhostent();
    printf("hosts %d\n", n);
    n = 0;
    setservent(0);
    while (getservent())
        n++;
    endservent();
    printf("services %d\n", n);
    n = 0;
    setprotoent(0);
    while (getprotoent())
        n++;
    endprotoent();
    printf("protocols %d\n", n);

    struct hostent *h = gethostbyname("localhost");
    printf("gethostbyname %s\n", h ? h->h_name : "-");
    struct servent *s = getservbyname("ssh", "tcp");
    printf("getservbyname %d\n", s ? ntohs((unsigned short)s->s_port) : -1);
    struct protoent *p = getprotobyname("udp");
    printf("getprotobyname %d\n", p ? p->p_proto : -1);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(22);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    char host[256], serv[64];
    int r = getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv, 0);
    printf("getnameinfo %d %s %s\n", r, r ? "-" : host, r ? "-" : serv);
    return 0;
}
