/* http_logger: an example third-party sockgate redirect service, written
 * against the public C ABI (sockgate/sockgate.h) only.
 *
 * For every flow sockgate redirects to it, it prints who opened the flow and
 * where to (from the redirect context), logs the HTTP/1 request line and
 * Host header it sees in the first bytes, connects to the original
 * destination with the flow's redirect records attached (so that the flow
 * goes on to the next service of the chain, or to the destination, and
 * never comes back here), and relays both directions until both sides have
 * closed, passing a half-close on.
 *
 *   http_logger PORT     listen on 127.0.0.1:PORT and [::1]:PORT
 *
 * One thread per flow keeps the example short; a production service would
 * use an event loop (sockgate's built-in service does: src/proxy/).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_sniff.h"
#include "sockgate/sockgate.h"

#define RELAY_BUF 65536

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t cap) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    snprintf(out, cap, "%s:%u", host, ntohs(sin->sin_port));
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    snprintf(out, cap, "[%s]:%u", host, ntohs(sin6->sin6_port));
  } else {
    snprintf(out, cap, "?");
  }
}

/* Printable form of untrusted bytes (a tag, a request line) for one log line. */
static void printable(const void *data, size_t len, char *out, size_t cap) {
  const unsigned char *p = data;
  size_t o = 0;
  for (size_t i = 0; i < len && o + 5 < cap; i++) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
      out[o++] = (char)p[i];
    else
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
  }
  out[o] = '\0';
}

/* Closing with SO_LINGER 0 sends a reset: a client must not mistake a flow
 * we could not carry for a complete one. */
static void reset_and_close(int fd) {
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

struct direction {
  int from, to;
  char buf[RELAY_BUF];
  size_t len, off;
  int eof;  /* from has no more to send */
  int shut; /* and we passed that on with shutdown(to, SHUT_WR) */
  uint64_t total;
};

struct flow {
  int in;  /* accepted from the application (via sockgate) */
  int out; /* to the original destination */
  uint64_t id;
  char sniff[HTTP_SNIFF_MAX];
  size_t sniff_len;
  int sniff_done;
};

static void sniff(struct flow *f, const char *data, size_t n) {
  if (f->sniff_done) return;
  size_t take = n < sizeof f->sniff - f->sniff_len ? n : sizeof f->sniff - f->sniff_len;
  memcpy(f->sniff + f->sniff_len, data, take);
  f->sniff_len += take;
  struct http_request_head head;
  int verdict = http_sniff_request(f->sniff, f->sniff_len, &head);
  if (verdict == 0) return;
  f->sniff_done = 1;
  if (verdict < 0) {
    printf("flow %" PRIu64 ": not HTTP/1\n", f->id);
    return;
  }
  char line[512], host[512];
  printable(head.line, head.line_len, line, sizeof line);
  printable(head.host, head.host_len, host, sizeof host);
  printf("flow %" PRIu64 ": request \"%s\" host \"%s\"\n", f->id, line, head.host ? host : "");
}

/* Returns 0 while the direction can go on, -1 on an error (reset both). */
static int pump(struct flow *f, struct direction *d, short revents_from, short revents_to) {
  if (d->len == 0 && !d->eof && (revents_from & (POLLIN | POLLHUP | POLLERR))) {
    ssize_t n = read(d->from, d->buf, sizeof d->buf);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0) {
      d->eof = 1;
    } else {
      d->len = (size_t)n;
      d->off = 0;
      d->total += (uint64_t)n;
      if (d->from == f->in) sniff(f, d->buf, (size_t)n);
    }
  }
  if (d->len > 0 && (revents_to & (POLLOUT | POLLERR | POLLHUP))) {
    ssize_t n = send(d->to, d->buf + d->off, d->len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
    d->off += (size_t)n;
    d->len -= (size_t)n;
  }
  if (d->eof && d->len == 0 && !d->shut) {
    shutdown(d->to, SHUT_WR); /* pass the half-close on */
    d->shut = 1;
  }
  return 0;
}

static void relay(struct flow *f) {
  static __thread struct direction up, down; /* 64 KiB each: not on the stack */
  memset(&up, 0, sizeof up);
  memset(&down, 0, sizeof down);
  up.from = f->in;
  up.to = f->out;
  down.from = f->out;
  down.to = f->in;
  fcntl(f->in, F_SETFL, fcntl(f->in, F_GETFL) | O_NONBLOCK);
  fcntl(f->out, F_SETFL, fcntl(f->out, F_GETFL) | O_NONBLOCK);

  int failed = 0;
  while (!(up.shut && down.shut)) {
    struct pollfd p[2] = {{f->in, 0, 0}, {f->out, 0, 0}};
    if (up.len == 0 && !up.eof) p[0].events |= POLLIN;
    if (down.len > 0) p[0].events |= POLLOUT;
    if (down.len == 0 && !down.eof) p[1].events |= POLLIN;
    if (up.len > 0) p[1].events |= POLLOUT;
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      failed = 1;
      break;
    }
    if ((p[0].revents | p[1].revents) & POLLERR) { /* a reset, on either side */
      failed = 1;
      break;
    }
    if (pump(f, &up, p[0].revents, p[1].revents) < 0 ||
        pump(f, &down, p[1].revents, p[0].revents) < 0) {
      failed = 1;
      break;
    }
  }
  if (!f->sniff_done && f->sniff_len > 0) {
    f->sniff_done = 1;
    printf("flow %" PRIu64 ": not HTTP/1 (stream ended undecided)\n", f->id);
  }
  printf("flow %" PRIu64 ": %s, %" PRIu64 " bytes up, %" PRIu64 " bytes down\n", f->id,
         failed ? "reset" : "closed", up.total, down.total);
  if (failed) {
    reset_and_close(f->in);
    reset_and_close(f->out);
  } else {
    close(f->in);
    close(f->out);
  }
}

