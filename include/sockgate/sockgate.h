/* sockgate C ABI: what a redirect service written in C (or any language with
 * a C FFI) needs to take part in a sockgate chain. Link libsockgate.so.
 *
 * Every function returns 0 on success or a negative errno value; none of
 * them throws, aborts or keeps a pointer it was given. Sizes travel through
 * size_t out-parameters. sg_strerror() turns a return value into a sentence.
 *
 * The same data is also reachable with plain getsockopt()/setsockopt() (see
 * sockgate/abi/sockgate_abi.h); this library adds the size protocol, the
 * parsing and the validation so that a service does not re-implement them.
 *
 * Typical use in a service, for each accepted connection `in`:
 *
 *   unsigned char ctx[SG_REDIRECT_CONTEXT_MAX];  size_t ctx_len = sizeof ctx;
 *   sg_query_redirect_context(in, ctx, &ctx_len);       -> who, where to
 *   struct sg_redirect_context_info info;
 *   sg_parse_redirect_context(ctx, ctx_len, &info);
 *   unsigned char rec[SG_REDIRECT_RECORDS_MAX];  size_t rec_len = sizeof rec;
 *   sg_query_redirect_records(in, rec, &rec_len);       -> opaque, pass it on
 *   int out = socket(info.original_dst.ss_family, SOCK_STREAM, 0);
 *   sg_attach_redirect_records(out, rec, rec_len);      -> before connect()
 *   connect(out, (struct sockaddr *)&info.original_dst, info.original_dst_len);
 */
#ifndef SOCKGATE_SOCKGATE_H
#define SOCKGATE_SOCKGATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this C ABI; bumped on any incompatible change. */
#define SG_CAPI_VERSION 1

/* Buffers of these sizes always hold a blob of this library's ABI version,
 * so a service can use a stack buffer and skip the size query. A newer
 * kernel side may hand out larger blobs: the query functions then fail with
 * -ERANGE and say how much is needed. */
#define SG_REDIRECT_CONTEXT_MAX 1128
#define SG_REDIRECT_RECORDS_MAX 160

/* The version of the library actually loaded (SG_CAPI_VERSION it was built
 * with), for services that load libsockgate.so dynamically. */
int sg_capi_version(void);

/* Reads the redirect context of the flow an accepted socket carries: the
 * original destination, the originating process, the service's own tag.
 * Size protocol: with buf == NULL, sets *len to the size needed and returns
 * 0. With a buffer, *len is its capacity on entry and the bytes written on
 * return; a buffer that is too small fails with -ERANGE and *len set to the
 * size needed (nothing is written).
 * Errors: -ENOPROTOOPT the socket carries no redirect flow (not redirected,
 * or sockgate is not running); -ENOTSOCK, -EBADF; -EAFNOSUPPORT not an
 * IPv4/IPv6 socket; -EFAULT len is NULL. */
int sg_query_redirect_context(int fd, void *buf, size_t *len);

/* Reads the redirect records of a flow: an opaque blob that a service hands,
 * unread, to its outbound socket with sg_attach_redirect_records(). Same
 * size protocol and errors as sg_query_redirect_context(). */
int sg_query_redirect_records(int fd, void *buf, size_t *len);

/* Attaches records read from an accepted socket to the service's outbound
 * socket, before connect(): the flow then continues along the chain (the
 * next service that has not seen it, or the destination) and never comes
 * back to a service that already handled it.
 * Errors: -EPERM the caller is not a registered redirect service (an
 * ordinary application may not forge records); -EISCONN too late, the
 * socket is already connected; -EINVAL not a records blob; -EFAULT blob is
 * NULL; -ENOTSOCK, -EBADF, -EAFNOSUPPORT. */
int sg_attach_redirect_records(int fd, const void *blob, size_t len);

/* The redirect context, parsed. The tag points into the blob that was
 * parsed, so it lives as long as the caller keeps that blob. */
struct sg_redirect_context_info {
  struct sockaddr_storage original_dst; /* AF_INET or AF_INET6, as connect() takes it */
  socklen_t original_dst_len;
  uint32_t origin_pid; /* process (thread group) that called connect() */
  uint32_t origin_tid; /* its thread */
  uint32_t origin_uid;
  uint32_t origin_gid;
  uint64_t origin_cgroup_id;
  uint64_t flow_id;          /* the same on every hop of a chain */
  uint64_t redirect_time_ns; /* CLOCK_MONOTONIC at the application's connect() */
  char origin_comm[17];      /* the process name, NUL-terminated */
  uint32_t service_id;       /* the service the flow was redirected to */
  const uint8_t *tag;        /* the service's own tag (from its registration) */
  size_t tag_len;
};

/* Parses a context blob from sg_query_redirect_context(). Accepts newer
 * versions of the format (it reads the fields it knows), rejects anything
 * inconsistent: the bytes come from another process.
 * Errors: -EINVAL not a valid context; -EFAULT blob or out is NULL. */
int sg_parse_redirect_context(const void *blob, size_t len, struct sg_redirect_context_info *out);

/* FWPS_CONNECTION_REDIRECT_STATE: what a flow is to one service. */
enum sg_redirect_state {
  SG_REDIRECT_STATE_NOT_REDIRECTED = 0,
  SG_REDIRECT_STATE_REDIRECTED_BY_SELF = 1,
  SG_REDIRECT_STATE_REDIRECTED_BY_OTHER = 2,
  SG_REDIRECT_STATE_PREVIOUSLY_REDIRECTED_BY_SELF = 3
};

/* The state of the flow a socket carries, seen by service `service_id`; a
 * socket that carries no flow is SG_REDIRECT_STATE_NOT_REDIRECTED.
 * Errors: -EFAULT state is NULL; -ENOTSOCK, -EBADF, -EAFNOSUPPORT; -EINVAL
 * the records on the socket are malformed. */
int sg_query_redirect_state(int fd, uint32_t service_id, enum sg_redirect_state *state);

/* "redirected by self", ...; "unknown" for a value outside the enum. */
const char *sg_redirect_state_name(int state);

/* The original destination as iptables REDIRECT answers SO_ORIGINAL_DST, for
 * proxies that only want that. *len is the capacity of *addr on entry (at
 * least sizeof(struct sockaddr_in6) is always enough) and the address length
 * on return.
 * Errors: -ENOENT/-ENOPROTOOPT no redirect flow; -EINVAL *len too small;
 * -EFAULT addr or len NULL; -ENOTSOCK, -EBADF, -EAFNOSUPPORT. */
int sg_query_original_destination(int fd, struct sockaddr *addr, socklen_t *len);

/* A description of a return value of this library (negative or positive
 * errno), in the terms of this API: -ENOPROTOOPT is "the socket carries no
 * redirect flow", not "protocol not available". Never NULL; the string is
 * static and safe to use from any thread. */
const char *sg_strerror(int err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SOCKGATE_SOCKGATE_H */
