/*
 * nginx_server.c — starts and stops a real nginx for tests (see nginx_server.h).
 *
 * Everything nginx reads or writes lives in one temporary directory: openssl.cnf, ca.pem,
 * ca.key, server.pem, server.key, nginx.conf, nginx.pid, nginx.out (its stdout and stderr),
 * error.log, access.log and the temporary-file folders. Programs are run with fork and execv
 * (argument vectors, never a shell line), so no path is ever parsed by a shell.
 */
#include "nginx_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TRIES      3     /* a port taken between picking and binding: pick again */
#define READY_TIMEOUT_MS 10000 /* nginx listening on every port */
#define STOP_TIMEOUT_MS  5000  /* after SIGTERM, before SIGKILL */
#define POLL_STEP_MS     10

struct ktn_server {
    char *dir;      /* the temporary directory */
    char *doc_root; /* absolute */
    char *ca_file;
    char *access_log;
    char *version;
    pid_t pid;
    int port[KTN_LISTENERS];
    char *base[KTN_LISTENERS];
};

/* --- small helpers ------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Reads at most the last `max` bytes of a text file; NULL when it cannot be read. */
static char *read_tail(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)max ? size - (long)max : 0;
    fseek(f, from, SEEK_SET);
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' && i + 1 < n)
            buf[i] = ' '; /* one line, for an error sentence */
    return buf;
}

/* A path nginx's configuration can hold inside double quotes without reinterpreting it. */
static bool config_safe(const char *path)
{
    return strpbrk(path, "\"\\$;{}\n\r") == NULL;
}

/* The executable `name` on PATH or in one of the usual sbin folders; heap, or NULL. */
static char *find_program(const char *name)
{
    const char *path = getenv("PATH");
    char *dirs = str_printf("%s:/usr/sbin:/usr/local/sbin:/sbin:/usr/bin:/usr/local/bin",
                            path && *path ? path : "/usr/bin:/bin");
    if (!dirs)
        return NULL;
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *candidate = str_printf("%s/%s", d, name);
        if (candidate && access(candidate, X_OK) == 0) {
            free(dirs);
            return candidate;
        }
        free(candidate);
    }
    free(dirs);
    return NULL;
}

/* Runs argv[0] (a full path) with stdout and stderr going to out_path; returns its exit status,
 * or -1 when it could not be run or did not exit normally. */