static void *serve(void *arg) {
  struct flow *f = arg;
  unsigned char ctx[SG_REDIRECT_CONTEXT_MAX];
  size_t ctx_len = sizeof ctx;
  int rc = sg_query_redirect_context(f->in, ctx, &ctx_len);
  struct sg_redirect_context_info info;
  if (rc == 0) rc = sg_parse_redirect_context(ctx, ctx_len, &info);
  if (rc != 0) {
    printf("refused a connection: %s\n", sg_strerror(rc));
    reset_and_close(f->in);
    free(f);
    return NULL;
  }
  f->id = info.flow_id;
  char dst[80], tag[256];
  format_addr(&info.original_dst, dst, sizeof dst);
  printable(info.tag, info.tag_len, tag, sizeof tag);
  printf("flow %" PRIu64 ": pid %" PRIu32 " (%s) uid %" PRIu32
         " -> %s, tag \"%s\", service %" PRIu32 "\n",
         f->id, info.origin_pid, info.origin_comm, info.origin_uid, dst, tag, info.service_id);

  /* The records are opaque: read them, attach them, never look inside. */
  unsigned char records[SG_REDIRECT_RECORDS_MAX];
  size_t records_len = sizeof records;
  rc = sg_query_redirect_records(f->in, records, &records_len);
  f->out = socket(info.original_dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rc == 0 && f->out < 0) rc = -errno;
  if (rc == 0) rc = sg_attach_redirect_records(f->out, records, records_len);
  if (rc != 0) {
    /* Without its records the flow would come straight back to us. */
    printf("flow %" PRIu64 ": cannot continue the chain: %s\n", f->id, sg_strerror(rc));
    reset_and_close(f->in);
    if (f->out >= 0) close(f->out);
    free(f);
    return NULL;
  }
  if (connect(f->out, (struct sockaddr *)&info.original_dst, info.original_dst_len) != 0) {
    printf("flow %" PRIu64 ": connect %s: %s\n", f->id, dst, strerror(errno));
    reset_and_close(f->in);
    close(f->out);
    free(f);
    return NULL;
  }
  relay(f);
  free(f);
  return NULL;
}

static int listen_on(int family, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int main(int argc, char **argv) {
  char *end = NULL;
  long port = argc == 2 ? strtol(argv[1], &end, 10) : -1;
  if (argc != 2 || *end != '\0' || port <= 0 || port > 65535) {
    fprintf(stderr, "usage: %s PORT   (listens on 127.0.0.1:PORT and [::1]:PORT)\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* one log line at a time, also into a file */
  signal(SIGPIPE, SIG_IGN);
  if (sg_capi_version() != SG_CAPI_VERSION) {
    fprintf(stderr, "http_logger: built for sockgate C ABI %d, libsockgate has %d\n",
            SG_CAPI_VERSION, sg_capi_version());
    return 2;
  }

  int fds[2] = {listen_on(AF_INET, (uint16_t)port), listen_on(AF_INET6, (uint16_t)port)};
  if (fds[0] < 0) {
    fprintf(stderr, "http_logger: listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
    return 1;
  }
  printf("http_logger: listening on 127.0.0.1:%ld%s\n", port,
         fds[1] >= 0 ? " and [::1]" : " (no IPv6)");

  for (;;) {
    struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], fds[1] >= 0 ? POLLIN : 0, 0}};
    if (poll(p, fds[1] >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("http_logger: poll");
      return 1;
    }
    for (int i = 0; i < 2; i++) {
      if (!(p[i].revents & POLLIN)) continue;
      int in = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
      if (in < 0) continue; /* the client gave up already; EMFILE: try later */
      struct flow *f = calloc(1, sizeof *f);
      pthread_t thread;
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      if (f == NULL) {
        reset_and_close(in);
      } else {
        f->in = in;
        f->out = -1;
        if (pthread_create(&thread, &attr, serve, f) != 0) {
          reset_and_close(in);
          free(f);
        }
      }
      pthread_attr_destroy(&attr);
    }
  }
}
