/* getaddrinfo (preload/wrap_nss.c), no network: names from /etc/hosts, numeric ones, a service
 * alone, and a failure decided before any lookup.  Prints each result, so runs compare as text. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

static void lookup(const char *node, const char *service, int flags)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = flags;
    int r = getaddrinfo(node, service, &hints, &res);
    char ip[INET_ADDRSTRLEN] = "-";
    if (r == 0)
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
    printf("%s %s %d %s\n", node ? node : "(null)", service ? service : "(null)", r, ip);
    if (r == 0)
        freeaddrinfo(res);
}

int main(void)
{
    lookup("localhost", "80", 0);
    lookup("127.0.0.1", NULL, AI_NUMERICHOST);
    lookup(NULL, "80", AI_PASSIVE);
    lookup("localhost", "http-x", AI_NUMERICSERV); /* EAI_NONAME: the service is no number */
    return 0;
}