static int run_program(char *const argv[], const char *out_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- certificates ----------------------------------------------------------------------------- */

static const char openssl_cnf[] = "[req]\n"
                                  "distinguished_name = dn\n"
                                  "prompt = no\n"
                                  "[dn]\n"
                                  "CN = kithara test\n"
                                  "[ca_ext]\n"
                                  "basicConstraints = critical, CA:TRUE\n"
                                  "keyUsage = critical, keyCertSign, cRLSign\n"
                                  "subjectKeyIdentifier = hash\n"
                                  "[server_ext]\n"
                                  "basicConstraints = critical, CA:FALSE\n"
                                  "keyUsage = critical, digitalSignature\n"
                                  "extendedKeyUsage = serverAuth\n"
                                  "subjectAltName = IP:127.0.0.1, DNS:localhost\n";

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* A CA (EC P-256, valid two days) and a server certificate it signed for 127.0.0.1 and
 * localhost, in s->dir. */
static kth_status make_certificates(ktn_server *s, char *err, size_t errlen)
{
    char *openssl = find_program("openssl");
    if (!openssl) {
        set_err(err, errlen,
                "the openssl program is not installed (scripts/install-deps.sh installs it)");
        return KTH_ERR_NOT_FOUND;
    }
    char *cnf = str_printf("%s/openssl.cnf", s->dir);
    char *ca_key = str_printf("%s/ca.key", s->dir);
    char *csr = str_printf("%s/server.csr", s->dir);
    char *key = str_printf("%s/server.key", s->dir);
    char *crt = str_printf("%s/server.pem", s->dir);
    char *out = str_printf("%s/openssl.out", s->dir);
    kth_status st = KTH_ERR_NO_MEMORY;
    if (!cnf || !ca_key || !csr || !key || !crt || !out)
        goto done;
    st = KTH_ERR_IO;
    if (!write_file(cnf, openssl_cnf)) {
        set_err(err, errlen, "cannot write %s: %s", cnf, strerror(errno));
        goto done;
    }
    char *const ca[] = {openssl,
                        "req",
                        "-x509",
                        "-config",
                        cnf,
                        "-extensions",
                        "ca_ext",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:prime256v1",
                        "-nodes",
                        "-keyout",
                        ca_key,
                        "-out",
                        s->ca_file,
                        "-days",
                        "2",
                        "-subj",
                        "/CN=kithara throwaway test CA",
                        NULL};
    char *const req[] = {openssl,
                         "req",
                         "-new",
                         "-config",
                         cnf,
                         "-newkey",
                         "ec",
                         "-pkeyopt",
                         "ec_paramgen_curve:prime256v1",
                         "-nodes",
                         "-keyout",
                         key,
                         "-out",
                         csr,
                         "-subj",
                         "/CN=localhost",
                         NULL};
    char *const sign[] = {openssl,       "x509",       "-req",   "-in",      csr,
                          "-CA",         s->ca_file,   "-CAkey", ca_key,     "-set_serial",
                          "1",           "-days",      "2",      "-extfile", cnf,
                          "-extensions", "server_ext", "-out",   crt,        NULL};
    if (run_program(ca, out) != 0 || run_program(req, out) != 0 || run_program(sign, out) != 0) {
        char *log = read_tail(out, 400);
        set_err(err, errlen, "openssl could not make the test certificates: %s",
                log ? log : "no output");
        free(log);
        goto done;
    }
    st = KTH_OK;
done:
    free(openssl);
    free(cnf);
    free(ca_key);
    free(csr);
    free(key);
    free(crt);
    free(out);
    return st;
}

/* --- what the installed nginx can do ---------------------------------------------------------- */

typedef struct nginx_build {
    int major, minor, patch;
    bool ssl, http2;
    bool has[4]; /* proxy, fastcgi, uwsgi, scgi modules: their temp path directive exists */
} nginx_build;

static const char *const temp_modules[4] = {"proxy", "fastcgi", "uwsgi", "scgi"};

static bool version_at_least(const nginx_build *b, int major, int minor, int patch)
{
    if (b->major != major)
        return b->major > major;
    if (b->minor != minor)
        return b->minor > minor;
    return b->patch >= patch;
}

/* Reads `nginx -V`: the version and the modules that matter here. */
static kth_status probe_nginx(ktn_server *s, const char *nginx, nginx_build *b, char *err,
                              size_t errlen)
{
    memset(b, 0, sizeof *b);
    char *out = str_printf("%s/nginx-V.out", s->dir);
    if (!out)
        return KTH_ERR_NO_MEMORY;
    char *const argv[] = {(char *)nginx, "-V", NULL};
    int rc = run_program(argv, out);
    char *text = read_tail(out, 16384);
    free(out);
    const char *v = text ? strstr(text, "nginx/") : NULL;
    if (rc != 0 || !v || sscanf(v, "nginx/%d.%d.%d", &b->major, &b->minor, &b->patch) != 3) {
        set_err(err, errlen, "%s -V did not say its version (%s)", nginx, text ? text : "");
        free(text);
        return KTH_ERR_UNSUPPORTED;
    }
    s->version = str_printf("%d.%d.%d", b->major, b->minor, b->patch);
    b->ssl = strstr(text, "--with-http_ssl_module") != NULL;
    b->http2 = strstr(text, "--with-http_v2_module") != NULL;
    for (int i = 0; i < 4; i++) {
        char without[64];
        snprintf(without, sizeof without, "--without-http_%s_module", temp_modules[i]);
        b->has[i] = strstr(text, without) == NULL;
    }
    free(text);
    if (!s->version)
        return KTH_ERR_NO_MEMORY;
    if (!b->ssl || !b->http2) {
        set_err(err, errlen, "nginx %s was built without the %s module", s->version,
                b->ssl ? "HTTP/2" : "SSL");
        return KTH_ERR_UNSUPPORTED;
    }
    return KTH_OK;
}

/* --- configuration ------------------------------------------------------------------------ */

/* Distinct free loopback ports: bound together (so the OS gives distinct ones), then released
 * for nginx. Another process could take one in between; ktn_start then tries again. */
static bool pick_ports(int port[KTN_LISTENERS])
{
    int fd[KTN_LISTENERS];
    bool ok = true;
    for (int i = 0; i < KTN_LISTENERS; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd[i] < 0 || bind(fd[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fd[i], (struct sockaddr *)&a, &len) != 0)
            ok = false;
        port[i] = ok ? ntohs(a.sin_port) : 0;
    }
    for (int i = 0; i < KTN_LISTENERS; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    return ok;
}

/* The listen lines of the servers. nginx 1.25.1 moved HTTP/2 from a listen parameter to
 * the `http2` directive; before it, `listen ... http2` without ssl is cleartext HTTP/2 with prior
 * knowledge. */
static void write_servers(FILE *f, const ktn_server *s, const nginx_build *b)
{
    bool directive = version_at_least(b, 1, 25, 1);
    const char *h2_listen = directive ? "" : " http2";
    const char *h2_on = directive ? "    http2 on;\n" : "";
    const char *locations = "    location / { }\n"
                            "    location ~ ^/u/[A-Za-z0-9_-]+(/.*)$ { alias \"%s$1\"; }\n";
    fprintf(f, "  server {\n    listen 127.0.0.1:%d ssl%s;\n%s", s->port[KTN_HTTPS_H2], h2_listen,
            h2_on);
    fprintf(f, "    ssl_certificate \"%s/server.pem\";\n", s->dir);
    fprintf(f, "    ssl_certificate_key \"%s/server.key\";\n", s->dir);
    fprintf(f, locations, s->doc_root);
    fprintf(f, "  }\n  server {\n    listen 127.0.0.1:%d;\n", s->port[KTN_HTTP1]);
    fprintf(f, locations, s->doc_root);
    fprintf(f, "  }\n  server {\n    listen 127.0.0.1:%d%s;\n%s", s->port[KTN_H2C], h2_listen,
            h2_on);
    fprintf(f, locations, s->doc_root);
    fprintf(f, "  }\n  server {\n    listen 127.0.0.1:%d%s;\n%s", s->port[KTN_H2C_CLOSING],
            h2_listen, h2_on);
    fprintf(f, "    keepalive_requests %d;\n", KTN_CLOSING_REQUESTS);
    fprintf(f, locations, s->doc_root);
    fprintf(f, "  }\n  server {\n    listen 127.0.0.1:%d ssl;\n", s->port[KTN_HTTPS_H1]);
    fprintf(f, "    ssl_certificate \"%s/server.pem\";\n", s->dir);
    fprintf(f, "    ssl_certificate_key \"%s/server.key\";\n", s->dir);
    fprintf(f, locations, s->doc_root);
    fprintf(f, "  }\n");
}

static kth_status write_config(const ktn_server *s, const nginx_build *b, char *err, size_t errlen)
{
    char *path = str_printf("%s/nginx.conf", s->dir);
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) {
        set_err(err, errlen, "cannot write %s/nginx.conf: %s", s->dir, strerror(errno));
        free(path);
        return KTH_ERR_IO;
    }
    /* As root, nginx would switch its workers to `nobody`, who cannot read the 0700 temporary
     * directory: keep them as who we are. Otherwise there is nothing to switch. */
    if (geteuid() == 0) {
        struct passwd *pw = getpwuid(geteuid());
        struct group *gr = getgrgid(getegid());
        if (pw && gr)
            fprintf(f, "user %s %s;\n", pw->pw_name, gr->gr_name);
    }
    fprintf(f, "worker_processes 1;\nerror_log \"%s/error.log\" info;\npid \"%s/nginx.pid\";\n",
            s->dir, s->dir);
    fprintf(f, "events { worker_connections 1024; }\nhttp {\n");
    fprintf(f, "  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; audio/mpeg mp3;\n"
               "          audio/aac aac; audio/mp4 m4a; video/mp4 mp4; video/iso.segment m4s;\n"
               "          audio/flac flac; text/html html; }\n"
               "  default_type application/octet-stream;\n");
    fprintf(f, "  log_format kth '$server_port $connection $server_protocol $status "
               "$request_uri';\n");
    fprintf(f, "  access_log \"%s\" kth;\n  keepalive_requests 100000;\n", s->access_log);
    fprintf(f, "  root \"%s\";\n", s->doc_root);
    fprintf(f, "  client_body_temp_path \"%s/tmp-body\";\n", s->dir);
    for (int i = 0; i < 4; i++)
        if (b->has[i])
            fprintf(f, "  %s_temp_path \"%s/tmp-%s\";\n", temp_modules[i], s->dir, temp_modules[i]);
    write_servers(f, s, b);
    fprintf(f, "}\n");
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    free(path);
    if (!ok) {
        set_err(err, errlen, "cannot write %s/nginx.conf", s->dir);
        return KTH_ERR_IO;
    }
    return KTH_OK;
}

/* --- running ------------------------------------------------------------------------------- */

static pid_t spawn_nginx(const ktn_server *s, const char *nginx, const nginx_build *b)
{
    char *conf = str_printf("%s/nginx.conf", s->dir);
    char *out = str_printf("%s/nginx.out", s->dir);
    char *elog = str_printf("%s/error.log", s->dir);
    char *prefix = str_printf("%s/", s->dir);
    pid_t pid = -1;
    if (!conf || !out || !elog || !prefix)
        goto done;
    /* -e (1.19.5) keeps the start-up messages out of the compiled-in error log. */
    bool e_flag = version_at_least(b, 1, 19, 5);
    char *const argv[] = {(char *)nginx,        "-p", prefix, "-c", conf, "-g", "daemon off;",
                          e_flag ? "-e" : NULL, elog, NULL};
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1); /* the parent is already gone */
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
done:
    free(conf);
    free(out);
    free(elog);
    free(prefix);
    return pid;
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* What nginx said before it exited, for the error sentence; heap or NULL. */
static char *nginx_said(const ktn_server *s)
{
    char *out = str_printf("%s/nginx.out", s->dir);
    char *text = out ? read_tail(out, 600) : NULL;
    free(out);
    if (text && text[0])
        return text;
    free(text);
    char *elog = str_printf("%s/error.log", s->dir);
    text = elog ? read_tail(elog, 600) : NULL;
    free(elog);
    return text;
}

/* Waits until every port accepts. KTH_ERR_BUSY when nginx exited because a port was taken
 * (try other ports), KTH_ERR_NETWORK for any other exit or the deadline. */
static kth_status wait_ready(ktn_server *s, char *err, size_t errlen)
{
    for (int waited = 0; waited < READY_TIMEOUT_MS; waited += POLL_STEP_MS) {
        int status = 0;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = -1;
            char *said = nginx_said(s);
            bool busy = said && strstr(said, "Address already in use");
            set_err(err, errlen, "nginx exited at start (status %d): %s",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, said ? said : "no message");
            free(said);
            return busy ? KTH_ERR_BUSY : KTH_ERR_NETWORK;
        }
        bool all = true;
        for (int i = 0; i < KTN_LISTENERS && all; i++)
            all = port_accepts(s->port[i]);
        if (all)
            return KTH_OK;
        sleep_ms(POLL_STEP_MS);
    }
    set_err(err, errlen, "nginx did not listen within %d ms", READY_TIMEOUT_MS);
    return KTH_ERR_NETWORK;
}

