#include "http_sniff.h"

#include <string.h>

/* RFC 9110 token characters, for the method. */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* Offset of the next line end ("\r\n" or a bare "\n") at or after from, or
 * -1. *next gets the offset of the following line. */
static long line_end(const char *data, size_t len, size_t from, size_t *next) {
  for (size_t i = from; i < len; i++) {
    if (data[i] == '\n') {
      *next = i + 1;
      return (long)(i > from && data[i - 1] == '\r' ? i - 1 : i);
    }
  }
  return -1;
}

static int request_line_ok(const char *s, size_t n) {
  size_t i = 0;
  while (i < n && i < 32 && is_tchar((unsigned char)s[i])) i++;
  if (i == 0 || i >= n || s[i] != ' ') return 0;
  size_t target = ++i;
  while (i < n && s[i] != ' ') {
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7f) return 0;
    i++;
  }
  if (i == target || i >= n) return 0;
  i++; /* the space before the version */
  if (n - i != 8) return 0;
  return memcmp(s + i, "HTTP/1.1", 8) == 0 || memcmp(s + i, "HTTP/1.0", 8) == 0;
}

int http_sniff_request(const char *data, size_t len, struct http_request_head *out) {
  if (data == NULL || out == NULL) return -1;
  memset(out, 0, sizeof *out);
  if (len > HTTP_SNIFF_MAX) len = HTTP_SNIFF_MAX;
  const int full = len == HTTP_SNIFF_MAX;

  size_t next = 0;
  long end = line_end(data, len, 0, &next);
  if (end < 0) {
    /* Before the line ends, bytes that cannot start a request decide it. */
    for (size_t i = 0; i < len && i < 33; i++) {
      unsigned char c = (unsigned char)data[i];
      if (c == ' ') return i > 0 ? (full ? -1 : 0) : -1;
      if (!is_tchar(c)) return -1;
    }
    return full ? -1 : 0;
  }
  if (!request_line_ok(data, (size_t)end)) return -1;
  out->line = data;
  out->line_len = (size_t)end;

  for (size_t pos = next;;) {
    size_t after = 0;
    long e = line_end(data, len, pos, &after);
    if (e < 0) return full ? 1 : 0; /* header block continues past what we have */
    size_t n = (size_t)e - pos;
    if (n == 0) return 1; /* the empty line: headers complete */
    const char *h = data + pos;
    if (n >= 5 && lower(h[0]) == 'h' && lower(h[1]) == 'o' && lower(h[2]) == 's' &&
        lower(h[3]) == 't' && h[4] == ':') {
      size_t b = 5, z = n;
      while (b < z && (h[b] == ' ' || h[b] == '\t')) b++;
      while (z > b && (h[z - 1] == ' ' || h[z - 1] == '\t')) z--;
      out->host = h + b;
      out->host_len = z - b;
      return 1;
    }
    pos = after;
  }
}
