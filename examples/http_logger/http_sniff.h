/* Recognising an HTTP/1 request in the first bytes a client sends: the
 * request line and the Host header. Pure functions over a byte buffer, so
 * they are unit-tested and fuzzed apart from the service. */
#ifndef HTTP_SNIFF_H
#define HTTP_SNIFF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How many leading bytes of a flow the logger looks at. */
#define HTTP_SNIFF_MAX 4096

struct http_request_head {
  const char *line; /* "GET /x HTTP/1.1", without the line end */
  size_t line_len;
  const char *host; /* the Host header's value, trimmed; NULL if none */
  size_t host_len;
};

/* Looks at the first len bytes of a client's stream.
 *   1  an HTTP/1.0 or 1.1 request line; out points into data. host is set
 *      once the header block is complete (or the buffer is full).
 *   0  not decided yet: more bytes may tell (len < HTTP_SNIFF_MAX).
 *  -1  not an HTTP/1 request. */
int http_sniff_request(const char *data, size_t len, struct http_request_head *out);

#ifdef __cplusplus
}
#endif

#endif