static void kill_nginx(ktn_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int status;
    for (int waited = 0; waited < STOP_TIMEOUT_MS; waited += POLL_STEP_MS) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = -1;
            return;
        }
        sleep_ms(POLL_STEP_MS);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = -1;
}

/* Ports, configuration, start, readiness; again with other ports when one was taken. */
static kth_status run_nginx(ktn_server *s, const char *nginx, const nginx_build *b, char *err,
                            size_t errlen)
{
    kth_status st = KTH_ERR_NETWORK;
    for (int attempt = 0; attempt < START_TRIES; attempt++) {
        if (!pick_ports(s->port)) {
            set_err(err, errlen, "no free loopback port: %s", strerror(errno));
            return KTH_ERR_NETWORK;
        }
        st = write_config(s, b, err, errlen);
        if (st != KTH_OK)
            return st;
        s->pid = spawn_nginx(s, nginx, b);
        if (s->pid < 0) {
            set_err(err, errlen, "cannot start %s: %s", nginx, strerror(errno));
            return KTH_ERR_NETWORK;
        }
        st = wait_ready(s, err, errlen);
        if (st != KTH_ERR_BUSY)
            break;
    }
    if (st != KTH_OK)
        kill_nginx(s);
    return st == KTH_ERR_BUSY ? KTH_ERR_NETWORK : st;
}

/* --- lifetime --------------------------------------------------------------------------------- */

static kth_status make_dir(ktn_server *s, const ktn_config *config, char *err, size_t errlen)
{
    s->doc_root = config->doc_root ? realpath(config->doc_root, NULL) : NULL;
    if (!s->doc_root) {
        set_err(err, errlen, "document root %s: %s", config->doc_root ? config->doc_root : "NULL",
                config->doc_root ? strerror(errno) : "missing");
        return KTH_ERR_INVALID_ARG;
    }
    const char *tmp = getenv("TMPDIR");
    s->dir = str_printf("%s/kithara-nginx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!s->dir)
        return KTH_ERR_NO_MEMORY;
    if (!mkdtemp(s->dir)) {
        set_err(err, errlen, "cannot make a temporary directory %s: %s", s->dir, strerror(errno));
        free(s->dir);
        s->dir = NULL;
        return KTH_ERR_IO;
    }
    if (!config_safe(s->dir) || !config_safe(s->doc_root)) {
        set_err(err, errlen, "%s or %s holds a character nginx's configuration cannot quote",
                s->dir, s->doc_root);
        return KTH_ERR_INVALID_ARG;
    }
    s->ca_file = str_printf("%s/ca.pem", s->dir);
    s->access_log = str_printf("%s/access.log", s->dir);
    return s->ca_file && s->access_log ? KTH_OK : KTH_ERR_NO_MEMORY;
}

kth_status ktn_start(const ktn_config *config, ktn_server **out, char *err, size_t errlen)
{
    if (!out || !config)
        return KTH_ERR_INVALID_ARG;
    *out = NULL;
    ktn_server *s = calloc(1, sizeof *s);
    if (!s)
        return KTH_ERR_NO_MEMORY;
    s->pid = -1;
    char *nginx = find_program("nginx");
    nginx_build b;
    kth_status st = make_dir(s, config, err, errlen);
    if (st == KTH_OK && !nginx) {
        set_err(err, errlen, "nginx is not installed (scripts/install-deps.sh installs it)");
        st = KTH_ERR_NOT_FOUND;
    }
    if (st == KTH_OK)
        st = probe_nginx(s, nginx, &b, err, errlen);
    if (st == KTH_OK)
        st = make_certificates(s, err, errlen);
    if (st == KTH_OK)
        st = run_nginx(s, nginx, &b, err, errlen);
    free(nginx);
    static const char *const scheme[KTN_LISTENERS] = {"https", "http", "http", "http", "https"};
    for (int i = 0; st == KTH_OK && i < KTN_LISTENERS; i++) {
        s->base[i] = str_printf("%s://127.0.0.1:%d", scheme[i], s->port[i]);
        if (!s->base[i])
            st = KTH_ERR_NO_MEMORY;
    }
    if (st != KTH_OK) {
        ktn_stop(s);
        return st;
    }
    *out = s;
    return KTH_OK;
}

void ktn_stop(ktn_server *s)
{
    if (!s)
        return;
    kill_nginx(s);
    if (s->dir)
        remove_tree(s->dir);
    for (int i = 0; i < KTN_LISTENERS; i++)
        free(s->base[i]);
    free(s->dir);
    free(s->doc_root);
    free(s->ca_file);
    free(s->access_log);
    free(s->version);
    free(s);
}

const char *ktn_base(const ktn_server *s, ktn_listener which)
{
    return s && which >= 0 && which < KTN_LISTENERS ? s->base[which] : NULL;
}

const char *ktn_ca_file(const ktn_server *s)
{
    return s ? s->ca_file : NULL;
}

const char *ktn_version(const ktn_server *s)
{
    return s ? s->version : NULL;
}

/* --- the access log ------------------------------------------------------------------------- */

/* One line: "PORT CONNECTION PROTOCOL STATUS URI". */
static bool parse_line(char *line, int *port, unsigned long *conn, bool *h2, int *status,
                       const char **uri)
{
    char *save = NULL;
    char *f[5];
    for (int i = 0; i < 5; i++) {
        f[i] = strtok_r(i == 0 ? line : NULL, " \n", &save);
        if (!f[i])
            return false;
    }
    *port = atoi(f[0]);
    *conn = strtoul(f[1], NULL, 10);
    *h2 = strcmp(f[2], "HTTP/2.0") == 0;
    *status = atoi(f[3]);
    *uri = f[4];
    return true;
}

kth_status ktn_log_stats(const ktn_server *s, ktn_listener which, const char *uri_prefix,
                         ktn_stats *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(s->access_log, "r");
    if (!f)
        return errno == ENOENT ? KTH_OK : KTH_ERR_IO; /* nothing logged yet */
    unsigned long *conns = NULL;
    size_t n_conns = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    kth_status st = KTH_OK;
    while (getline(&line, &line_cap, f) > 0) {
        int port, status;
        unsigned long conn;
        bool h2;
        const char *uri;
        if (!parse_line(line, &port, &conn, &h2, &status, &uri) || port != s->port[which] ||
            (uri_prefix && strncmp(uri, uri_prefix, strlen(uri_prefix)) != 0))
            continue;
        out->requests++;
        out->http2 += h2;
        out->ok += status == 200 || status == 206;
        size_t i = 0;
        while (i < n_conns && conns[i] != conn)
            i++;
        if (i < n_conns)
            continue;
        if (n_conns == cap) {
            cap = cap ? cap * 2 : 16;
            unsigned long *v = realloc(conns, cap * sizeof *v);
            if (!v) {
                st = KTH_ERR_NO_MEMORY;
                break;
            }
            conns = v;
        }
        conns[n_conns++] = conn;
    }
    out->connections = (unsigned)n_conns;
    free(line);
    free(conns);
    fclose(f);
    return st;
}

kth_status ktn_wait_requests(const ktn_server *s, ktn_listener which, const char *uri_prefix,
                             unsigned count, int timeout_ms)
{
    for (int waited = 0;; waited += POLL_STEP_MS) {
        ktn_stats st;
        kth_status rc = ktn_log_stats(s, which, uri_prefix, &st);
        if (rc != KTH_OK)
            return rc;
        if (st.requests >= count)
            return KTH_OK;
        if (waited >= timeout_ms)
            return KTH_ERR_TIMEOUT;
        sleep_ms(POLL_STEP_MS);
    }
}
